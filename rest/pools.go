package rest

import "context"

// Pools gives REST backend connections logged in as a role: in mqstack the
// backend pools of internal/backend, keyed by (backend, database, role), the
// same the proxy uses. A checkout that times out is reported as an error
// whose SQLState() is 53300 (*backend.CheckoutTimeoutError, or a
// *pgconn.PgError); other failures to get a connection as any other error
// (REST answers 503 for both).
type Pools interface {
	// Acquire checks out a connection of role's pool for holder, the
	// token (auth.Identity.Holder; "" for REST's own checks), whose share
	// of the pool (pool.max_share) the checkout counts against.
	Acquire(ctx context.Context, role, holder string) (Conn, error)
}

// Conn is one checked-out backend connection.
type Conn interface {
	// Superuser reports whether the connection's role is a superuser, as
	// the backend reported it (ParameterStatus is_superuser).
	Superuser() bool
	// QueryRow runs sql, one statement, with text parameters (nil is NULL)
	// whose types the statement's casts give, and returns the columns of
	// its first row as text (nil is NULL); no row gives a nil slice.
	QueryRow(ctx context.Context, sql string, args []*string) ([][]byte, error)
	// Release returns the connection to its pool. A connection whose query
	// failed on I/O must not be reused; the implementation sees to that.
	Release()
}
