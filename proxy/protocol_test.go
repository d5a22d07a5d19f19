package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/configs"
	"mqstack/router"
)

// rawConn logs in through the proxy with pgconn and hands back the wire.
func (h *harness) rawConn(t testing.TB) (*pgproto3.Frontend, func()) {
	hc := h.hijacked(t)
	return hc.Frontend, func() { hc.Conn.Close() }
}

// hijacked logs in through the proxy with pgconn and hands back the
// connection, for tests that write bytes themselves.
func (h *harness) hijacked(t testing.TB) *pgconn.HijackedConn {
	t.Helper()
	pc, err := pgconn.Connect(ctxT(t, 10*time.Second), h.connString())
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

// expect reads messages until one of type T arrives, failing on an error.
func expect[T pgproto3.BackendMessage](t testing.TB, fe *pgproto3.Frontend) T {
	t.Helper()
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if m, ok := msg.(T); ok {
			return m
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			t.Fatalf("unexpected error: %s %s", e.Code, e.Message)
		}
	}
}

// Execute with a row limit suspends the portal; the backend stays with the
// client until Sync, and Flush without Sync gets answers.
func TestSuspendedPortalAndFlush(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 1 })
	fe, closeFn := h.rawConn(t)
	defer closeFn()
	fe.Send(&pgproto3.Parse{Name: "gs", Query: "SELECT g FROM generate_series(1, 5) g"})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	expect[*pgproto3.ParseComplete](t, fe)
	fe.Send(&pgproto3.Bind{PreparedStatement: "gs"})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Flush{})
	fe.Flush()
	expect[*pgproto3.BindComplete](t, fe)
	rows := 0
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := msg.(*pgproto3.DataRow); ok {
			rows++
		}
		if _, ok := msg.(*pgproto3.PortalSuspended); ok {
			break
		}
	}
	// Another client must wait: the only backend is held by the open cycle.
	other := h.connect(t)
	done := make(chan error, 1)
	go func() {
		_, err := other.Exec(context.Background(), "SELECT 1")
		done <- err
	}()
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := msg.(*pgproto3.DataRow); ok {
			rows++
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if rows != 5 {
		t.Fatalf("rows %d, want 5", rows)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A named statement prepared on one backend is used on another.
func TestPreparedStatementsCrossBackends(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) {
		p.Size = 2
		p.StatementCacheSize = 2 // evictions too
	})
	ctx := ctxT(t, 30*time.Second)
	c := h.connect(t)
	pc := c.PgConn()
	if _, err := pc.Prepare(ctx, "s1", "SELECT $1::int + 100, pg_backend_pid()", nil); err != nil {
		t.Fatal(err)
	}
	pids := map[string]bool{}
	holders := []*pgx.Conn{h.connect(t), h.connect(t)}
	for i := range 6 {
		// Even rounds: another client holds the most recently used backend,
		// so s1 runs on the other one. Odd rounds: s1 runs in our own
		// transaction on the most recently used one.
		var tx pgx.Tx
		if i%2 == 0 {
			var err error
			if tx, err = holders[0].Begin(ctx); err != nil {
				t.Fatal(err)
			}
			tx.Exec(ctx, "SELECT 1")
		} else if _, err := pc.Exec(ctx, "BEGIN").ReadAll(); err != nil {
			t.Fatal(err)
		}
		res := pc.ExecPrepared(ctx, "s1", [][]byte{[]byte("5")}, nil, nil).Read()
		if res.Err != nil {
			t.Fatalf("exec s1 #%d: %v", i, res.Err)
		}
		if string(res.Rows[0][0]) != "105" {
			t.Fatalf("got %s", res.Rows[0][0])
		}
		pids[string(res.Rows[0][1])] = true
		if tx != nil {
			tx.Rollback(ctx)
		} else if _, err := pc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
			t.Fatal(err)
		}
		// Other statements push s1 out of the LRU sometimes.
		for j := range 3 {
			if _, err := c.Exec(ctx, "SELECT $1::int + "+string(rune('0'+j)), j); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(pids) < 2 {
		t.Fatalf("statement never changed backend: %v", pids)
	}
	// Close, then prepare the same name again: no "already exists".
	if err := pc.Deallocate(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Prepare(ctx, "s1", "SELECT 7", nil); err != nil {
		t.Fatal(err)
	}
	res := pc.ExecPrepared(ctx, "s1", nil, nil, nil).Read()
	if res.Err != nil || string(res.Rows[0][0]) != "7" {
		t.Fatalf("re-prepared s1: %v", res.Err)
	}
	// The unnamed statement reused in a later Sync cycle.
	fe, closeFn := h.rawConn(t)
	defer closeFn()
	fe.Send(&pgproto3.Parse{Query: "SELECT 'unnamed'::text"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	expect[*pgproto3.ReadyForQuery](t, fe)
	tx, _ := holders[0].Begin(ctx)
	tx.Exec(ctx, "SELECT 1")
	defer tx.Rollback(ctx)
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	row := expect[*pgproto3.DataRow](t, fe)
	if string(row.Values[0]) != "unnamed" {
		t.Fatalf("unnamed: %q", row.Values[0])
	}
	expect[*pgproto3.ReadyForQuery](t, fe)
}

func TestDeallocateAndDiscardAll(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 2 })
	ctx := ctxT(t, 30*time.Second)
	c := h.connect(t)
	pc := c.PgConn()
	for _, sql := range []string{"DEALLOCATE s1", "DEALLOCATE PREPARE s1", "DEALLOCATE ALL", "DISCARD ALL"} {
		if _, err := pc.Prepare(ctx, "s1", "SELECT 1", nil); err != nil {
			t.Fatalf("prepare before %s: %v", sql, err)
		}
		if r := pc.ExecPrepared(ctx, "s1", nil, nil, nil).Read(); r.Err != nil {
			t.Fatal(r.Err)
		}
		if _, err := pc.Exec(ctx, sql).ReadAll(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		r := pc.ExecPrepared(ctx, "s1", nil, nil, nil).Read()
		var pe *pgconn.PgError
		if !errors.As(r.Err, &pe) || pe.Code != "26000" {
			t.Fatalf("after %s: want 26000 (does not exist), got %v", sql, r.Err)
		}
	}
	// Inside a transaction too.
	if _, err := pc.Prepare(ctx, "s2", "SELECT 2", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Exec(ctx, "BEGIN; DEALLOCATE s2").ReadAll(); err == nil {
		// a multi-statement string is passed through: s2 is the client's name
	}
	pc.Exec(ctx, "ROLLBACK").ReadAll()
	if _, err := pc.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Exec(ctx, "DEALLOCATE s2").ReadAll(); err != nil {
		t.Fatalf("deallocate in a transaction: %v", err)
	}
	if _, err := pc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
		t.Fatal(err)
	}
	// DISCARD ALL after pinning unpins.
	if _, err := c.Exec(ctx, "SET work_mem = '8MB'"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "DISCARD ALL"); err != nil {
		t.Fatal(err)
	}
	var wm string
	c.QueryRow(ctx, "SHOW work_mem").Scan(&wm)
	if wm == "8MB" {
		t.Fatal("DISCARD ALL did not reset work_mem")
	}
}

// Session state other than LISTEN (which the proxy answers: listen_test.go)
// pins the client to its backend, counted by cause.
func TestPinCauses(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 3 })
	ctx := ctxT(t, 30*time.Second)
	// Other pin causes, each in its own session.
	for _, tc := range []struct{ sql, cause string }{
		{"SET work_mem = '4MB'", string(router.PinSessionSet)},
		{"CREATE TEMP TABLE pin_tmp (i int)", string(router.PinTempTable)},
		{"SELECT pg_advisory_lock(42)", string(router.PinAdvisoryLock)},
		{"PREPARE pin_p AS SELECT 1", string(router.PinSQLPrepare)},
	} {
		before := counterValue(t, h, "mqstack_pins_total", "cause", tc.cause)
		c := h.connect(t)
		pid1 := backendPID(t, ctx, c)
		if _, err := c.Exec(ctx, tc.sql); err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if got := counterValue(t, h, "mqstack_pins_total", "cause", tc.cause); got != before+1 {
			t.Errorf("%s: pins{cause=%s} %v -> %v", tc.sql, tc.cause, before, got)
		}
		pid2 := backendPID(t, ctx, c)
		pid3 := backendPID(t, ctx, c)
		if pid2 != pid3 {
			t.Errorf("%s: pinned session changed backend (%d, %d)", tc.sql, pid2, pid3)
		}
		_ = pid1
		c.Close(ctx)
	}
}

// Startup parameters are replayed when clients with different settings
// share one backend connection.
func TestStartupParameterReplay(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 1 })
	ctx := ctxT(t, 30*time.Second)
	a := h.connect(t, "application_name=alpha", "timezone=UTC", "options='-c statement_timeout=4321 -c search_path=pg_catalog'")
	b := h.connect(t, "application_name=beta", "timezone=America/New_York")
	for range 3 {
		for _, tc := range []struct {
			c               *pgx.Conn
			app, tz, st, sp string
		}{{a, "alpha", "UTC", "4321ms", "pg_catalog"}, {b, "beta", "America/New_York", "0", `"$user", public`}} {
			var app, tz, st, sp string
			if err := tc.c.QueryRow(ctx, "SELECT current_setting('application_name'), current_setting('TimeZone'), current_setting('statement_timeout'), current_setting('search_path')").Scan(&app, &tz, &st, &sp); err != nil {
				t.Fatal(err)
			}
			if app != tc.app || tz != tc.tz || st != tc.st || sp != tc.sp {
				t.Fatalf("got %q %q %q %q, want %q %q %q %q", app, tz, st, sp, tc.app, tc.tz, tc.st, tc.sp)
			}
		}
	}
	// A tracked SET follows the client to other backends.
	if _, err := b.Exec(ctx, "SET application_name = 'beta2'"); err != nil {
		t.Fatal(err)
	}
	a.Exec(ctx, "SELECT 1")
	var app string
	b.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app)
	if app != "beta2" {
		t.Fatalf("application_name after SET: %q", app)
	}
	if got := b.PgConn().ParameterStatus("application_name"); got != "beta2" {
		t.Fatalf("ParameterStatus application_name %q", got)
	}
}

// A simple Query inside an unsynced extended sequence (after a Parse that
// fails) is refused with 08P01, and the backend is free again at once: a
// client of a one-backend pool is served right after.
func TestQueryInsideExtendedSequence(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) {
		p.Size = 1
		p.CheckoutTimeout = 3 * time.Second
	})
	fe, closeConn := h.rawConn(t)
	defer closeConn()
	fe.Send(&pgproto3.Parse{Query: "SELEC nonsense"})
	fe.Send(&pgproto3.Query{String: "SELECT 1"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var fatal *pgproto3.ErrorResponse
	for fatal == nil {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			if m.Severity == "FATAL" {
				fatal = m
			}
		case *pgproto3.ReadyForQuery:
			t.Fatal("the Query was answered; it must be refused")
		}
	}
	if fatal.Code != "08P01" || !strings.Contains(fatal.Message, "Sync") {
		t.Fatalf("got %s %s", fatal.Code, fatal.Message)
	}
	closeConn()
	start := time.Now()
	var n int
	if err := h.connect(t).QueryRow(ctxT(t, 10*time.Second), "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("next client: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the backend was held %s after the refused session", d)
	}
}
