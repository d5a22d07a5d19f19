package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/puddle/v2"

	"mqstack/internal/wire"
)

// Conn is one backend connection, logged in as its pool's role. It belongs
// to exactly one holder between Acquire and Release (a client session or the
// health checker) and has no lock of its own.
type Conn struct {
	// Key is the pool the connection belongs to.
	Key Key
	// Params are the values the backend last reported with ParameterStatus.
	// Whoever drives Frontend() must keep them current (Observe).
	Params map[string]string
	// TxStatus is the status of the last ReadyForQuery: 'I', 'T' or 'E'.
	TxStatus byte

	// applied are unreported settings (search_path, options -c ...) the
	// proxy set on the connection, so they can be reset or replaced.
	applied map[string]string
	// stmts are the statements the proxy prepared on the connection.
	stmts *StmtCache
	// unnamedOwner and unnamedGen identify which client's unnamed
	// statement the connection holds (nil: none the proxy knows of).
	unnamedOwner any
	unnamedGen   uint64

	fe      *pgproto3.Frontend // reads; writes go through out
	out     *wire.Writer
	nc      net.Conn
	pid     uint32
	secret  []byte
	login   map[string]string
	created time.Time
	// broken is set by whichever of the holder's goroutines (client
	// writer, backend reader) sees the connection fail first.
	broken atomic.Bool
	res    *puddle.Resource[*Conn]
	pool   *pool
	// holder is whose share of the pool the checkout counts against ("":
	// none).
	holder string
}

// Frontend reads the backend's messages. Messages to the backend go
// through Send and Flush.
func (c *Conn) Frontend() *pgproto3.Frontend { return c.fe }

// Send buffers a message to the backend until Flush.
func (c *Conn) Send(m pgproto3.FrontendMessage) { c.out.Send(m) }

// Flush writes the buffered messages to the backend.
func (c *Conn) Flush() error { return c.out.Flush() }

// NetConn is the underlying connection (for deadlines).
func (c *Conn) NetConn() net.Conn { return c.nc }

// PID is the backend process id.
func (c *Conn) PID() uint32 { return c.pid }

// LoginParams are the parameters the backend reported at login: the values
// a client that sets nothing sees.
func (c *Conn) LoginParams() map[string]string { return c.login }

// MarkBroken makes Release destroy the connection instead of reusing it.
func (c *Conn) MarkBroken() { c.broken.Store(true) }

// Broken reports whether the connection was marked broken.
func (c *Conn) Broken() bool { return c.broken.Load() }

// Observe keeps Params and TxStatus current from a message the holder read
// from Frontend().
func (c *Conn) Observe(msg pgproto3.BackendMessage) {
	switch m := msg.(type) {
	case *pgproto3.ParameterStatus:
		c.Params[m.Name] = m.Value
	case *pgproto3.ReadyForQuery:
		c.TxStatus = m.TxStatus
	}
}

// Release returns the connection to its pool, or destroys it when it is
// broken, too old, or its pool was retired by a reload. The connection must
// be idle (ReadyForQuery 'I', nothing in flight).
func (c *Conn) Release() {
	res := c.res
	if res == nil {
		panic("BUG: release of a backend connection that is not checked out")
	}
	c.res = nil
	p, holder := c.pool, c.holder
	c.holder = ""
	c.nc.SetDeadline(time.Time{})
	switch {
	case c.broken.Load() || c.TxStatus != 'I':
		p.m.closed(p.key, "broken")
		res.Destroy()
	case p.m.expired(c):
		p.m.closed(p.key, "lifetime")
		res.Destroy()
	default:
		res.Release()
	}
	// After the connection is back, so a checkout waiting for the
	// holder's share finds it.
	if holder != "" {
		p.unreserve(holder)
	}
}

var gucName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// ValidSettingName reports whether name can be SET/RESET as it is.
func ValidSettingName(name string) bool { return gucName.MatchString(name) }

// Exec runs sql with the simple protocol and waits for ReadyForQuery,
// keeping Params current. It returns the first *pgconn.PgError; an I/O or
// protocol error marks the connection broken.
func (c *Conn) Exec(ctx context.Context, sql string) error {
	c.setDeadline(ctx)
	defer c.nc.SetDeadline(time.Time{})
	c.out.Send(&pgproto3.Query{String: sql})
	if err := c.out.Flush(); err != nil {
		c.broken.Store(true)
		return fmt.Errorf("backend %s: %w", c.Key, err)
	}
	return c.ReadUntilReady(1)
}

// QueryRow runs sql, one statement, with the extended protocol on the
// unnamed statement, for a holder that drives the connection itself
// outside a transaction (REST). Parameters are text (nil is NULL), typed
// by the statement's casts; it returns the columns of the first row as text
// (nil is NULL), a nil slice for no row, and the first *pgconn.PgError once
// the backend is ready again. An I/O error marks the connection broken; so
// does ctx ending, which cuts the exchange short (ctx's error is returned).
func (c *Conn) QueryRow(ctx context.Context, sql string, args []*string) ([][]byte, error) {
	if c.TxStatus != 'I' {
		return nil, fmt.Errorf("BUG: QueryRow on a backend connection in transaction state %q", c.TxStatus)
	}
	// Whichever client's unnamed statement the connection held is gone.
	c.ForgetUnnamed()
	params := make([][]byte, len(args))
	for i, a := range args {
		if a != nil {
			params[i] = []byte(*a)
		}
	}
	c.out.Send(&pgproto3.Parse{Query: sql})
	c.out.Send(&pgproto3.Bind{Parameters: params})
	c.out.Send(&pgproto3.Execute{})
	c.out.Send(&pgproto3.Sync{})
	if d, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer func() {
		stop()
		c.nc.SetDeadline(time.Time{})
	}()
	if err := c.out.Flush(); err != nil {
		c.MarkBroken()
		return nil, err
	}
	var row [][]byte
	var pgErr error
	for {
		msg, err := c.fe.Receive()
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
			return nil, errors.New("BUG: QueryRow's statement asked for COPY")
		case *pgproto3.ReadyForQuery:
			return row, pgErr
		}
	}
}

// ReadUntilReady reads and drops messages until n ReadyForQuery have
// arrived, failing any COPY IN the backend asks for. It returns the first
// *pgconn.PgError seen.
func (c *Conn) ReadUntilReady(n int) error {
	var first error
	for n > 0 {
		msg, err := c.fe.Receive()
		if err != nil {
			c.broken.Store(true)
			return fmt.Errorf("backend %s: %w", c.Key, err)
		}
		c.Observe(msg)
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			n--
		case *pgproto3.ErrorResponse:
			if first == nil {
				first = pgconn.ErrorResponseToPgError(m)
			}
			if m.Severity == "FATAL" || m.Severity == "PANIC" {
				c.broken.Store(true)
			}
		case *pgproto3.CopyInResponse:
			c.out.Send(&pgproto3.CopyFail{Message: "client gone"})
			if err := c.out.Flush(); err != nil {
				c.broken.Store(true)
				return fmt.Errorf("backend %s: %w", c.Key, err)
			}
		case *pgproto3.CopyBothResponse:
			c.broken.Store(true)
			return fmt.Errorf("backend %s: unexpected CopyBothResponse", c.Key)
		}
	}
	return first
}

// Apply sets and resets settings on the connection (outside a transaction)
// and keeps Params and Applied current. Names must satisfy
// ValidSettingName. unreported names the settings the backend does not
// report, which are then recorded in Applied.
func (c *Conn) Apply(ctx context.Context, set map[string]string, reset []string, unreported func(string) bool) error {
	if len(set) == 0 && len(reset) == 0 {
		return nil
	}
	var b strings.Builder
	// The previous holder's statement_timeout bounds every statement here,
	// so it is changed first: the statements after it run under the new one.
	if v, ok := set["statement_timeout"]; ok {
		fmt.Fprintf(&b, "SELECT pg_catalog.set_config('statement_timeout', %s, false);", quoteLiteral(v))
	} else if slices.Contains(reset, "statement_timeout") {
		b.WriteString("RESET statement_timeout;")
	}
	for name, val := range set {
		if !ValidSettingName(name) {
			return fmt.Errorf("BUG: setting name %q not validated", name)
		}
		if name != "statement_timeout" {
			fmt.Fprintf(&b, "SELECT pg_catalog.set_config(%s, %s, false);", quoteLiteral(name), quoteLiteral(val))
		}
	}
	for _, name := range reset {
		if !ValidSettingName(name) {
			return fmt.Errorf("BUG: setting name %q not validated", name)
		}
		if name != "statement_timeout" {
			fmt.Fprintf(&b, "RESET %s;", name)
		}
	}
	if err := c.Exec(ctx, b.String()); err != nil {
		// Which settings took is unknown: the connection is not reused.
		c.broken.Store(true)
		return err
	}
	for name, val := range set {
		if unreported(name) {
			c.applied[name] = val
		}
	}
	for _, name := range reset {
		delete(c.applied, name)
	}
	return nil
}

// ClientReported are the reported settings a client can change (by their
// reported spelling): what the proxy keeps every session's wish for, and
// what ResetToLogin sets back.
var ClientReported = []string{"application_name", "client_encoding", "DateStyle", "IntervalStyle", "TimeZone",
	"standard_conforming_strings", "default_transaction_read_only"}

// ResetToLogin gives the connection the settings of its login, for a holder
// that sets none of its own (REST): whatever the proxy applied for a client
// is reset and the reported settings a client changed are set back. It
// costs a round trip only when something differs.
func (c *Conn) ResetToLogin(ctx context.Context) error {
	var set map[string]string
	for _, name := range ClientReported {
		if v, ok := c.login[name]; ok && c.Params[name] != v {
			if set == nil {
				set = map[string]string{}
			}
			set[name] = v
		}
	}
	var reset []string
	for name := range c.applied {
		reset = append(reset, name)
	}
	return c.Apply(ctx, set, reset, func(string) bool { return false })
}

// quoteLiteral quotes s as an E” literal, safe whatever
// standard_conforming_strings says.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `''`)
	return "E'" + s + "'"
}

// Discard resets all session state (DISCARD ALL) and forgets what the proxy
// knew of it: statements, applied settings, the unnamed statement.
func (c *Conn) Discard(ctx context.Context) error {
	if c.TxStatus != 'I' {
		if err := c.Exec(ctx, "ROLLBACK"); err != nil {
			return err
		}
	}
	c.ForgetSessionState()
	return c.Exec(ctx, "DISCARD ALL")
}

// Stmts are the statements the proxy prepared on the connection (its LRU).
func (c *Conn) Stmts() *StmtCache { return c.stmts }

// AppliedValue is the value the proxy applied for an unreported setting.
func (c *Conn) AppliedValue(name string) (string, bool) {
	v, ok := c.applied[name]
	return v, ok
}

// RangeApplied calls fn for each setting the proxy applied, until fn
// returns false.
func (c *Conn) RangeApplied(fn func(name, value string) bool) {
	for name, v := range c.applied {
		if !fn(name, v) {
			return
		}
	}
}

// ForgetSessionState forgets what the proxy knew of the connection's
// session state (its statements, applied settings and unnamed statement),
// after a DISCARD ALL.
func (c *Conn) ForgetSessionState() {
	c.stmts.Clear()
	clear(c.applied)
	c.unnamedOwner = nil
}

// SetUnnamed records that the connection's unnamed statement is owner's,
// as owner knew it at generation gen.
func (c *Conn) SetUnnamed(owner any, gen uint64) { c.unnamedOwner, c.unnamedGen = owner, gen }

// HoldsUnnamed reports whether the connection's unnamed statement is
// owner's at generation gen, so that owner need not parse it again.
func (c *Conn) HoldsUnnamed(owner any, gen uint64) bool {
	return c.unnamedOwner == owner && c.unnamedGen == gen
}

// ForgetUnnamed records that the unnamed statement is nobody's the proxy
// knows of: it was replaced or closed.
func (c *Conn) ForgetUnnamed() { c.unnamedOwner = nil }

// ForgetUnnamedOf forgets the unnamed statement if it is owner's (owner's
// own is gone).
func (c *Conn) ForgetUnnamedOf(owner any) {
	if c.unnamedOwner == owner {
		c.unnamedOwner = nil
	}
}

// Cancel asks the backend to cancel what it is running now, with a
// CancelRequest on a new connection to the same address.
func (c *Conn) Cancel(ctx context.Context) error {
	addr := c.nc.RemoteAddr()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, addr.Network(), addr.String())
	if err != nil {
		return fmt.Errorf("cancel on backend %s: %w", c.Key, err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	buf, err := (&pgproto3.CancelRequest{ProcessID: c.pid, SecretKey: c.secret}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := nc.Write(buf); err != nil {
		return fmt.Errorf("cancel on backend %s: %w", c.Key, err)
	}
	// The server closes the connection when it has handled the request.
	var one [1]byte
	nc.Read(one[:])
	return nil
}

// alive reports whether an idle connection is still usable: nothing may
// arrive on it (a terminated backend sends a FATAL error and closes).
func (c *Conn) alive() bool {
	if c.broken.Load() {
		return false
	}
	if c.fe.ReadBufferLen() > 0 {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	var one [1]byte
	n, err := c.nc.Read(one[:])
	c.nc.SetReadDeadline(time.Time{})
	if n > 0 {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Conn) setDeadline(ctx context.Context) {
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
	} else {
		c.nc.SetDeadline(time.Time{})
	}
}
