// Package differential checks the router against Postgres (issue 11,
// "a differential check of the router against Postgres").
//
// For every statement the router lets a grant-limited token run, the test
// runs it on a throwaway cluster with track_functions = all, inside a
// transaction that is rolled back, and compares what Postgres actually did
// with what the router said the statement does:
//
//   - the pgmq functions called (pg_stat_user_functions) must be the ones the
//     router named, plus the internal helpers those call (their closure is
//     read from the extension's function bodies);
//   - the queue tables touched (the counters behind pg_stat_user_tables,
//     pg_statio_user_tables and pg_statio_user_sequences: scans, tuples
//     inserted, updated and deleted, blocks; and DDL, which event triggers
//     report as notices) must belong to the queues the router named.
//
// Each statement runs on a fresh connection as the default role; its
// session then calls a sentinel function and forces its statistics out
// (pg_stat_force_next_flush), and the reader waits for the sentinel's count
// before it compares. The limited token allows every op on every queue but
// payments, the queue a statement must not reach.
//
// The corpus is the SQL of the router's own tests (read from their source
// with go/parser, so it stays in step), the router's fuzz corpus, and a
// generated set of pgmq calls in the spellings the grammar allows, each also
// run under the session settings a limited token may change. A statement
// that does more than the router saw is a security failure: the test prints
// the SQL, the router's view and Postgres' view.
//
// It has no non-test code but this comment; nothing imports it.
package differential
