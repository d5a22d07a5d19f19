// Package backend owns the pools of backend connections: one pool per
// (backend, database, role), built on puddle, whose connections log in as the
// role itself. It checks connections out and in, resets and health-checks
// them, discards broken ones, and keeps per connection the state the proxy
// needs to share it between clients: the reported parameters, the settings
// replayed onto it, and an LRU of the prepared statements the proxy created.
//
// The relay drives a connection's pgproto3.Frontend directly (the pgconn
// connection is hijacked after login), so this package never reads a client
// message. It may import configs and nothing else of ours.
package backend
