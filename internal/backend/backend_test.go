package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"mqstack/configs"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func newManager(t *testing.T, tweak func(*configs.PoolConfig)) (*Manager, *pgembed.Cluster) {
	t.Helper()
	cl := testenv.Cluster(t)
	pc := configs.Default().Pool
	pc.Size = 2
	// Long enough for a new backend login on a loaded machine; the tests of
	// timeouts shorten it for the checkout that must time out only.
	pc.CheckoutTimeout = 10 * time.Second
	if tweak != nil {
		tweak(&pc)
	}
	m, err := NewManager(Options{
		Backends:   []configs.BackendConfig{{Name: "main", Host: cl.SocketDir(), Port: cl.Port(), SSLMode: "disable"}},
		Pool:       pc,
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, cl
}

var key = Key{Backend: "main", Database: "postgres", Role: "mq"}

func TestAcquireLogsInAsRole(t *testing.T) {
	m, _ := newManager(t, nil)
	ctx := context.Background()
	c, err := m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Params["session_authorization"] != "mq" || c.Params["is_superuser"] != "off" {
		t.Fatalf("params %v", c.Params)
	}
	if err := c.Apply(ctx, map[string]string{"search_path": "pg_catalog", "TimeZone": "UTC"}, nil,
		func(n string) bool { return n == "search_path" }); err != nil {
		t.Fatal(err)
	}
	if c.Params["TimeZone"] != "UTC" || c.applied["search_path"] != "pg_catalog" {
		t.Fatalf("after Apply: %v %v", c.Params, c.applied)
	}
	err = c.Exec(ctx, "SELECT * FROM no_such_table")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42P01" || c.Broken() {
		t.Fatalf("Exec error: %v broken=%v", err, c.Broken())
	}
	c.Release()
	// Unknown roles fail with the server's error.
	_, err = m.Acquire(ctx, Key{Backend: "main", Database: "postgres", Role: "nobody"}, "")
	if !errors.As(err, &pe) || pe.Code != "28000" {
		t.Fatalf("unknown role: %v", err)
	}
	if _, err := m.Acquire(ctx, Key{Backend: "other", Database: "postgres", Role: "mq"}, ""); err == nil {
		t.Fatal("unknown backend accepted")
	}
}

func TestCheckoutTimeoutAndReload(t *testing.T) {
	m, _ := newManager(t, nil)
	ctx := context.Background()
	a, err := m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	shortTimeout(t, m)
	_, err = m.Acquire(ctx, key, "")
	var cte *CheckoutTimeoutError
	if !errors.As(err, &cte) || cte.Size != 2 {
		t.Fatalf("want CheckoutTimeoutError, got %v", err)
	}
	// A reload to size 3 makes room without dropping a or b.
	cfg := m.Config()
	cfg.Size = 3
	cfg.CheckoutTimeout = 10 * time.Second
	if err := m.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	c, err := m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatalf("after reload: %v", err)
	}
	for _, x := range []*Conn{a, b, c} {
		if err := x.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		x.Release()
	}
}

// shortTimeout makes the next checkout time out after 300ms: only the one
// that must, once the connections it waits on are logged in (a login on a
// loaded machine can take longer than that).
func shortTimeout(t *testing.T, m *Manager) {
	t.Helper()
	cfg := m.Config()
	cfg.CheckoutTimeout = 300 * time.Millisecond
	if err := m.Reload(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestShareLimit(t *testing.T) {
	for _, c := range []struct {
		size  int
		share float64
		want  int
	}{{4, 0.5, 2}, {5, 0.5, 2}, {1, 0.5, 1}, {3, 0.1, 1}, {20, 1, 20}, {10, 0.33, 3}} {
		if got := ShareLimit(c.size, c.share); got != c.want {
			t.Errorf("ShareLimit(%d, %v) = %d, want %d", c.size, c.share, got, c.want)
		}
	}
}

// One holder gets at most its share of a pool: its next checkout waits
// until one of its own connections comes back or times out, while another
// holder still gets a connection. A reload that grows the pool grows the
// share, and waiting checkouts see it.
func TestHolderShare(t *testing.T) {
	m, _ := newManager(t, func(p *configs.PoolConfig) { p.Size, p.MaxShare = 4, 0.5 })
	ctx := context.Background()
	a1, err := m.Acquire(ctx, key, "a")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := m.Acquire(ctx, key, "a")
	if err != nil {
		t.Fatal(err)
	}
	shortTimeout(t, m)
	start := time.Now()
	_, err = m.Acquire(ctx, key, "a")
	var cte *CheckoutTimeoutError
	if !errors.As(err, &cte) || !cte.ShareExceeded() || cte.Held != 2 || cte.Holder != "a" || cte.Size != 4 {
		t.Fatalf("third checkout of a: %v, want a share timeout", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("share timeout after %v, before pool.checkout_timeout", d)
	}
	for _, want := range []string{`token "a" holds 2`, "pool.max_share 0.5", "main/postgres/mq"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	// From here on checkouts must succeed: give them time for a login.
	long := m.Config()
	long.CheckoutTimeout = 10 * time.Second
	if err := m.Reload(long); err != nil {
		t.Fatal(err)
	}
	b, err := m.Acquire(ctx, key, "b")
	if err != nil {
		t.Fatalf("another holder: %v", err)
	}
	// A waiting checkout of a gets the connection a releases.
	got := make(chan error, 1)
	go func() {
		c, err := m.Acquire(ctx, key, "a")
		if err == nil {
			c.Release()
		}
		got <- err
	}()
	waitHeldWaiting(t, m)
	a1.Release()
	if err := <-got; err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if n := m.Held(key, "a"); n != 1 {
		t.Fatalf("a holds %d, want 1", n)
	}
	// Grow the pool to 6 while a waits at its share of 2: the share becomes 3.
	a3, err := m.Acquire(ctx, key, "a")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := m.Acquire(ctx, key, "a")
		if err == nil {
			c.Release()
		}
		got <- err
	}()
	waitHeldWaiting(t, m)
	cfg := m.Config()
	cfg.Size = 6
	cfg.CheckoutTimeout = 10 * time.Second
	if err := m.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("after the reload: %v", err)
	}
	for _, c := range []*Conn{a2, a3, b} {
		c.Release()
	}
	// Unlimited checkouts ("") and released holders leave no entries.
	u, err := m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	u.Release()
	m.mu.Lock()
	p := m.pools[key]
	m.mu.Unlock()
	p.hmu.Lock()
	n := len(p.held)
	p.hmu.Unlock()
	if n != 0 {
		t.Fatalf("%d share entries left", n)
	}
}

// waitHeldWaiting waits until a checkout waits for key's pool.
func waitHeldWaiting(t *testing.T, m *Manager) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, "a checkout waiting for its share", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.pools[key].waiting > 0
	})
}

func TestBrokenConnectionsAreDiscarded(t *testing.T) {
	m, cl := newManager(t, nil)
	ctx := context.Background()
	c, err := m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	pid := c.PID()
	c.Release()
	released := time.Now()
	su, err := pgx.Connect(ctx, cl.ConnString(pgembed.Superuser, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	var signalled bool
	if err := su.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&signalled); err != nil || !signalled {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, signalled, err)
	}
	testenv.WaitFor(t, 10*time.Second, "the terminated backend to exit", func() bool {
		var n int
		err := su.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n)
		return err == nil && n == 0
	})
	// Acquire checks a connection for life only once it has idled more than
	// a second: that idle time is part of what is tested.
	time.Sleep(time.Until(released.Add(1100 * time.Millisecond)))
	c, err = m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.PID() == pid {
		t.Fatal("terminated backend handed out")
	}
	// A connection left in a transaction is not reused.
	if err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	pid = c.PID()
	c.Release()
	c, err = m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.PID() == pid || c.TxStatus != 'I' {
		t.Fatal("connection in a transaction reused")
	}
	c.Release()
}

func TestIdleTimeoutAndPasswords(t *testing.T) {
	m, _ := newManager(t, func(p *configs.PoolConfig) {
		p.IdleTimeout = 50 * time.Millisecond
		p.HealthCheckPeriod = 100 * time.Millisecond
	})
	c, err := m.Acquire(context.Background(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	testenv.WaitFor(t, 5*time.Second, "the idle connection to be closed", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.pools[key].p.Stat().TotalResources() == 0
	})
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.lookupEnv = func(k string) (string, bool) { return "from-env", k == "PW" }
	pw := m.password(configs.BackendConfig{
		Passwords:     map[string]configs.Secret{"a": "inline"},
		PasswordFiles: map[string]string{"b": f},
		PasswordEnv:   map[string]string{"c": "PW", "d": "MISSING"},
	})
	for role, want := range map[string]string{"a": "inline", "b": "from-file", "c": "from-env", "e": ""} {
		if got, err := pw(role); err != nil || got != want {
			t.Errorf("password(%s) = %q, %v", role, got, err)
		}
	}
	if _, err := pw("d"); err == nil {
		t.Error("missing env var accepted")
	}
}

func TestStmtCache(t *testing.T) {
	c := NewStmtCache(2)
	c.Add("a")
	c.Add("b")
	c.Has("a") // a is used: b is now the least recent
	c.Add("c") // evicts b
	if c.Len() != 2 || !c.Has("a") || !c.Has("c") {
		t.Fatal("LRU order")
	}
	if !c.Has("b") { // evicted but not closed yet: revived
		t.Fatal("pending name not revived")
	}
	p := c.TakePending()
	if len(p) != 1 {
		t.Fatalf("pending %v", p)
	}
	c.Clear()
	if c.Len() != 0 || len(c.TakePending()) != 0 {
		t.Fatal("clear")
	}
}
