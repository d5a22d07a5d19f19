package reliability

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/pgembed"
	"mqstack/internal/stack"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(idleHelperEnv); addr != "" {
		os.Exit(idleClientsHelper(addr))
	}
	os.Exit(testenv.Run(m))
}

var testSecret = []byte("reliability-0123456789abcdef-0123456789abcdef")

// envOptions size a test stack. Zero values take the defaults below.
type envOptions struct {
	PoolSize          int           // default 8
	CheckoutTimeout   time.Duration // default 2s
	LoginTimeout      time.Duration // proxy.client_login_timeout, default 5s
	ShutdownTimeout   time.Duration // proxy.shutdown_timeout, default 10s
	ReadHeaderTimeout time.Duration // rest.read_header_timeout, default 5s
	ReadTimeout       time.Duration // rest.read_timeout, default 30s
}

// env is a private Postgres cluster and a stack (proxy, REST, metrics) in
// front of it. The cluster can be stopped, crashed and restarted on the same
// data directory while the stack keeps running.
type env struct {
	t   testing.TB
	dir string
	cfg *configs.Validated
	log *zap.Logger

	mu      sync.Mutex
	cluster *pgembed.Cluster
	st      *stack.Stack
	stopped bool
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	dir, err := testenv.TempDir()
	if err != nil {
		t.Fatal(err)
	}
	c, err := testenv.Start(dir, testenv.Options{})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("cannot start Postgres (tests need it; run `make deps`): %v", err)
	}
	e := &env{t: t, dir: dir, cluster: c, log: zap.NewNop()}
	if os.Getenv("MQSTACK_TEST_LOG") != "" {
		e.log = zaptest.NewLogger(t)
	}
	t.Cleanup(func() {
		e.shutdown(10 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		e.pg().Stop(ctx)
		os.RemoveAll(dir)
	})
	cfg := testenv.FrontEndConfig(dir, testSecret)
	cfg.Pool.Size = or(o.PoolSize, 8)
	cfg.Pool.CheckoutTimeout = or(o.CheckoutTimeout, 2*time.Second)
	cfg.Proxy.ClientLoginTimeout = or(o.LoginTimeout, 5*time.Second)
	cfg.Proxy.ShutdownTimeout = or(o.ShutdownTimeout, 10*time.Second)
	cfg.REST.ReadHeaderTimeout = or(o.ReadHeaderTimeout, 5*time.Second)
	cfg.REST.ReadTimeout = or(o.ReadTimeout, 30*time.Second)
	v, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = v
	st, err := stack.Start(stack.Options{
		Config:      v,
		Backends:    []configs.BackendConfig{c.Backend()},
		Auth:        v.Auth,
		DefaultRole: "mq",
		Logger:      e.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	return e
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (e *env) pg() *pgembed.Cluster {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cluster
}

// shutdown stops the stack the way SIGTERM does, once, and says how long it
// took.
func (e *env) shutdown(timeout time.Duration) time.Duration {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return 0
	}
	e.stopped = true
	e.mu.Unlock()
	start := time.Now()
	e.st.Shutdown(timeout)
	return time.Since(start)
}

// connString is a libpq string for the proxy as role mq with a fresh token.
func (e *env) connString() string {
	host, port, _ := net.SplitHostPort(e.st.ProxyAddr())
	return fmt.Sprintf("host=%s port=%s user=mq dbname=postgres sslmode=disable connect_timeout=10 password=%s",
		host, port, testenv.Token(e.t, testSecret, auth.MintOptions{TTL: 2 * time.Hour}))
}

func (e *env) restURL(fn string) string { return "http://" + e.st.RESTAddr() + "/pgmq/v1/" + fn }

// direct is a superuser connection to the cluster itself, not through the
// proxy; it waits for the cluster to accept connections.
func (e *env) direct(ctx context.Context) (*pgx.Conn, error) {
	var last error
	for ctx.Err() == nil {
		c, err := pgx.Connect(ctx, e.pg().ConnString(pgembed.Superuser, "postgres"))
		if err == nil {
			return c, nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("direct connection: %w (last: %v)", ctx.Err(), last)
}

func (e *env) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := e.direct(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// scanDirect runs one single-row query on a fresh direct connection and
// scans it into dest; false on any error (for polls that retry).
func (e *env) scanDirect(sql string, args []any, dest ...any) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.direct(ctx)
	if err != nil {
		return false
	}
	defer c.Close(context.Background())
	return c.QueryRow(ctx, sql, args...).Scan(dest...) == nil
}

// createQueue makes a queue through the proxy, as a client would.
func (e *env) createQueue(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.connString())
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "SELECT pgmq.create($1)", name); err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
}

// stopPostgres stops the cluster: "fast" is a fast shutdown (SIGINT),
// "immediate" sends SIGQUIT to the postmaster (pg_ctl -m immediate).
func (e *env) stopPostgres(t testing.TB, how string) {
	t.Helper()
	c := e.pg()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch how {
	case "fast":
		if err := c.Stop(ctx); err != nil {
			t.Fatalf("fast shutdown: %v", err)
		}
	case "immediate":
		data, err := os.ReadFile(filepath.Join(c.PGData(), "postmaster.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]))
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
			t.Fatalf("SIGQUIT to the postmaster: %v", err)
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("postmaster did not exit after SIGQUIT")
		}
	default:
		t.Fatalf("BUG: stop %q", how)
	}
}

// startPostgres starts the cluster again on the same data directory (crash
// recovery after an immediate shutdown).
func (e *env) startPostgres(t testing.TB) {
	t.Helper()
	c, err := testenv.Start(e.dir, testenv.Options{})
	if err != nil {
		t.Fatalf("restart Postgres on the same data directory: %v", err)
	}
	e.mu.Lock()
	e.cluster = c
	e.mu.Unlock()
}

// metric sums the samples of a counter or gauge whose labels include want.
func (e *env) metric(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	return testenv.Metric(t, e.st.Registry, name, want)
}

// noIdleInTransaction waits until no backend of role mq is idle in a
// transaction (a proxy that lost track of one would leave it so).
func (e *env) noIdleInTransaction(t testing.TB) {
	t.Helper()
	var last string
	testenv.WaitFor(t, 15*time.Second, "no backend idle in transaction", func() bool {
		var n int
		return e.scanDirect(`SELECT count(*), coalesce(string_agg(pid || ': ' || left(query, 60), '; '), '')
			FROM pg_stat_activity WHERE usename = 'mq' AND state LIKE 'idle in transaction%'`, nil, &n, &last) && n == 0
	})
}
