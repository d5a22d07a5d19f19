package clients

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"mqstack/configs"
	"mqstack/internal/stack"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var testSecret = []byte("clients-test-secret-0123456789abcdef")

// startStack runs proxy, REST and metrics in front of the shared cluster,
// with a pool of two backends so that clients share them.
func startStack(t *testing.T, tweak func(*configs.Config)) *stack.Stack {
	t.Helper()
	c := testenv.Cluster(t)
	cfg := testenv.FrontEndConfig(t.TempDir(), testSecret)
	if tweak != nil {
		tweak(&cfg)
	}
	v, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.Start(stack.Options{
		Config:      v,
		Backends:    []configs.BackendConfig{c.Backend()},
		Auth:        cfg.Auth,
		DevTLSDir:   cfg.DataDir,
		DefaultRole: "mq",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Shutdown(10 * time.Second) })
	return st
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
