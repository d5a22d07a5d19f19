package proxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/backend"
	"mqstack/internal/notify"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// harness is a proxy in front of a test cluster.
type harness struct {
	t        testing.TB
	cluster  *pgembed.Cluster
	srv      *Server
	backends *backend.Manager
	addr     string
	reg      *prometheus.Registry
	serveErr chan error
}

func newHarness(t testing.TB, tweak func(p *configs.ProxyConfig, pool *configs.PoolConfig)) *harness {
	return newHarnessOn(t, testenv.Cluster(t), tweak)
}

func newHarnessOn(t testing.TB, cl *pgembed.Cluster, tweak func(p *configs.ProxyConfig, pool *configs.PoolConfig)) *harness {
	return newHarnessAuth(t, cl, tweak, nil)
}

// newHarnessAuth is newHarnessOn with the token verifier's configuration
// adjusted by tweakAuth (e.g. auth.leeway 0 for tests of expiry).
func newHarnessAuth(t testing.TB, cl *pgembed.Cluster, tweak func(p *configs.ProxyConfig, pool *configs.PoolConfig), tweakAuth func(*configs.AuthConfig)) *harness {
	t.Helper()
	def := configs.Default()
	pcfg, poolCfg := def.Proxy, def.Pool
	pcfg.Listen = "127.0.0.1:0"
	poolCfg.Size = 4
	if tweak != nil {
		tweak(&pcfg, &poolCfg)
	}
	log := zap.NewNop()
	if os.Getenv("MQSTACK_TEST_LOG") != "" {
		log = zaptest.NewLogger(t)
	}
	reg := prometheus.NewRegistry()
	bm, err := backend.NewManager(backend.Options{
		Backends: []configs.BackendConfig{{Name: "main", Host: cl.SocketDir(), Port: cl.Port(),
			Database: "postgres", SSLMode: "disable"}},
		Pool:            poolCfg,
		MaxMessageBytes: int(pcfg.MaxMessageBytes),
		Log:             log,
		Registerer:      reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	acfg := def.Auth
	acfg.HMACSecret = configs.Secret(testSecret)
	if tweakAuth != nil {
		tweakAuth(&acfg)
	}
	v, err := auth.NewVerifier(acfg, log)
	if err != nil {
		t.Fatal(err)
	}
	hub := notify.New(notify.Options{Log: log, Registerer: reg, ConnString: func(k notify.Key) (string, string, error) {
		return bm.ConnString(backend.Key{Backend: k.Backend, Database: k.Database, Role: "mq"})
	}})
	srv, err := New(Options{Proxy: pcfg, Backends: bm, Verifier: v, Log: log, Registerer: reg, TLS: testTLS(t),
		Recorder: newTestRecorder(reg), Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pcfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cluster: cl, srv: srv, backends: bm, addr: ln.Addr().String(), reg: reg, serveErr: make(chan error, 1)}
	go func() { h.serveErr <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hub.Close()
		bm.Close()
	})
	return h
}

func (h *harness) port() string {
	_, p, _ := net.SplitHostPort(h.addr)
	return p
}

// connString is a libpq string for the proxy as role mq with a fresh token.
func (h *harness) connString(extra ...string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%s user=mq dbname=postgres sslmode=disable password=%s %s",
		h.port(), testenv.Token(h.t, testSecret, auth.MintOptions{}), strings.Join(extra, " "))
}

func (h *harness) connect(t testing.TB, extra ...string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, h.connString(extra...))
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// direct connects to the cluster itself (superuser, Unix socket).
func (h *harness) direct(t testing.TB) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), h.cluster.ConnString(pgembed.Superuser, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testSchema makes schema mq_test, owned by role mq, for test tables.
func (h *harness) testSchema(t testing.TB) {
	t.Helper()
	if _, err := h.direct(t).Exec(context.Background(), "CREATE SCHEMA IF NOT EXISTS mq_test AUTHORIZATION mq"); err != nil {
		t.Fatal(err)
	}
}

// counterValue reads one labelled counter from the harness registry.
func counterValue(t testing.TB, h *harness, name, label, value string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
