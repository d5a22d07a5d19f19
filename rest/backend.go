package rest

import (
	"context"

	"mqstack/internal/backend"
	"mqstack/internal/notify"
)

// BackendPools runs REST calls on mqstack's backend pools: a call of role R
// runs on the pool (Backend, Database, R), the pool the proxy uses for that
// role's clients.
type BackendPools struct {
	Manager  *backend.Manager
	Backend  string // backend name (the default backend when it names none)
	Database string
}

var _ Pools = BackendPools{}

var _ listenKeyer = BackendPools{}

// ListenKey is the key of the notification listener for the database these
// pools reach, the same key the proxy's sessions on it use.
func (b BackendPools) ListenKey() notify.Key {
	return notify.Key{Backend: b.Backend, Database: b.Database}
}

// Acquire implements Pools.
func (b BackendPools) Acquire(ctx context.Context, role, holder string) (Conn, error) {
	c, err := b.Manager.Acquire(ctx, backend.Key{Backend: b.Backend, Database: b.Database, Role: role}, holder)
	if err != nil {
		return nil, err
	}
	// The proxy's clients leave their replayed settings on a backend (its
	// next client gets its own put on): a REST call runs on the login's.
	if err := c.ResetToLogin(ctx); err != nil {
		c.Release()
		return nil, err
	}
	return backendConn{c}, nil
}

type backendConn struct{ c *backend.Conn }

func (b backendConn) Superuser() bool { return b.c.Params["is_superuser"] == "on" }

func (b backendConn) Release() { b.c.Release() }

// QueryRow implements Conn.
func (b backendConn) QueryRow(ctx context.Context, sql string, args []*string) ([][]byte, error) {
	return b.c.QueryRow(ctx, sql, args)
}
