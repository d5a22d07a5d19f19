package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"mqstack/configs"
)

func TestSimpleAndExtended(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t)
	ctx := ctxT(t, 20*time.Second)
	var n int
	if err := c.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("extended: %v %d", err, n)
	}
	var user string
	if err := c.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != "mq" {
		t.Fatalf("current_user: %v %q", err, user)
	}
	rr := c.PgConn().Exec(ctx, "SELECT 1; SELECT 2, 3; CREATE TEMP TABLE IF NOT EXISTS x_simple (i int) ON COMMIT DROP")
	res, err := rr.ReadAll()
	if err != nil || len(res) != 3 || string(res[1].Rows[0][1]) != "3" {
		t.Fatalf("multi-statement simple query: %v %+v", err, res)
	}
	for _, p := range []string{"server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone",
		"integer_datetimes", "standard_conforming_strings", "IntervalStyle", "is_superuser", "session_authorization", "application_name"} {
		if _, ok := c.PgConn().ParameterStatus(p), true; !ok || (p != "application_name" && c.PgConn().ParameterStatus(p) == "") {
			t.Errorf("ParameterStatus %s missing", p)
		}
	}
	if c.PgConn().ParameterStatus("is_superuser") != "off" || c.PgConn().ParameterStatus("session_authorization") != "mq" {
		t.Errorf("is_superuser/session_authorization: %q %q", c.PgConn().ParameterStatus("is_superuser"), c.PgConn().ParameterStatus("session_authorization"))
	}
}

// All five pgx query exec modes, with more clients than backend connections
// so that statements prepared on one backend are used on others.
func TestPgxExecModesAcrossBackends(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 2 })
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	ctx := ctxT(t, 60*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, mode := range modes {
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg, err := pgx.ParseConfig(h.connString())
				if err != nil {
					errs <- err
					return
				}
				cfg.DefaultQueryExecMode = mode
				c, err := pgx.ConnectConfig(ctx, cfg)
				if err != nil {
					errs <- fmt.Errorf("%v: connect: %w", mode, err)
					return
				}
				defer c.Close(ctx)
				pids := map[uint32]bool{}
				for j := range 40 {
					var got int
					var s string
					var pid uint32
					if err := c.QueryRow(ctx, "SELECT $1::int * 2, $2::text, pg_backend_pid()", j, "x").Scan(&got, &s, &pid); err != nil {
						errs <- fmt.Errorf("%v client %d iter %d: %w", mode, i, j, err)
						return
					}
					if got != j*2 || s != "x" {
						errs <- fmt.Errorf("%v: wrong result %d %q", mode, got, s)
						return
					}
					pids[pid] = true
					if _, err := c.Exec(ctx, "SELECT $1::text", "y"); err != nil {
						errs <- fmt.Errorf("%v exec: %w", mode, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPgxBatchAndTransactions(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 2 })
	ctx := ctxT(t, 30*time.Second)
	c := h.connect(t)
	h.testSchema(t)
	if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS mq_test.batch_t (id int primary key, v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "TRUNCATE mq_test.batch_t"); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	for i := range 50 {
		b.Queue("INSERT INTO mq_test.batch_t VALUES ($1, $2)", i, fmt.Sprint("v", i))
	}
	b.Queue("SELECT count(*) FROM mq_test.batch_t")
	br := c.SendBatch(ctx, b)
	for range 50 {
		if _, err := br.Exec(); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := br.QueryRow().Scan(&n); err != nil || n != 50 {
		t.Fatalf("count %d %v", n, err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	// A transaction keeps one backend: the pid does not change inside it.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var p1, p2 int
	tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p1)
	other := h.connect(t)
	other.Exec(ctx, "SELECT 1")
	tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p2)
	if p1 != p2 || p1 == 0 {
		t.Fatalf("backend changed inside a transaction: %d %d", p1, p2)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO mq_test.batch_t VALUES (1000, 'tx')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// An error inside an extended cycle, then the session goes on.
	_, err = c.Exec(ctx, "INSERT INTO mq_test.batch_t VALUES ($1, 'dup')", 1)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		t.Fatalf("want unique violation passed through, got %v", err)
	}
	if err := c.QueryRow(ctx, "SELECT count(*) FROM mq_test.batch_t").Scan(&n); err != nil || n != 50 {
		t.Fatalf("after error: %d %v", n, err)
	}
}

// pgxpool with health checks through the proxy.
func TestPgxPool(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 3 })
	ctx := ctxT(t, 30*time.Second)
	cfg, err := pgxpool.ParseConfig(h.connString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 10
	cfg.HealthCheckPeriod = 100 * time.Millisecond
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				var n int
				if err := pool.QueryRow(ctx, "SELECT $1::int", i*100+j).Scan(&n); err != nil || n != i*100+j {
					t.Errorf("pool query: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := pool.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// 64 clients on a pool of 4.
func TestManyClientsSmallPool(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) {
		p.Size = 4
		p.CheckoutTimeout = 30 * time.Second
	})
	ctx := ctxT(t, 60*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, h.connString())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			for j := range 10 {
				var n int
				if err := c.QueryRow(ctx, "SELECT $1::int + $2::int", i, j).Scan(&n); err != nil || n != i+j {
					errs <- fmt.Errorf("client %d: %v (%d)", i, err, n)
					return
				}
			}
			tx, err := c.Begin(ctx)
			if err != nil {
				errs <- err
				return
			}
			tx.Exec(ctx, "SELECT pg_sleep(0.001)")
			if err := tx.Commit(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var backends int
	d := h.direct(t)
	d.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'mq'").Scan(&backends)
	if backends > 4 {
		t.Errorf("%d backend connections for a pool of 4", backends)
	}
}

func backendPID(t testing.TB, ctx context.Context, c *pgx.Conn) int {
	t.Helper()
	var pid int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}
