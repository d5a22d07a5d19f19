// Package proxy is the Postgres wire-protocol server of mqstack: clients
// (psql, pgx, pgbench, any driver) connect with their JWT as the password and
// are relayed to pooled backend connections logged in as the token's role.
//
// It owns the client session state machine (startup, TLS, authentication,
// key data, command loop), the map of each client's prepared statements onto
// backend statement names, the cancel-key map, pinning of sessions whose
// state cannot cross a transaction boundary, and replay of startup
// parameters onto whichever backend connection a client gets.
//
// A session is made of parts, one concept and one file each; session.go
// lists them and the locks they share. server.go accepts clients, login.go
// takes them through startup and authentication, command.go dispatches
// their messages, attachment.go and reader.go relay them to a backend.
//
// It may import auth, router, internal/backend and configs; never rest or
// internal/metrics: the counts it shares with REST go to a Recorder it
// declares (metrics.go), which internal/stack implements.
// docs/proxy.md describes pooling, prepared statements and pinning.
package proxy
