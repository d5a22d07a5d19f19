// Package security holds mqstack's attack tests: each test plays a hostile
// client against the real stack (internal/stack in front of a throwaway
// cluster from internal/testenv) through psql, pgx in all five exec modes,
// a raw pgproto3 client and REST, and asserts three things: the attack is
// refused with the SQLSTATE the contract in ../shared/spec/auth.md names,
// nothing happened to the victim's queues, and every client (the attacker's
// own connection when it survives, a fresh one, and another client that
// used the pool before the attack) is still served.
//
// The classes follow issue 11: TestParserDifferential*, TestQueueNameCasts*,
// TestPoolPoisoning*, TestPreparedStatementIsolation*, TestCatalogLeaks*,
// TestSharedStateThroughFunctions*, TestStarvationAndBounds*, TestMinor*.
//
// The package shares one Postgres cluster; each test starts its own stack
// with a small pool, so that backends are reused and cross-client effects
// show, and an attack that succeeds cannot poison the next test. It has no
// non-test code but this comment; nothing imports it.
package security
