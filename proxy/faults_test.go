package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestCancelThroughProxy(t *testing.T) {
	h := newHarness(t, nil)
	ctx := ctxT(t, 30*time.Second)
	c := h.connect(t)
	d := h.direct(t)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "SELECT pg_sleep(20)")
		done <- err
	}()
	testenv.WaitFor(t, 10*time.Second, "pg_sleep(20) to run on the backend", func() bool {
		var n int
		err := d.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()").Scan(&n)
		return err == nil && n == 1
	})
	if err := c.PgConn().CancelRequest(ctx); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
	err := <-done
	if pgCode(err) != "57014" {
		t.Fatalf("want 57014 query_canceled, got %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("cancel took too long")
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("session unusable after cancel: %v", err)
	}
}

// A client that vanishes mid-transaction leaves no transaction or lock.
func TestClientDisconnectMidTransaction(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 1 })
	h.testSchema(t)
	ctx := ctxT(t, 30*time.Second)
	setup := h.connect(t)
	setup.Exec(ctx, "CREATE TABLE IF NOT EXISTS mq_test.locked (id int primary key)")
	setup.Exec(ctx, "INSERT INTO mq_test.locked VALUES (1) ON CONFLICT DO NOTHING")
	setup.Close(ctx)
	for _, how := range []string{"idle in transaction", "running"} {
		c, err := pgx.Connect(ctx, h.connString())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "SELECT * FROM mq_test.locked FOR UPDATE"); err != nil {
			t.Fatal(err)
		}
		d := h.direct(t)
		if how == "running" {
			c.PgConn().Frontend().Send(&pgproto3.Query{String: "SELECT pg_sleep(30)"})
			if err := c.PgConn().Frontend().Flush(); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 10*time.Second, "pg_sleep(30) to run on the backend", func() bool {
				var n int
				err := d.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()").Scan(&n)
				return err == nil && n == 1
			})
		}
		c.PgConn().Conn().Close() // vanish without Terminate
		testenv.WaitFor(t, 15*time.Second, "the backend to be rolled back", func() bool {
			var n int
			d.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'mq' AND (state <> 'idle' OR xact_start IS NOT NULL)").Scan(&n)
			return n == 0
		})
		// The only backend is reused clean: the row is not locked.
		o := h.connect(t)
		if _, err := o.Exec(ctx, "SET lock_timeout = '2s'; SELECT * FROM mq_test.locked FOR UPDATE NOWAIT"); err != nil && pgCode(err) != "" {
			t.Fatalf("%s: row still locked: %v", how, err)
		}
		o.Close(ctx)
	}
}

func TestPoolExhaustionAndRecovery(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) {
		p.Size = 1
		p.CheckoutTimeout = time.Second // long enough for the one login on a loaded machine
	})
	ctx := ctxT(t, 30*time.Second)
	a := h.connect(t)
	b := h.connect(t)
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Exec(ctx, "SELECT 1")
	_, err = b.Exec(ctx, "SELECT 1")
	if pgCode(err) != "53300" {
		t.Fatalf("want 53300, got %v", err)
	}
	if !strings.Contains(err.Error(), "pool.size 1") {
		t.Errorf("message should explain: %v", err)
	}
	if _, err := b.Exec(ctx, "SELECT $1::int", 1); pgCode(err) != "53300" {
		t.Fatalf("extended: want 53300, got %v", err)
	}
	tx.Commit(ctx)
	var n int
	if err := b.QueryRow(ctx, "SELECT $1::int", 5).Scan(&n); err != nil || n != 5 {
		t.Fatalf("after recovery: %v", err)
	}
}

// A backend killed under a client: the client gets an error, the pool recovers.
func TestBackendTerminated(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 1 })
	ctx := ctxT(t, 30*time.Second)
	c := h.connect(t)
	d := h.direct(t)
	terminate := func(pid int) {
		t.Helper()
		var signalled bool
		if err := d.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&signalled); err != nil || !signalled {
			t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, signalled, err)
		}
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := backendPID(t, ctx, tx.Conn())
	lostBefore := counterValue(t, h, "mqstack_connections_closed_total", "reason", closeBackendError)
	terminate(pid)
	if _, err := tx.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("want an error on a terminated backend")
	}
	// The reader saw the backend go; the session is counted for that, not
	// for the shutdown of its own context that followed.
	testenv.WaitFor(t, 10*time.Second, "the session counted as backend_error", func() bool {
		return counterValue(t, h, "mqstack_connections_closed_total", "reason", closeBackendError) == lostBefore+1
	})
	o := h.connect(t)
	if p2 := backendPID(t, ctx, o); p2 == pid {
		t.Fatal("terminated backend reused")
	}
	// An idle pooled backend terminated: detected at checkout.
	pid3 := backendPID(t, ctx, o)
	released := time.Now()
	terminate(pid3)
	testenv.WaitFor(t, 10*time.Second, "the terminated backend to exit", func() bool {
		var n int
		err := d.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid3).Scan(&n)
		return err == nil && n == 0
	})
	// A checkout checks a connection for life only once it has idled more
	// than a second: that idle time is part of what is tested.
	time.Sleep(time.Until(released.Add(1200 * time.Millisecond)))
	if p4 := backendPID(t, ctx, o); p4 == pid3 {
		t.Fatal("dead idle backend reused")
	}
}

func TestTLSAndPlaintextPolicy(t *testing.T) {
	h := newHarness(t, nil)
	ctx := ctxT(t, 10*time.Second)
	cs := strings.Replace(h.connString(), "sslmode=disable", "sslmode=require", 1)
	c, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatalf("sslmode=require: %v", err)
	}
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatal("not TLS")
	}
	c.Close(ctx)
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	far := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7)}
	for _, tc := range []struct {
		addr       net.Addr
		tls, allow bool
		want       bool
	}{
		{lo, false, false, true}, {far, false, false, false}, {far, true, false, true},
		{far, false, true, true}, {&net.UnixAddr{Net: "unix"}, false, false, true},
		{&net.TCPAddr{IP: net.IPv6loopback}, false, false, true},
	} {
		if got := plaintextAllowed(tc.addr, tc.tls, tc.allow); got != tc.want {
			t.Errorf("plaintextAllowed(%v, tls=%v, allow=%v) = %v", tc.addr, tc.tls, tc.allow, got)
		}
	}
}

func TestAuthRefusals(t *testing.T) {
	h := newHarness(t, nil)
	ctx := ctxT(t, 20*time.Second)
	try := func(user, password string, extra ...string) error {
		cs := "host=127.0.0.1 port=" + h.port() + " user=" + user + " dbname=postgres sslmode=disable password=" + password + " " + strings.Join(extra, " ")
		c, err := pgconn.Connect(ctx, cs)
		if err == nil {
			c.Close(ctx)
		}
		return err
	}
	for _, tc := range []struct {
		name, user, pw, code, msg string
	}{
		{"garbage", "mq", "not-a-token", "28P01", "malformed"},
		// Issued an hour ago for a minute: past exp by far more than the 30s leeway.
		{"expired", "mq", testenv.Token(t, testSecret, auth.MintOptions{TTL: time.Minute, Now: time.Now().Add(-time.Hour)}), "28P01", "token expired"},
		{"bad signature", "mq", testenv.Token(t, testSecret, auth.MintOptions{})[:40] + "x" + testenv.Token(t, testSecret, auth.MintOptions{})[41:], "28P01", ""},
		{"user differs from role", "someone", testenv.Token(t, testSecret, auth.MintOptions{}), "28000", `"someone"`},
		{"superuser role", "postgres", testenv.Token(t, testSecret, auth.MintOptions{Role: "postgres"}), "28000", "superuser"},
		{"oversize", "mq", strings.Repeat("a", 9000), "28P01", "too long"},
	} {
		err := try(tc.user, tc.pw)
		if pgCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: want %s containing %q, got %v", tc.name, tc.code, tc.msg, err)
		}
		if strings.Contains(err.Error(), tc.pw) && len(tc.pw) > 20 {
			t.Errorf("%s: error shows the token", tc.name)
		}
	}
	if err := try("mq", testenv.Token(t, testSecret, auth.MintOptions{}), "replication=database"); pgCode(err) != "0A000" {
		t.Errorf("replication: want 0A000, got %v", err)
	}
}

// A token that was accepted is refused once its exp has passed (auth.leeway
// 0): the verifier's cache does not outlive the token. The refusal is FATAL
// 28P01 and says the token expired.
func TestTokenExpiresBeforeLogin(t *testing.T) {
	h := newHarnessAuth(t, testenv.Cluster(t), nil, func(a *configs.AuthConfig) { a.Leeway = 0 })
	ctx := ctxT(t, 30*time.Second)
	// exp is minted to the second, so it is at most issued+ttl: after that
	// instant the token has expired. Three seconds leave two or more for the
	// first login.
	issued, ttl := time.Now(), 3*time.Second
	tok := testenv.Token(t, testSecret, auth.MintOptions{TTL: ttl, Now: issued})
	cs := "host=127.0.0.1 port=" + h.port() + " user=mq dbname=postgres sslmode=disable password=" + tok
	c, err := pgconn.Connect(ctx, cs)
	if err != nil {
		t.Fatalf("login before exp: %v", err)
	}
	c.Close(ctx)
	testenv.WaitUntil(issued.Add(ttl)) // the clock passing exp is what is tested
	c, err = pgconn.Connect(ctx, cs)
	if err == nil {
		c.Close(ctx)
		t.Fatal("an expired token was accepted at login")
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Severity != "FATAL" || pe.Code != "28P01" || !strings.Contains(pe.Message, "token expired") {
		t.Fatalf("want FATAL 28P01 token expired, got %v", err)
	}
	if strings.Contains(err.Error(), tok) {
		t.Fatal("the refusal shows the token")
	}
}

// GSSENCRequest is refused with 'N'; a newer protocol minor and _pq_
// options get NegotiateProtocolVersion.
func TestStartupNegotiation(t *testing.T) {
	h := newHarness(t, nil)
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	var pkt [8]byte
	binary.BigEndian.PutUint32(pkt[:], 8)
	binary.BigEndian.PutUint32(pkt[4:], codeGSSENCRequest)
	nc.Write(pkt[:])
	var one [1]byte
	if _, err := io.ReadFull(nc, one[:]); err != nil || one[0] != 'N' {
		t.Fatalf("GSSENC: %q %v", one, err)
	}
	body := []byte{}
	body = binary.BigEndian.AppendUint32(body, 3<<16|2)
	for _, s := range []string{"user", "mq", "database", "postgres", "_pq_.future", "1", ""} {
		body = append(body, s...)
		body = append(body, 0)
	}
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	nc.Write(append(msg, body...))
	fe := pgproto3.NewFrontend(nc, nc)
	m, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	npv, ok := m.(*pgproto3.NegotiateProtocolVersion)
	if !ok || npv.NewestMinorProtocol != 0 || len(npv.UnrecognizedOptions) != 1 || npv.UnrecognizedOptions[0] != "_pq_.future" {
		t.Fatalf("want NegotiateProtocolVersion, got %#v", m)
	}
	m, _ = fe.Receive()
	if _, ok := m.(*pgproto3.AuthenticationCleartextPassword); !ok {
		t.Fatalf("want a password request, got %#v", m)
	}
	fe.Send(&pgproto3.PasswordMessage{Password: testenv.Token(t, testSecret, auth.MintOptions{})})
	fe.Flush()
	expect[*pgproto3.ReadyForQuery](t, fe)
}

// Shutdown: idle clients are closed, a transaction may finish, new clients
// are refused.
func TestShutdownDrains(t *testing.T) {
	h := newHarness(t, nil)
	ctx := ctxT(t, 30*time.Second)
	idle := h.connect(t)
	busy := h.connect(t)
	tx, err := busy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Exec(ctx, "SELECT 1")
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(sctx)
	}()
	testenv.WaitFor(t, 5*time.Second, "the idle client to be closed", func() bool {
		return idle.Ping(ctx) != nil
	})
	if _, err := tx.Exec(ctx, "SELECT 2"); err != nil {
		t.Fatalf("transaction cut short: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit during drain: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish after the transaction")
	}
	if _, err := pgx.Connect(ctx, h.connString()); err == nil {
		t.Fatal("new client accepted after shutdown")
	}
}
