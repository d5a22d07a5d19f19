package pgmq_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mqstack/extension/pgmq"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var install struct {
	once sync.Once
	bins pgembed.Binaries
	err  error
}

// cluster returns the package's shared cluster with our extension files
// installed into the server's share directory.
func cluster(t testing.TB) (*pgembed.Cluster, pgembed.Binaries) {
	t.Helper()
	c := testenv.Cluster(t)
	install.once.Do(func() {
		install.bins, install.err = pgembed.FindBinaries("")
		if install.err != nil {
			return
		}
		share, err := install.bins.ShareDir()
		if err != nil {
			install.err = err
			return
		}
		installed, err := pgmq.Install(share)
		if err != nil {
			install.err = err
			return
		}
		if !installed {
			install.err = fmt.Errorf("%s/extension holds a pgmq that is not mqstack's; these tests need ours", share)
		}
	})
	if install.err != nil {
		t.Fatalf("installing the pgmq extension files: %v", install.err)
	}
	return c, install.bins
}

var dbSeq atomic.Int64

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// newDB creates a fresh database (from template0) with the pgmq extension
// and returns its name; it is dropped when the test ends.
func newDB(t testing.TB, c *pgembed.Cluster) string {
	t.Helper()
	name := newDBEmpty(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.ConnString(pgembed.Superuser, name))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION pgmq"); err != nil {
		t.Fatalf("CREATE EXTENSION pgmq: %v", err)
	}
	return name
}

// newDBEmpty creates a fresh, empty database (from template0); it is dropped
// when the test ends.
func newDBEmpty(t testing.TB, c *pgembed.Cluster) string {
	t.Helper()
	name := fmt.Sprintf("pgmq_go_%s_%d", nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), dbSeq.Add(1))
	if len(name) > 60 {
		name = fmt.Sprintf("pgmq_go_%d_%d", os.Getpid(), dbSeq.Add(1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, c.ConnString(pgembed.Superuser, "postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, c.ConnString(pgembed.Superuser, "postgres"))
		if err != nil {
			t.Errorf("cleanup connect: %v", err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

func newPool(t testing.TB, c *pgembed.Cluster, db string, size int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(c.ConnString(pgembed.Superuser, db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = size
	cfg.MinConns = size
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func connect(t testing.TB, c *pgembed.Cluster, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.ConnString(pgembed.Superuser, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
