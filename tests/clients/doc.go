// Package clients holds end-to-end tests of mqstack with real client
// libraries: node-postgres and the pgmq client for Node (pgmq-js, installed
// by `make deps` into tests/clients/node), psql, and pgx for the security
// checks and LISTEN at scale (1,000 listeners through a pool of 4).
// Each test starts a real cluster and the whole stack, as `mqstack up` does.
package clients
