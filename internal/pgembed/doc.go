// Package pgembed owns the embedded Postgres: it finds the server binaries,
// creates a cluster with initdb, writes the tuned configuration and a pg_hba
// that trusts only a private Unix socket directory, starts and supervises the
// postmaster, bootstraps the default database, role and extensions, and stops
// it with a fast shutdown.
//
// It may import configs and nothing else of ours.
package pgembed
