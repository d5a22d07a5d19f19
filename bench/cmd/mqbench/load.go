package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

func numCPU() int { return runtime.NumCPU() }

// Queues the workloads use.
const (
	qSend     = "bench_send"
	qReadDel  = "bench_readdel"
	qBatch    = "bench_batch"
	qRestSend = "bench_rest_send"
	qRestRD   = "bench_rest_readdel"
)

var (
	// payload1K is a 1 KB jsonb message (the send and read+delete shape).
	payload1K = `{"id":"` + strings.Repeat("x", 1024-10) + `"}`
	// batch100 are 100 messages of 22 bytes (Tembo's published shape).
	batch100 = func() []string {
		out := make([]string, 100)
		for i := range out {
			out[i] = fmt.Sprintf(`{"k":"%014d"}`, i)
		}
		return out
	}()
)

// sample is one cell's measurement.
type sample struct {
	ops      float64 // operations per second
	count    int64   // operations completed
	cpuUs    float64 // the proxy's CPU per operation, µs (0: not measured)
	p50, p99 time.Duration
	errors   int64
	failed   string // why the cell could not run ("" when it ran)
}

// opFunc is one operation of a workload on one client connection.
type opFunc func(ctx context.Context, c *pgx.Conn, mode pgx.QueryExecMode) error

func opSend(ctx context.Context, c *pgx.Conn, mode pgx.QueryExecMode) error {
	var id int64
	return c.QueryRow(ctx, "SELECT pgmq.send($1, $2::jsonb)", mode, qSend, payload1K).Scan(&id)
}

var errEmpty = errors.New("queue empty")

func opReadDelete(ctx context.Context, c *pgx.Conn, mode pgx.QueryExecMode) error {
	var id int64
	if err := c.QueryRow(ctx, "SELECT msg_id FROM pgmq.read($1, 30, 1)", mode, qReadDel).Scan(&id); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return errEmpty
		}
		return err
	}
	var ok bool
	return c.QueryRow(ctx, "SELECT pgmq.delete($1, $2::bigint)", mode, qReadDel, id).Scan(&ok)
}

func opBatch(ctx context.Context, c *pgx.Conn, mode pgx.QueryExecMode) error {
	rows, err := c.Query(ctx, "SELECT pgmq.send_batch($1, $2::jsonb[])", mode, qBatch, batch100)
	if err != nil {
		return err
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = c.Query(ctx, "SELECT msg_id FROM pgmq.read($1, 30, 100)", mode, qBatch)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	rows, err = c.Query(ctx, "SELECT pgmq.delete($1, $2::bigint[])", mode, qBatch, ids)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// loop runs n workers calling op until the cell's time is up and returns
// throughput and latency percentiles. prepare runs before the clock starts.
func loop(ctx context.Context, n int, d time.Duration, op func(ctx context.Context, w int) error) sample {
	lat := make([][]time.Duration, n)
	var errs atomic.Int64
	var started, wg sync.WaitGroup
	startCh := make(chan struct{})
	var stopAt atomic.Int64
	started.Add(n)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 4096)
			started.Done()
			<-startCh
			for {
				t0 := time.Now()
				if t0.UnixNano() >= stopAt.Load() || ctx.Err() != nil {
					break
				}
				err := op(ctx, w)
				if err != nil {
					errs.Add(1)
					if errs.Load() < 5 && !errors.Is(err, errEmpty) {
						fmt.Printf("  error: %v\n", err)
					}
					continue
				}
				l = append(l, time.Since(t0))
			}
			lat[w] = l
		}()
	}
	started.Wait()
	t0 := time.Now()
	stopAt.Store(t0.Add(d).UnixNano())
	close(startCh)
	wg.Wait()
	el := time.Since(t0)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return summarize(all, el, errs.Load())
}

func summarize(all []time.Duration, el time.Duration, errs int64) sample {
	s := sample{errors: errs}
	if len(all) == 0 {
		return s
	}
	slices.Sort(all)
	s.count = int64(len(all))
	s.ops = float64(len(all)) / el.Seconds()
	s.p50 = all[len(all)/2]
	s.p99 = all[min(len(all)-1, len(all)*99/100)]
	return s
}

// pools keeps one pgx pool per target so client connections outlive a
// cell (each cell checks out its clients before the clock starts).
type pools struct {
	mu sync.Mutex
	m  map[string]*pgxpool.Pool
}

func (p *pools) get(ctx context.Context, e *env, target string, maxConns int) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*pgxpool.Pool{}
	}
	if pl := p.m[target]; pl != nil {
		return pl, nil
	}
	cfg, err := pgxpool.ParseConfig(e.dsn(target))
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(maxConns)
	cfg.MaxConnIdleTime = time.Hour
	cfg.MaxConnLifetime = 24 * time.Hour
	cfg.HealthCheckPeriod = time.Hour
	pl, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p.m[target] = pl
	return pl, nil
}

func (p *pools) close() {
	for _, pl := range p.m {
		pl.Close()
	}
}

// runSQL measures op with n clients of target in mode.
func (b *bench) runSQL(ctx context.Context, target string, mode pgx.QueryExecMode, n int, op opFunc) (sample, error) {
	pl, err := b.pools.get(ctx, b.env, target, b.maxClients())
	if err != nil {
		return sample{}, err
	}
	conns := make([]*pgxpool.Conn, n)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pl.Acquire(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s: connect: %w", target, err)
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Release()
			}
		}
	}()
	if firstErr != nil {
		return sample{}, firstErr
	}
	cpu := startCPU(b.env.pid(target))
	s := loop(ctx, n, b.o.cell, func(ctx context.Context, w int) error {
		return op(ctx, conns[w].Conn(), mode)
	})
	return cpu.measured(s), nil
}

// runStorm measures connect, authenticate, SELECT 1, disconnect.
func (b *bench) runStorm(ctx context.Context, target string, n int) (sample, error) {
	cfg, err := pgconn.ParseConfig(b.env.dsn(target))
	if err != nil {
		return sample{}, err
	}
	cpu := startCPU(b.env.pid(target))
	s := loop(ctx, n, b.o.cell, func(ctx context.Context, w int) error {
		c, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		_, err = c.Exec(ctx, "SELECT 1").ReadAll()
		c.Close(ctx)
		return err
	})
	return cpu.measured(s), nil
}

// topUp makes queue hold at least want messages of payload (through a
// direct connection, outside the measurement).
func (b *bench) topUp(ctx context.Context, queue string, want int64) error {
	pl, err := b.pools.get(ctx, b.env, "direct", b.maxClients())
	if err != nil {
		return err
	}
	var have int64
	if err := pl.QueryRow(ctx, "SELECT queue_length FROM pgmq.metrics($1)", queue).Scan(&have); err != nil {
		return err
	}
	msgs := make([]string, 500)
	for i := range msgs {
		msgs[i] = payload1K
	}
	for ; have < want; have += int64(len(msgs)) {
		if _, err := pl.Exec(ctx, "SELECT pgmq.send_batch($1, $2::jsonb[])", queue, msgs); err != nil {
			return err
		}
	}
	return nil
}
