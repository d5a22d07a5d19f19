package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

// connectWith connects through the proxy with token tok.
func (h *harness) connectWith(t testing.TB, tok string, extra string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%s user=mq dbname=postgres sslmode=disable password=%s %s",
		h.port(), tok, extra))
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// One token holds at most pool.max_share of a pool: with 4 backends and
// a share of 0.5, its third concurrent transaction waits and gets 53300
// after the checkout timeout while another token still gets a backend;
// once the first token commits, its next checkout succeeds.
func TestTokenShareOfPool(t *testing.T) {
	h := newHarness(t, func(p *configs.ProxyConfig, pool *configs.PoolConfig) {
		pool.Size = 4
		pool.MaxShare = 0.5
		pool.CheckoutTimeout = 2 * time.Second // long enough for a login on a loaded machine
	})
	ctx := ctxT(t, 60*time.Second)
	tok := testenv.Token(t, testSecret, auth.MintOptions{})
	a1, a2, a3 := h.connectWith(t, tok, ""), h.connectWith(t, tok, ""), h.connectWith(t, tok, "")
	tx1, err := a1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx2, err := a2.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range []pgx.Tx{tx1, tx2} {
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = a3.Exec(ctx, "SELECT 1")
	if pgCode(err) != "53300" {
		t.Fatalf("third transaction of one token: %v, want 53300", err)
	}
	var pe *pgconn.PgError
	errors.As(err, &pe)
	for _, want := range []string{"holds 2 backend connections", "pool.max_share 0.5"} {
		if !strings.Contains(pe.Message, want) {
			t.Errorf("message %q lacks %q", pe.Message, want)
		}
	}
	// Another token still gets one of the two free backends.
	b := h.connect(t)
	var one int
	if err := b.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("another token: %v", err)
	}
	// The first token's third client, still connected, gets a backend once
	// one of its transactions ends.
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a3.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("after a commit: %v", err)
	}
	if err := tx2.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// A client idle in a transaction longer than
// proxy.idle_in_transaction_timeout is closed with FATAL 25P03; its backend
// is rolled back and serves the next client. A statement running longer
// than the timeout inside a transaction is not idleness.
func TestIdleInTransactionTimeout(t *testing.T) {
	h := newHarness(t, func(p *configs.ProxyConfig, pool *configs.PoolConfig) {
		p.IdleInTransactionTimeout = time.Second
		pool.Size = 1
		pool.CheckoutTimeout = 30 * time.Second
	})
	ctx := ctxT(t, 60*time.Second)
	closed := func() float64 {
		return counterValue(t, h, "mqstack_connections_closed_total", "reason", "idle_in_transaction_timeout")
	}
	before := closed()
	busy := h.connect(t)
	tx, err := busy.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_sleep(1.5)"); err != nil {
		t.Fatalf("a statement longer than the timeout: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	a, b := h.connect(t), h.connect(t)
	if _, err := a.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	// b waits for the pool's only backend, which a holds.
	done := make(chan error, 1)
	go func() {
		var n int
		done <- b.QueryRow(ctx, "SELECT 1").Scan(&n)
	}()
	// a sends nothing more: the proxy's FATAL arrives unasked.
	_, err = a.PgConn().ReceiveMessage(ctx)
	if pgCode(err) != "25P03" {
		t.Fatalf("idle client got %v, want FATAL 25P03", err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe); pe.Severity != "FATAL" || !strings.Contains(pe.Message, "proxy.idle_in_transaction_timeout") {
		t.Fatalf("error %+v", pe)
	}
	if _, err := a.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("the closed client's next query worked")
	}
	if err := <-done; err != nil {
		t.Fatalf("the waiting client: %v", err)
	}
	testenv.WaitFor(t, 10*time.Second, "the close to be counted", func() bool { return closed() == before+1 })
	direct := h.direct(t)
	testenv.WaitFor(t, 10*time.Second, "no backend idle in a transaction", func() bool {
		var n int
		err := direct.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE usename = 'mq' AND state LIKE 'idle in transaction%'`).Scan(&n)
		return err == nil && n == 0
	})
	var n int
	if err := b.QueryRow(ctx, "SELECT 2").Scan(&n); err != nil || n != 2 {
		t.Fatalf("the other client afterwards: %v", err)
	}
}

// Only the backends' databases (and names) and proxy.databases are served.
func TestStartupDatabases(t *testing.T) {
	const extra = "mq_extra_db"
	h := newHarness(t, func(p *configs.ProxyConfig, _ *configs.PoolConfig) { p.Databases = []string{extra} })
	ctx := ctxT(t, 60*time.Second)
	direct := h.direct(t)
	if _, err := direct.Exec(ctx, "DROP DATABASE IF EXISTS "+extra+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Exec(ctx, "CREATE DATABASE "+extra); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// FORCE ends the pool's connections to it, which the pool drops.
		c, err := pgx.Connect(context.Background(), h.cluster.ConnString(pgembed.Superuser, "postgres"))
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+extra+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	tok := testenv.Token(t, testSecret, auth.MintOptions{})
	open := func(db string) (string, error) {
		c, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%s user=mq dbname=%s sslmode=disable password=%s", h.port(), db, tok))
		if err != nil {
			return "", err
		}
		defer c.Close(ctx)
		var cur string
		err = c.QueryRow(ctx, "SELECT current_database()").Scan(&cur)
		return cur, err
	}
	_, err := open("template1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3D000" || pe.Severity != "FATAL" ||
		!strings.Contains(pe.Message, `"template1"`) || !strings.Contains(pe.Hint, "proxy.databases") {
		t.Fatalf("template1: %v, want FATAL 3D000 naming it and proxy.databases", err)
	}
	for db, want := range map[string]string{"postgres": "postgres", "main": "postgres", extra: extra} {
		if cur, err := open(db); err != nil || cur != want {
			t.Errorf("dbname=%s: %q, %v; want %q", db, cur, err, want)
		}
	}
}
