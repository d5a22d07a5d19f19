// Package testenv is the test harness: it starts throwaway Postgres clusters
// in temporary directories (small memory sizing), shares one per test
// package, and cleans them up. When Postgres binaries are missing the tests
// fail loudly; they never skip.
//
// Use it from a package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
//
// and call testenv.Cluster(t) in tests.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"mqstack/configs"
	"mqstack/extension/pgmq"
	"mqstack/internal/pgembed"
)

// TestMemory is the memory test clusters are sized for.
const TestMemory = 256 * configs.MiB

var shared struct {
	once    sync.Once
	cluster *pgembed.Cluster
	dir     string
	err     error
}

// Run runs the package's tests and stops the shared cluster afterwards.
func Run(m *testing.M) int {
	code := m.Run()
	if shared.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		shared.cluster.Stop(ctx)
		cancel()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}

// Cluster returns the package's shared cluster, starting it on first use.
// It fails the test (never skips) when Postgres cannot be started.
func Cluster(t testing.TB) *pgembed.Cluster {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = TempDir()
		if shared.err == nil {
			shared.cluster, shared.err = Start(shared.dir, Options{})
		}
	})
	if shared.err != nil {
		t.Fatalf("testenv: cannot start the shared Postgres cluster: %v", shared.err)
	}
	return shared.cluster
}

// Options adjust a test cluster.
type Options struct {
	// Port is a loopback TCP port; 0 means Unix socket only.
	Port int
	// Settings are extra postgresql.conf settings.
	Settings map[string]string
}

// NewCluster starts a private cluster for tests that stop, kill or restart
// Postgres; it is stopped and removed when the test ends.
func NewCluster(t testing.TB, opts Options) *pgembed.Cluster {
	t.Helper()
	dir, err := TempDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c, err := Start(dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("testenv: cannot start Postgres: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c.Stop(ctx)
		os.RemoveAll(dir)
	})
	return c
}

// TempDir makes a temporary directory the postgres OS user can enter.
func TempDir() (string, error) {
	dir, err := os.MkdirTemp("", "mqstack-test-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// Start brings up a small tuned cluster in dir (which must exist).
func Start(dir string, opts Options) (*pgembed.Cluster, error) {
	bins, err := pgembed.FindBinaries("")
	if err != nil {
		return nil, fmt.Errorf("%w (tests need PostgreSQL; run `make deps`)", err)
	}
	if err := installExtension(bins); err != nil {
		return nil, err
	}
	settings, err := configs.Tune(configs.TuneInput{Memory: TestMemory, CPUs: 1})
	if err != nil {
		return nil, err
	}
	for k, v := range opts.Settings {
		settings = append(settings, configs.Setting{Name: k, Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return pgembed.Up(ctx, pgembed.Options{
		Binaries:     bins,
		DataDir:      dir,
		Port:         opts.Port,
		Database:     "postgres",
		DefaultRole:  "mq",
		Settings:     settings,
		StartTimeout: time.Minute,
		InitDBNoSync: true,
	})
}

var installOnce struct {
	sync.Once
	err error
}

// installExtension installs our pgmq extension files once per test binary,
// so the bootstrap creates pgmq in every test cluster.
func installExtension(bins pgembed.Binaries) error {
	installOnce.Do(func() {
		share, err := bins.ShareDir()
		if err != nil {
			installOnce.err = err
			return
		}
		installed, err := pgmq.Install(share)
		if err != nil {
			installOnce.err = fmt.Errorf("installing the pgmq extension files (tests run as root or with a writable %s/extension): %w", share, err)
			return
		}
		if !installed {
			installOnce.err = fmt.Errorf("%s/extension holds a pgmq that is not mqstack's; the tests need ours", share)
		}
	})
	return installOnce.err
}

// FrontEndConfig is the configuration tests start a stack with: every
// listener on a free loopback port, a pool of two backends (so clients share
// them), and secret as the token key. A token may hold the whole pool
// (pool.max_share 1): most tests run several clients of one token; the
// tests of the fair share set it themselves.
func FrontEndConfig(dataDir string, secret []byte) configs.Config {
	cfg := configs.Default()
	cfg.DataDir = dataDir
	cfg.Proxy.Listen = "127.0.0.1:0"
	cfg.REST.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.Pool.Size = 2
	cfg.Pool.MaxShare = 1
	cfg.Auth.HMACSecret = configs.Secret(secret)
	return cfg
}
