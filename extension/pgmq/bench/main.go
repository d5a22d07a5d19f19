// Command bench measures the throughput of mqstack's pgmq extension:
// send, send_batch(100), read+delete, read+archive, pop and read_grouped
// with 1, 8 and 32 connections and messages of 22 B and 1 KB, and prints a
// table of messages per second.
//
//	go run ./extension/pgmq/bench -dsn 'host=/tmp/sock port=5432 user=postgres dbname=postgres'
//
// The DSN comes from -dsn, else $PGMQ_BENCH_DSN, else $DATABASE_URL, else the
// libpq environment (PGHOST, PGPORT, ...). The role needs to be able to
// create queues (and the extension, when it is missing).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mqstack/extension/pgmq"
)

type op struct {
	name     string
	consumer bool // needs a backlog; runs until the time is up or the queue is empty
	grouped  bool
	// run performs one call on conn and returns how many messages it handled
	// (0 means the queue was empty).
	run func(ctx context.Context, conn *pgxpool.Conn, q, body string, batch []string) (int, error)
}

var ops = []op{
	{name: "send", run: func(ctx context.Context, c *pgxpool.Conn, q, body string, _ []string) (int, error) {
		_, err := c.Exec(ctx, `SELECT pgmq.send($1, $2::jsonb)`, q, body)
		return 1, err
	}},
	{name: "send_batch(100)", run: func(ctx context.Context, c *pgxpool.Conn, q, _ string, batch []string) (int, error) {
		_, err := c.Exec(ctx, `SELECT pgmq.send_batch($1, $2::jsonb[])`, q, batch)
		return len(batch), err
	}},
	{name: "read+delete", consumer: true, run: func(ctx context.Context, c *pgxpool.Conn, q, _ string, _ []string) (int, error) {
		return readThen(ctx, c, q, `SELECT pgmq.delete($1, $2::bigint)`)
	}},
	{name: "read+archive", consumer: true, run: func(ctx context.Context, c *pgxpool.Conn, q, _ string, _ []string) (int, error) {
		return readThen(ctx, c, q, `SELECT pgmq.archive($1, $2::bigint)`)
	}},
	{name: "pop", consumer: true, run: func(ctx context.Context, c *pgxpool.Conn, q, _ string, _ []string) (int, error) {
		var id int64
		err := c.QueryRow(ctx, `SELECT msg_id FROM pgmq.pop($1)`, q).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, nil
		}
		return 1, err
	}},
	{name: "read_grouped(10)+delete", consumer: true, grouped: true, run: func(ctx context.Context, c *pgxpool.Conn, q, _ string, _ []string) (int, error) {
		rows, err := c.Query(ctx, `SELECT msg_id FROM pgmq.read_grouped($1, 30, 10)`, q)
		if err != nil {
			return 0, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) == 0 {
			return 0, err
		}
		_, err = c.Exec(ctx, `SELECT pgmq.delete($1, $2::bigint[])`, q, ids)
		return len(ids), err
	}},
}

func readThen(ctx context.Context, c *pgxpool.Conn, q, finish string) (int, error) {
	var id int64
	err := c.QueryRow(ctx, `SELECT msg_id FROM pgmq.read($1, 30, 1)`, q).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var ok bool
	if err := c.QueryRow(ctx, finish, q, id).Scan(&ok); err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("message %d vanished", id)
	}
	return 1, nil
}

// body returns a JSON object whose text is exactly size bytes.
func body(size int) string {
	const frame = len(`{"p":""}`)
	if size < frame {
		size = frame
	}
	return `{"p":"` + strings.Repeat("x", size-frame) + `"}`
}

type result struct {
	msgs    int64
	elapsed time.Duration
	drained bool
}

func (r result) rate() float64 { return float64(r.msgs) / r.elapsed.Seconds() }

func main() {
	var (
		dsn      = flag.String("dsn", "", "connection string (default: $PGMQ_BENCH_DSN, $DATABASE_URL, libpq environment)")
		install  = flag.String("install", "", "install the extension files into this share directory first (pg_config --sharedir)")
		duration = flag.Duration("duration", 3*time.Second, "time per cell")
		connsArg = flag.String("conns", "1,8,32", "connection counts")
		sizesArg = flag.String("sizes", "22,1024", "message sizes in bytes")
		backlog  = flag.Int("backlog", 10000, "messages queued before each consumer cell")
		groups   = flag.Int("groups", 64, "FIFO groups for read_grouped")
		only     = flag.String("ops", "", "comma-separated operations to run (default: all)")
	)
	flag.Parse()
	if err := run(*dsn, *install, *duration, *connsArg, *sizesArg, *backlog, *groups, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(dsn, install string, duration time.Duration, connsArg, sizesArg string, backlog, groups int, only string) error {
	conns, err := ints(connsArg)
	if err != nil {
		return err
	}
	sizes, err := ints(sizesArg)
	if err != nil {
		return err
	}
	if install != "" {
		installed, err := pgmq.Install(install)
		if err != nil {
			return err
		}
		if !installed {
			fmt.Fprintf(os.Stderr, "bench: %s/extension holds a pgmq that is not mqstack's; benchmarking whatever CREATE EXTENSION finds\n", install)
		}
	}
	if dsn == "" {
		dsn = os.Getenv("PGMQ_BENCH_DSN")
	}
	if dsn == "" {
		dsn = os.Getenv("DATABASE_URL")
	}
	maxConns := 0
	for _, n := range conns {
		maxConns = max(maxConns, n)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(maxConns + 1)
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pgmq`); err != nil {
		return fmt.Errorf("CREATE EXTENSION pgmq: %w", err)
	}
	var version, extVersion string
	if err := pool.QueryRow(ctx, `SELECT current_setting('server_version'), extversion FROM pg_extension WHERE extname = 'pgmq'`).Scan(&version, &extVersion); err != nil {
		return err
	}
	var durability string
	if err := pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit') || ', fsync ' || current_setting('fsync')`).Scan(&durability); err != nil {
		return err
	}
	fmt.Printf("mqstack pgmq %s on PostgreSQL %s (synchronous_commit %s); %v per cell; consumer cells start with %d queued messages\n\n",
		extVersion, version, durability, duration, backlog)

	selected := ops
	if only != "" {
		selected = nil
		for _, o := range ops {
			for _, name := range strings.Split(only, ",") {
				if strings.TrimSpace(name) == o.name {
					selected = append(selected, o)
				}
			}
		}
		if len(selected) == 0 {
			return fmt.Errorf("no operation matches %q", only)
		}
	}

	type row struct {
		name, size string
		cells      []string
	}
	var table []row
	notes := false
	for _, o := range selected {
		for _, size := range sizes {
			r := row{name: o.name, size: sizeName(size)}
			for _, n := range conns {
				fmt.Fprintf(os.Stderr, "bench: %s, %s, %d connections ...\n", o.name, sizeName(size), n)
				res, err := cell(ctx, pool, o, size, n, duration, backlog, groups)
				if err != nil {
					return fmt.Errorf("%s %s %d conns: %w", o.name, sizeName(size), n, err)
				}
				mark := ""
				if res.drained {
					mark = "*"
					notes = true
				}
				r.cells = append(r.cells, fmt.Sprintf("%.0f%s", res.rate(), mark))
			}
			table = append(table, r)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprint(tw, "operation\tsize\t")
	for _, n := range conns {
		if n == 1 {
			fmt.Fprint(tw, "1 conn\t")
		} else {
			fmt.Fprintf(tw, "%d conns\t", n)
		}
	}
	fmt.Fprintln(tw)
	for _, r := range table {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", r.name, r.size, strings.Join(r.cells, "\t"))
	}
	tw.Flush()
	fmt.Println("\nmessages per second; each message sent once, or read and finished once")
	if notes {
		fmt.Println("* the backlog ran out before the time was up: rate over the time it took to drain")
	}
	return nil
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func cell(ctx context.Context, pool *pgxpool.Pool, o op, size, conns int, duration time.Duration, backlog, groups int) (result, error) {
	q := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	if _, err := pool.Exec(ctx, `SELECT pgmq.create($1)`, q); err != nil {
		return result{}, err
	}
	defer pool.Exec(context.Background(), `SELECT pgmq.drop_queue($1)`, q)
	msg := body(size)
	batch := make([]string, 100)
	for i := range batch {
		batch[i] = msg
	}
	if o.consumer {
		// queue the backlog server-side, in chunks of 1000
		for done := 0; done < backlog; done += 1000 {
			n := min(1000, backlog-done)
			if _, err := pool.Exec(ctx, `
				SELECT pgmq.send_batch($1,
				         array_agg($2::jsonb ORDER BY i),
				         CASE WHEN $4::int > 0 THEN array_agg(jsonb_build_object('x-pgmq-group', 'g' || (i % $4::int)) ORDER BY i) END)
				  FROM generate_series($5::int, $5::int + $3::int - 1) i`, q, msg, n, map[bool]int{true: groups, false: 0}[o.grouped], done); err != nil {
				return result{}, err
			}
		}
		if _, err := pool.Exec(ctx, `ANALYZE pgmq.`+pgx.Identifier{"q_" + q}.Sanitize()); err != nil {
			return result{}, err
		}
	}

	var (
		total    atomic.Int64
		emptyAll atomic.Bool
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	emptySQL := `SELECT NOT EXISTS (SELECT 1 FROM pgmq.` + pgx.Identifier{"q_" + q}.Sanitize() + `)`
	deadline := time.Now().Add(duration)
	cctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer cancel()
	start := time.Now()
	var lastDone atomic.Int64 // unix nanos of the last useful call
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pool.Acquire(cctx)
			if err != nil {
				errOnce.Do(func() { firstErr = err })
				return
			}
			defer c.Release()
			for time.Now().Before(deadline) && !emptyAll.Load() {
				n, err := o.run(cctx, c, q, msg, batch)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				if n == 0 {
					// nothing for us: the queue is drained, or (FIFO) every
					// group's head is in flight with another connection
					var empty bool
					if err := c.QueryRow(cctx, emptySQL).Scan(&empty); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					if empty {
						emptyAll.Store(true)
					} else {
						time.Sleep(time.Millisecond)
					}
					continue
				}
				total.Add(int64(n))
				lastDone.Store(time.Now().UnixNano())
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	elapsed := time.Since(start)
	drained := emptyAll.Load()
	if drained && lastDone.Load() > 0 {
		elapsed = time.Unix(0, lastDone.Load()).Sub(start)
	}
	return result{msgs: total.Load(), elapsed: elapsed, drained: drained}, nil
}
