package rest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
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

// Acquire implements Pools.
func (b BackendPools) Acquire(ctx context.Context, role, holder string) (Conn, error) {
	c, err := b.Manager.Acquire(ctx, backend.Key{Backend: b.Backend, Database: b.Database, Role: role}, holder)
	if err != nil {
		return nil, err
	}
	return backendConn{c}, nil
}

type backendConn struct{ c *backend.Conn }

func (b backendConn) Superuser() bool { return b.c.Params["is_superuser"] == "on" }

func (b backendConn) Release() { b.c.Release() }

// QueryRow runs sql with the extended protocol on the unnamed statement,
// parameters and results as text.
func (b backendConn) QueryRow(ctx context.Context, sql string, args []*string) ([][]byte, error) {
	c := b.c
	if c.TxStatus != 'I' {
		return nil, fmt.Errorf("BUG: REST query on a backend connection in transaction state %q", c.TxStatus)
	}
	// The proxy's unnamed statement on this connection is gone.
	c.UnnamedOwner = nil
	params := make([][]byte, len(args))
	for i, a := range args {
		if a != nil {
			params[i] = []byte(*a)
		}
	}
	fe := c.Frontend()
	fe.Send(&pgproto3.Parse{Query: sql})
	fe.Send(&pgproto3.Bind{Parameters: params})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	nc := c.NetConn()
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	// A canceled request cuts the exchange short; the connection is then
	// broken and Release destroys it.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer func() {
		stop()
		nc.SetDeadline(time.Time{})
	}()
	if err := fe.Flush(); err != nil {
		c.MarkBroken()
		return nil, err
	}
	var row [][]byte
	var pgErr error
	for {
		msg, err := fe.Receive()
		if err != nil {
			c.MarkBroken()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		c.Observe(msg)
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			if row == nil {
				row = make([][]byte, len(m.Values))
				for i, v := range m.Values {
					if v != nil {
						row[i] = append([]byte{}, v...)
					}
				}
			}
		case *pgproto3.ErrorResponse:
			if pgErr == nil {
				pgErr = pgconn.ErrorResponseToPgError(m)
			}
		case *pgproto3.CopyInResponse:
			c.MarkBroken()
			return nil, errors.New("BUG: REST statement asked for COPY")
		case *pgproto3.ReadyForQuery:
			return row, pgErr
		}
	}
}
