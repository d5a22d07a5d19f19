package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// scalingWorkload names the scaling rows: 64 clients sending while 0,
// 1,000 and -idle authenticated clients sit connected to the same proxy.
const (
	scalingWorkload = "send 1KB, 64 active + idle"
	scalingActive   = 64
	scalingCells    = 3
)

// scaling measures what idle clients cost active ones. It runs once, after
// the rounds (10,000 logins per target and idle count are too slow to
// repeat), with scalingCells back-to-back cells per row.
func (b *bench) scaling(ctx context.Context) error {
	rows := []sqlRow{
		{"pgbouncer", "unnamed", pgx.QueryExecModeExec},
		{"mqstack", "unnamed", pgx.QueryExecModeExec},
		{"mqstack", "prepared", pgx.QueryExecModeCacheStatement},
	}
	if b.env.base != nil {
		rows = append(rows, sqlRow{"baseline", "unnamed", pgx.QueryExecModeExec})
	}
	for _, idle := range []int{0, min(1000, b.o.idleConns), b.o.idleConns} {
		if idle == 1000 && b.o.idleConns == 1000 {
			continue
		}
		for _, r := range rows {
			if err := b.scalingRow(ctx, r, idle); err != nil {
				return err
			}
		}
		fmt.Printf("scaling: %d idle done\n", idle)
	}
	return nil
}

func (b *bench) scalingRow(ctx context.Context, r sqlRow, idle int) error {
	k := key{scalingWorkload, idle, r.target, r.label}
	conns, _, err := openIdle(ctx, b.env.dsn(r.target), idle)
	defer closeAll(ctx, conns)
	if err != nil {
		return b.measure(ctx, k, func() (sample, error) { return sample{}, err })
	}
	for range scalingCells {
		err := b.measure(ctx, k, func() (sample, error) {
			return b.runSQL(ctx, r.target, r.mode, scalingActive, opSend)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// openIdle logs n clients in to dsn and leaves them idle. It returns the
// connections opened even when some logins failed.
func openIdle(ctx context.Context, dsn string, n int) ([]*pgconn.PgConn, time.Duration, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, 0, err
	}
	return openEach(ctx, n, func(int) (*pgconn.PgConn, error) { return pgconn.ConnectConfig(ctx, cfg) })
}

// openEach opens n connections with open, 32 at a time. It returns those
// opened even when some failed, and how long it took when none did.
func openEach(ctx context.Context, n int, open func(i int) (*pgconn.PgConn, error)) ([]*pgconn.PgConn, time.Duration, error) {
	conns := make([]*pgconn.PgConn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	failed := 0
	next := make(chan int)
	t0 := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := open(i)
				mu.Lock()
				if err != nil {
					failed++
					firstErr = cmp.Or(firstErr, err)
				}
				conns[i] = c
				mu.Unlock()
			}
		}()
	}
	for i := range conns {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return conns, 0, fmt.Errorf("%d of %d logins failed: %w", failed, n, firstErr)
	}
	return conns, time.Since(t0), nil
}

func closeAll(ctx context.Context, conns []*pgconn.PgConn) {
	for _, c := range conns {
		if c != nil {
			c.Close(ctx)
		}
	}
}

// printScaling says, per proxy row, how much of its ops/s with no idle
// client it keeps with the most idle clients.
func (r *results) printScaling(w io.Writer) {
	most := 0
	for _, k := range r.order {
		if k.workload == scalingWorkload {
			most = max(most, k.clients)
		}
	}
	if most == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, k := range r.order {
		if k.workload != scalingWorkload || k.clients != 0 {
			continue
		}
		zero, ok0 := r.median(k)
		full, ok1 := r.median(key{scalingWorkload, most, k.target, k.mode})
		if !ok0 || !ok1 || zero.ops == 0 {
			continue
		}
		fmt.Fprintf(w, "scaling: %-9s %-8s with %d idle clients keeps %5.1f%% of its ops/s (CPU per op %.1f -> %.1f us)\n",
			k.target, k.mode, most, 100*full.ops/zero.ops, zero.cpuUs, full.cpuUs)
	}
}
