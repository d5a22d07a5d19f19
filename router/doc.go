// Package router turns SQL text into Statements: which pgmq functions a
// statement calls, on which queue (a literal or a bound parameter $n), with
// which operation, and what other kind of statement it is (transaction
// control, SET/SHOW, catalog read, ...). It parses with pg_query_go, the real
// Postgres parser, and caches the result by query text, so a repeated
// statement costs one map lookup. Whatever it cannot classify with certainty
// is marked so, and the grant check refuses it.
//
// It may import auth and configs of ours.
package router
