package rest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/backend"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var testSecret = []byte("rest-test-secret-0123456789abcdef-0123456789")

var pgmqOnce sync.Once

// cluster returns the shared cluster with the pgmq extension created in
// database postgres by role mq (pgembed's bootstrap does it when the
// extension is installed; otherwise it is installed from the repository).
func cluster(t testing.TB) *pgembed.Cluster {
	t.Helper()
	c := testenv.Cluster(t)
	pgmqOnce.Do(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, c.ConnString("mq", "postgres"))
		if err != nil {
			t.Fatalf("connect as mq: %v", err)
		}
		defer conn.Close(ctx)
		var have bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgmq')`).Scan(&have); err != nil {
			t.Fatal(err)
		}
		if !have {
			installPgmq(t)
		}
		if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pgmq`); err != nil {
			t.Fatalf("create extension pgmq: %v", err)
		}
	})
	return c
}

// installPgmq copies the repository's extension files into the share
// directory of the Postgres in use.
func installPgmq(t testing.TB) {
	out, err := exec.Command("pg_config", "--sharedir").Output()
	if err != nil {
		t.Fatalf("pg_config --sharedir: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "extension")
	for _, name := range []string{"pgmq.control", "pgmq--1.13.1.sql"} {
		data, err := os.ReadFile(filepath.Join("..", "extension", "pgmq", name))
		if err != nil {
			t.Fatalf("pgmq extension source: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatalf("install pgmq: %v", err)
		}
	}
}

// testEnv is a REST server on a real socket over the shared cluster, on
// mqstack's own backend pools.
type testEnv struct {
	t       testing.TB
	cluster *pgembed.Cluster
	// metrics holds the backend pools' metrics (mqstack_pool_*).
	metrics *prometheus.Registry
	srv     *Server
	ts      *httptest.Server
	token   string // unlimited token for role mq
}

type envOption func(*Options)

func withConfig(f func(*configs.RESTConfig)) envOption {
	return func(o *Options) { f(&o.Config) }
}

func testVerifier(t testing.TB) *auth.Verifier {
	cfg := configs.Default().Auth
	cfg.HMACSecret = configs.Secret(testSecret)
	v, err := auth.NewVerifier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newEnv(t testing.TB, poolSize int, opts ...envOption) *testEnv {
	t.Helper()
	c := cluster(t)
	pool := configs.Default().Pool
	pool.Size = poolSize
	pool.CheckoutTimeout = 10 * time.Second
	pool.MaxShare = 1 // most tests run several calls of one token at once
	reg := prometheus.NewRegistry()
	m := testBackends(t, c, pool, reg)
	o := Options{Config: configs.Default().REST, Verifier: testVerifier(t), ReadyRole: "mq", Logger: zap.NewNop(),
		Pools: BackendPools{Manager: m, Backend: "main", Database: "postgres"}}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Start()
	e := &testEnv{t: t, cluster: c, metrics: reg, srv: srv, ts: ts, token: testenv.Token(t, testSecret, auth.MintOptions{})}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
		m.Close()
	})
	return e
}

// testBackends makes backend pools (backend "main") on cluster c, as
// internal/stack does; reg (nil: none) receives their metrics. The caller
// closes them.
func testBackends(t testing.TB, c *pgembed.Cluster, pool configs.PoolConfig, reg prometheus.Registerer) *backend.Manager {
	t.Helper()
	m, err := backend.NewManager(backend.Options{
		Backends: []configs.BackendConfig{{Name: "main", Host: c.SocketDir(), Port: c.Port(),
			Database: "postgres", SSLMode: "disable"}},
		Pool:       pool,
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// req is one HTTP request of a test.
type req struct {
	method      string // default POST
	path        string // after /pgmq/v1/ unless it starts with "/"
	body        string
	contentType string // "" sends none (Python requests' data=...)
	token       string // "" uses the env's token; "-" sends no Authorization
	header      map[string]string
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (e *testEnv) do(r req) resp {
	e.t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	url := e.ts.URL + "/pgmq/v1/" + r.path
	if strings.HasPrefix(r.path, "/") {
		url = e.ts.URL + r.path
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(method, url, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	switch r.token {
	case "":
		hr.Header.Set("Authorization", "Bearer "+e.token)
	case "-":
	default:
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, body: string(data), header: res.Header}
}

// call posts body as curl does with -H 'Content-Type: application/json'.
func (e *testEnv) call(fn, body string) resp {
	e.t.Helper()
	return e.do(req{path: fn, body: body, contentType: "application/json"})
}

// must posts and checks status and body (a pattern, see bodyPattern).
func (e *testEnv) must(fn, body string, status int, want string) resp {
	e.t.Helper()
	r := e.call(fn, body)
	checkResp(e.t, fn+" "+body, r, status, want)
	return r
}

func checkResp(t testing.TB, what string, r resp, status int, want string) {
	t.Helper()
	if r.status != status || !bodyPattern(want).MatchString(r.body) {
		t.Fatalf("%s:\n got %d %s\nwant %d %s", what, r.status, r.body, status, want)
	}
}

// tsPattern is a timestamptz as Postgres' JSON writes it.
const tsPattern = `"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d(:\d\d)?"`

// bodyPattern makes an exact-match pattern of want, where TS stands for a
// timestamp and ANY for any text.
func bodyPattern(want string) *regexp.Regexp {
	q := regexp.QuoteMeta(want)
	q = strings.ReplaceAll(q, "TS", tsPattern)
	q = strings.ReplaceAll(q, "ANY", `.*`)
	return regexp.MustCompile(`^` + q + `$`)
}

// sql runs statements as the superuser.
func sqlExec(t testing.TB, c *pgembed.Cluster, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.ConnString("mq", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// dropQueues drops the named queues if they exist.
func dropQueues(t testing.TB, c *pgembed.Cluster, names ...string) {
	t.Helper()
	for _, n := range names {
		sqlExec(t, c, `SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = $1`, n)
		// convert_archive_partitioned leaves the old archive and its
		// partman row behind on purpose (pgmq does); a rerun needs them gone.
		old := "a_" + strings.ToLower(n)
		sqlExec(t, c, "DROP TABLE IF EXISTS "+pgx.Identifier{"pgmq", old + "_old"}.Sanitize())
		sqlExec(t, c, `DELETE FROM partman.part_config WHERE parent_table = $1`, "pgmq."+old)
	}
}
