package backend

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
)

// CheckoutTimeoutError means no backend connection was free within
// pool.checkout_timeout: the pool was full, or (Holder set) the holder
// already held its share of it. Clients get SQLSTATE 53300.
type CheckoutTimeoutError struct {
	Key     Key
	Size    int
	Timeout time.Duration
	// Holder, Held and MaxShare are set when the holder's share, not the
	// pool, was full: it held Held connections, all that pool.max_share
	// MaxShare of Size allows.
	Holder   string
	Held     int
	MaxShare float64
}

// SQLState is 53300 (too_many_connections), the code Postgres itself gives
// when it has no connection slot left.
func (e *CheckoutTimeoutError) SQLState() string { return pgerrcode.TooManyConnections }

func (e *CheckoutTimeoutError) Error() string {
	if e.Holder != "" {
		return fmt.Sprintf("token %q holds %d backend connections of pool %s, all its share allows (pool.max_share %v of pool.size %d), and released none within %s",
			e.Holder, e.Held, e.Key, e.MaxShare, e.Size, e.Timeout)
	}
	return fmt.Sprintf("no backend connection free for role %s on backend %s within %s (pool.size %d, all busy)",
		e.Key.Role, e.Key.Backend, e.Timeout, e.Size)
}

// ShareExceeded reports whether the checkout failed because the holder held
// its share of the pool rather than because the pool was full.
func (e *CheckoutTimeoutError) ShareExceeded() bool { return e.Holder != "" }

// ConnectError means logging in to the backend failed; Err may wrap the
// backend's *pgconn.PgError (unknown role, bad password, too many
// connections).
type ConnectError struct {
	Key Key
	Err error
}

func (e *ConnectError) Error() string { return fmt.Sprintf("backend %s: %v", e.Key, e.Err) }
func (e *ConnectError) Unwrap() error { return e.Err }

// SQLState is 08006 (connection_failure): the backend is down or
// restarting, worth a retry. A *pgconn.PgError it wraps has its own code,
// which front ends pass on instead.
func (e *ConnectError) SQLState() string { return pgerrcode.ConnectionFailure }

// ErrClosed is returned by Acquire after Close.
var ErrClosed = errors.New("backend pools are closed")
