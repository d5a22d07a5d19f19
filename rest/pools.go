package rest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

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

// PgxPools implements Pools with one pgxpool per role, for tests and for
// running REST without the proxy's backend pools.
type PgxPools struct {
	connString      func(role string) string
	size            int32
	checkoutTimeout time.Duration

	mu     sync.Mutex
	pools  map[string]*pgxpool.Pool
	closed bool
}

// NewPgxPools makes pools of at most size connections per role;
// connString(role) is the connection string that logs in as role.
// Waiting longer than checkoutTimeout for a connection is SQLSTATE 53300.
func NewPgxPools(connString func(role string) string, size int, checkoutTimeout time.Duration) *PgxPools {
	return &PgxPools{connString: connString, size: int32(size), checkoutTimeout: checkoutTimeout,
		pools: map[string]*pgxpool.Pool{}}
}

// Pool returns role's pool, made on first use.
func (p *PgxPools) Pool(role string) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("pools are closed")
	}
	if pool := p.pools[role]; pool != nil {
		return pool, nil
	}
	cfg, err := pgxpool.ParseConfig(p.connString(role))
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = p.size
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	p.pools[role] = pool
	return pool, nil
}

// Acquire implements Pools. It does not limit holders' shares.
func (p *PgxPools) Acquire(ctx context.Context, role, _ string) (Conn, error) {
	pool, err := p.Pool(role)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, p.checkoutTimeout)
	defer cancel()
	c, err := pool.Acquire(actx)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: pgerrcode.TooManyConnections,
				Message: fmt.Sprintf("no backend connection for role %q free within %s", role, p.checkoutTimeout)}
		}
		return nil, err
	}
	return pgxConn{c}, nil
}

// Close closes every pool.
func (p *PgxPools) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, pool := range p.pools {
		pool.Close()
	}
	p.pools = nil
}

type pgxConn struct{ c *pgxpool.Conn }

func (c pgxConn) Superuser() bool {
	return c.c.Conn().PgConn().ParameterStatus("is_superuser") == "on"
}

// textResults asks for every result column as text.
var textResults = pgx.QueryResultFormats{pgx.TextFormatCode}

func (c pgxConn) QueryRow(ctx context.Context, sql string, args []*string) ([][]byte, error) {
	all := make([]any, 0, len(args)+1)
	all = append(all, textResults)
	for _, a := range args {
		all = append(all, a)
	}
	rows, err := c.c.Query(ctx, sql, all...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	if rows.Next() {
		for _, v := range rows.RawValues() {
			if v == nil {
				out = append(out, nil)
				continue
			}
			out = append(out, append([]byte{}, v...))
		}
	}
	rows.Close()
	return out, rows.Err()
}

func (c pgxConn) Release() { c.c.Release() }
