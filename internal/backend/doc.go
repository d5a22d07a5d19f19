// Package backend owns the pools of backend connections: one pool per
// (backend, database, role), built on puddle, whose connections log in as the
// role itself. It checks connections out and in, resets and health-checks
// them, discards broken ones, and keeps per connection the state the proxy
// needs to share it between clients: the reported parameters, the settings
// replayed onto it, and an LRU of the prepared statements the proxy created.
//
// The proxy's relay drives a connection's pgproto3.Frontend directly (the
// pgconn connection is hijacked after login); every other exchange with a
// backend is a method here: Exec and Apply for resets and settings,
// QueryRow for REST's one-statement calls. This package never reads a
// client message. It may import configs and nothing else of ours.
package backend
