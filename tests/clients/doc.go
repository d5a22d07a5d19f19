// Package clients holds end-to-end tests of mqstack with real client
// libraries: node-postgres and the pgmq client for Node (pgmq-js, installed
// by `make deps` into tests/clients/node), and pgx for the security checks.
// Each test starts a real cluster and the whole stack, as `mqstack up` does.
package clients
