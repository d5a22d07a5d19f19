// Package reliability holds mqstack's end-to-end reliability tests: message
// accounting under load through the wire proxy and REST at once, faults
// injected during that load (backends terminated, Postgres restarted or
// crashed, clients killed mid-transaction, slow consumers, pool exhaustion),
// hostile clients, graceful shutdown, and the soak run (`make soak`, build
// tag soak).
//
// Every test starts its own Postgres cluster and stack (internal/stack), so
// faults never leak into other packages' tests. It has no non-test code but
// this comment; nothing imports it.
package reliability
