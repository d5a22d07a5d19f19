package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type bench struct {
	o     options
	env   *env
	res   *results
	pools pools
}

func (b *bench) maxClients() int {
	n := 0
	for _, c := range b.o.clients {
		n = max(n, c)
	}
	return n
}

// sqlRow is one (target, mode) a SQL workload runs against.
type sqlRow struct {
	target, label string
	mode          pgx.QueryExecMode
}

// The rows of each SQL workload. PgBouncer 1.18 cannot keep named prepared
// statements in transaction mode, so its rows use the unnamed statement.
func (b *bench) sqlRows() []sqlRow {
	rows := []sqlRow{
		{"direct", "prepared", pgx.QueryExecModeCacheStatement},
		{"direct", "unnamed", pgx.QueryExecModeExec},
		{"pgbouncer", "unnamed", pgx.QueryExecModeExec},
		{"mqstack", "unnamed", pgx.QueryExecModeExec},
		{"mqstack", "prepared", pgx.QueryExecModeCacheStatement},
	}
	if b.env.base != nil {
		rows = append(rows, sqlRow{"baseline", "unnamed", pgx.QueryExecModeExec},
			sqlRow{"baseline", "prepared", pgx.QueryExecModeCacheStatement})
	}
	return rows
}

type modeRow struct{ target, mode string }

func (b *bench) pgbenchRows() []modeRow {
	rows := []modeRow{{"direct", "simple"}, {"direct", "prepared"}, {"pgbouncer", "simple"}, {"mqstack", "simple"}, {"mqstack", "prepared"}}
	if b.env.base != nil {
		rows = append(rows, modeRow{"baseline", "simple"}, modeRow{"baseline", "prepared"})
	}
	return rows
}

func (b *bench) stormRows() []modeRow {
	rows := []modeRow{{"direct", "scram"}, {"pgbouncer", "md5"}, {"mqstack", "jwt"}}
	if b.env.base != nil {
		rows = append(rows, modeRow{"baseline", "jwt"})
	}
	return rows
}

func (b *bench) setup(ctx context.Context) error {
	pl, err := b.pools.get(ctx, b.env, "direct", b.maxClients())
	if err != nil {
		return err
	}
	for _, q := range []string{qSend, qReadDel, qBatch, qRestSend, qRestRD} {
		if _, err := pl.Exec(ctx, "SELECT pgmq.create($1)", q); err != nil {
			return fmt.Errorf("create queue %s: %w", q, err)
		}
	}
	if b.o.want("pgbench") {
		cmd := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", "10", "-h", "127.0.0.1", "-p", strconv.Itoa(b.env.pgPort), "-U", "mq", "postgres")
		cmd.Env = append(os.Environ(), "PGPASSWORD="+benchPassword, "PGSSLMODE=disable")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pgbench -i: %v: %s", err, out)
		}
	}
	// Warm every target's pool and caches before the first measured round.
	for _, r := range b.sqlRows() {
		if _, err := b.runSQLShort(ctx, r, min(64, b.maxClients()), opSend); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) runSQLShort(ctx context.Context, r sqlRow, n int, op opFunc) (sample, error) {
	saved := b.o.cell
	b.o.cell = 300 * time.Millisecond
	defer func() { b.o.cell = saved }()
	return b.runSQL(ctx, r.target, r.mode, n, op)
}

// measure runs one cell and records it under k. A cell that fails is
// recorded as failed (its row says so) and the run goes on; only a
// cancelled run stops.
func (b *bench) measure(ctx context.Context, k key, run func() (sample, error)) error {
	s, err := run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		fmt.Printf("  %s, %d clients, %s %s: failed: %v\n", k.workload, k.clients, k.target, k.mode, err)
		s = sample{failed: err.Error()}
	}
	b.res.add(k, s)
	return nil
}

func (b *bench) runAll(ctx context.Context) error {
	defer b.pools.close()
	if b.o.want("memory") && b.o.idleConns > 0 {
		// First, on a fresh process: RSS freed by earlier workloads would
		// otherwise be reused by the idle connections and hide their cost.
		if err := b.memory(ctx); err != nil {
			return err
		}
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	for round := 1; round <= b.o.rounds; round++ {
		t0 := time.Now()
		if err := b.round(ctx); err != nil {
			return err
		}
		fmt.Printf("round %d/%d done in %s\n", round, b.o.rounds, time.Since(t0).Round(time.Second))
	}
	if b.o.want("scaling") && b.o.idleConns > 0 {
		return b.scaling(ctx)
	}
	return nil
}

// round runs every cell once.
func (b *bench) round(ctx context.Context) error {
	pl, err := b.pools.get(ctx, b.env, "direct", b.maxClients())
	if err != nil {
		return err
	}
	for _, q := range []string{qSend, qBatch, qRestSend} {
		if _, err := pl.Exec(ctx, "SELECT pgmq.purge_queue($1)", q); err != nil {
			return err
		}
	}
	for _, step := range []func(context.Context) error{b.sqlCells, b.pgbenchCells, b.stormCells, b.restCells, b.notifyCells} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) sqlCells(ctx context.Context) error {
	workloads := []struct {
		name, flag string
		op         opFunc
	}{
		{"send 1KB", "send", opSend},
		{"read+delete", "readdel", opReadDelete},
		{"batch 100x22B", "batch", opBatch},
	}
	for _, w := range workloads {
		if !b.o.want(w.flag) {
			continue
		}
		for _, n := range b.o.clients {
			for _, r := range b.sqlRows() {
				if w.flag == "readdel" {
					if err := b.topUp(ctx, qReadDel, 40000); err != nil {
						return err
					}
				}
				err := b.measure(ctx, key{w.name, n, r.target, r.label}, func() (sample, error) {
					return b.runSQL(ctx, r.target, r.mode, n, w.op)
				})
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (b *bench) pgbenchCells(ctx context.Context) error {
	if !b.o.want("pgbench") {
		return nil
	}
	for _, n := range b.o.clients {
		for _, r := range b.pgbenchRows() {
			err := b.measure(ctx, key{"pgbench -S", n, r.target, r.mode}, func() (sample, error) {
				return b.pgbench(ctx, r.target, r.mode, n)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *bench) stormCells(ctx context.Context) error {
	if !b.o.want("storm") {
		return nil
	}
	for _, n := range b.o.clients {
		if n > 64 {
			continue // 256 concurrent logins measure fork(), not the proxy
		}
		for _, r := range b.stormRows() {
			err := b.measure(ctx, key{"connect+auth+query", n, r.target, r.mode}, func() (sample, error) {
				return b.runStorm(ctx, r.target, n)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *bench) restCells(ctx context.Context) error {
	if !b.o.want("rest") {
		return nil
	}
	for _, n := range b.o.clients {
		if n > 64 {
			continue
		}
		err := b.measure(ctx, key{"send 1KB", n, "rest", "http"}, func() (sample, error) { return b.rest(ctx, "send", n) })
		if err != nil {
			return err
		}
		if err := b.topUp(ctx, qRestRD, 40000); err != nil {
			return err
		}
		err = b.measure(ctx, key{"read+delete", n, "rest", "http"}, func() (sample, error) { return b.rest(ctx, "read+delete", n) })
		if err != nil {
			return err
		}
	}
	return nil
}

var (
	tpsRe = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	txRe  = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// pgbenchPerClient is how many transactions each pgbench client runs so
// that a cell lasts about -cell: pgbench's -T clock would start before its
// clients have logged in (256 scram logins take seconds here, which once
// left no time for a single transaction), so cells run a count instead,
// sized from the rate the same row reached last time.
func (b *bench) pgbenchPerClient(k key) int {
	rate := 15000.0
	if s, ok := b.res.median(k); ok && s.ops > 0 {
		rate = s.ops
	}
	return max(20, int(rate*b.o.cell.Seconds())/k.clients)
}

// pgbench runs `pgbench -S` against target and reads tps and, from a
// sampled transaction log, latency percentiles. The proxy's CPU per
// transaction includes the logins of its clients.
func (b *bench) pgbench(ctx context.Context, target, mode string, n int) (sample, error) {
	logDir, err := os.MkdirTemp(b.env.dir, "pgbench-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(logDir)
	perClient := b.pgbenchPerClient(key{"pgbench -S", n, target, mode})
	args := []string{"-S", "-n", "-t", strconv.Itoa(perClient), "-c", strconv.Itoa(n), "-j", "2", "-M", mode,
		"-l", "--sampling-rate", "0.05", "--log-prefix", filepath.Join(logDir, "log"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(b.env.port(target)), "-U", "mq", "postgres"}
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+b.env.password(target), "PGSSLMODE=disable")
	cpu := startCPU(b.env.pid(target))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("pgbench against %s: %v: %s", target, err, lastLines(out, 3))
	}
	m := tpsRe.FindSubmatch(out)
	tx := txRe.FindSubmatch(out)
	if m == nil || tx == nil {
		return sample{}, fmt.Errorf("pgbench against %s: no tps in output: %s", target, lastLines(out, 3))
	}
	var s sample
	s.ops, _ = strconv.ParseFloat(string(m[1]), 64)
	s.count, _ = strconv.ParseInt(string(tx[1]), 10, 64)
	s.cpuUs = cpu.perOp(s.count)
	var lat []time.Duration
	files, _ := filepath.Glob(filepath.Join(logDir, "log*"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 3 {
				if us, err := strconv.ParseInt(fs[2], 10, 64); err == nil {
					lat = append(lat, time.Duration(us)*time.Microsecond)
				}
			}
		}
		fh.Close()
	}
	ls := summarize(lat, time.Second, 0)
	s.p50, s.p99 = ls.p50, ls.p99
	return s, nil
}

// lastLines is the end of a tool's output, for an error message.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// rest measures op over HTTP keep-alive with n clients.
func (b *bench) rest(ctx context.Context, op string, n int) (sample, error) {
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, MaxConnsPerHost: n, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	sendBody := []byte(`{"queue_name":"` + qRestSend + `","msg":` + payload1K + `}`)
	readBody := []byte(`{"queue_name":"` + qRestRD + `","vt":30,"qty":1}`)
	call := func(ctx context.Context, fn string, body []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", b.env.restURL+"/pgmq/v1/"+fn, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+b.env.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("rest %s: %s: %s", fn, resp.Status, out)
		}
		return out, nil
	}
	// Open the keep-alive connections before the clock starts.
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); call(ctx, "list_queues", []byte(`{}`)) }()
	}
	wg.Wait()
	cpu := startCPU(b.env.pid("rest"))
	return cpu.measured(loop(ctx, n, b.o.cell, func(ctx context.Context, w int) error {
		if op == "send" {
			_, err := call(ctx, "send", sendBody)
			return err
		}
		out, err := call(ctx, "read", readBody)
		if err != nil {
			return err
		}
		var msgs []struct {
			MsgID int64 `json:"msg_id"`
		}
		if err := json.Unmarshal(out, &msgs); err != nil {
			return fmt.Errorf("rest read: %w: %s", err, out)
		}
		if len(msgs) == 0 {
			return errEmpty
		}
		_, err = call(ctx, "delete", []byte(fmt.Sprintf(`{"queue_name":"%s","msg_id":%d}`, qRestRD, msgs[0].MsgID)))
		return err
	})), nil
}

// memory opens b.o.idleConns authenticated idle clients to mqstack, then
// to PgBouncer, and reports the RSS each process grew by, per connection.
func (b *bench) memory(ctx context.Context) error {
	targets := []string{"mqstack", "pgbouncer"}
	if b.env.base != nil {
		targets = append(targets, "baseline")
	}
	for _, target := range targets {
		pid := b.env.pid(target)
		// One login first, so pools and caches exist before the baseline.
		c, err := pgconn.Connect(ctx, b.env.dsn(target))
		if err != nil {
			fmt.Printf("memory: %s: failed: %v\n", target, err)
			continue
		}
		c.Close(ctx)
		time.Sleep(200 * time.Millisecond)
		before, err := rss(pid)
		if err != nil {
			return err
		}
		liveBefore := b.goLive(target)
		conns, el, openErr := openIdle(ctx, b.env.dsn(target), b.o.idleConns)
		// Idle clients: past mqstack's park delay (a second between
		// transactions), after which an idle session waits in a fresh
		// goroutine with a small stack (proxy/park.go).
		time.Sleep(2500 * time.Millisecond)
		after, err := rss(pid)
		liveAfter := b.goLive(target)
		if target == "mqstack" && b.o.pprofAddr != "" {
			saveProfile(b.o.pprofAddr, "heap", filepath.Join(os.TempDir(), "mqbench-idle-heap.pprof"))
			b.eachMetricLine(func(l string) {
				if strings.HasPrefix(l, "go_memstats_") && !strings.Contains(l, "total") || strings.HasPrefix(l, "go_goroutines") {
					fmt.Println("  ", l)
				}
			})
		}
		open := 0
		for _, c := range conns {
			if c != nil {
				open++
			}
		}
		closeAll(ctx, conns)
		if err != nil {
			return err
		}
		if openErr != nil {
			fmt.Printf("memory: %s: failed: %v\n", target, openErr)
			continue
		}
		per := float64(after-before) / float64(open)
		fmt.Printf("memory: %s: %d idle clients in %s, RSS %.1f MiB -> %.1f MiB, %.1f KiB per client\n",
			target, open, el.Round(time.Millisecond), float64(before)/(1<<20), float64(after)/(1<<20), per/1024)
		row := memRow{target: target, conns: open, before: before, after: after}
		if liveBefore > 0 && liveAfter > 0 {
			row.live = (liveAfter - liveBefore) / int64(open)
		}
		b.res.memory = append(b.res.memory, row)
		time.Sleep(500 * time.Millisecond)
	}
	return nil
}

// goLive is the mqstack process's Go heap and stacks in use, from its
// metrics endpoint (0 for other targets, or when unreadable).
func (b *bench) goLive(target string) int64 {
	if target != "mqstack" {
		return 0
	}
	var sum float64
	b.eachMetricLine(func(l string) {
		name, value, ok := strings.Cut(l, " ")
		if ok && (name == "go_memstats_heap_inuse_bytes" || name == "go_memstats_stack_inuse_bytes") {
			v, _ := strconv.ParseFloat(value, 64)
			sum += v
		}
	})
	return int64(sum)
}

// eachMetricLine calls fn with each line of mqstack's metrics endpoint
// (none when it cannot be read).
func (b *bench) eachMetricLine(fn func(line string)) {
	resp, err := http.Get(b.env.metricsURL + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		fn(sc.Text())
	}
}

// saveProfile fetches a pprof profile of mqstack (run with -pprof) into path.
func saveProfile(addr, name, path string) {
	resp, err := http.Get("http://" + addr + "/debug/pprof/" + name)
	if err != nil {
		fmt.Println("profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		fmt.Println("profile:", err)
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
	fmt.Println("profile: wrote", path)
}
