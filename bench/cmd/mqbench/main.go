// Command mqbench is `make bench`: it starts, on loopback, a tuned Postgres
// (`mqstack up` with a temporary data directory and a TCP port), the mqstack
// proxy in front of it and PgBouncer (transaction pooling, same pool size)
// in front of the same Postgres, then runs each workload against direct
// Postgres, PgBouncer and mqstack, interleaved round by round, and prints
// the medians and ratios (bench/results/latest.csv).
//
// Everything it starts it stops; the data directory is removed at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin       string
	cell      time.Duration
	rounds    int
	poolSize  int
	clients   []int
	idleConns int
	listeners int
	csvPath   string
	only      string
	pprofAddr string
	baseline  string
	// baselineEnv: extra environment of the baseline, K=V,K=V (to compare
	// one binary with itself under, say, GOMAXPROCS=1).
	baselineEnv string
	keep        bool
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mqbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	var clients string
	flag.StringVar(&o.bin, "mqstack", "bin/mqstack", "the mqstack binary")
	flag.DurationVar(&o.cell, "cell", 1500*time.Millisecond, "duration of one measurement cell")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (each round runs every cell once, targets interleaved)")
	flag.IntVar(&o.poolSize, "pool", 16, "backend pool size of mqstack and PgBouncer")
	flag.StringVar(&clients, "clients", "8,64,256", "client counts")
	flag.IntVar(&o.idleConns, "idle", 10000, "idle client connections for the memory row (0: skip)")
	flag.IntVar(&o.listeners, "listeners", 1000, "listening connections of the notify rows (direct Postgres gets max_connections 600 plus this)")
	flag.StringVar(&o.csvPath, "csv", "bench/results/latest.csv", "where to write the results")
	flag.StringVar(&o.only, "only", "", "comma-separated workloads to run (send,readdel,batch,pgbench,storm,rest,notify,memory,scaling); default all")
	flag.StringVar(&o.pprofAddr, "pprof", "", "start mqstack with --pprof on this address (for profiling under load); -baseline gets the next port")
	flag.StringVar(&o.baseline, "baseline", "", "a second mqstack binary (say, built from the commit before a change) measured beside mqstack as target \"baseline\"")
	flag.StringVar(&o.baselineEnv, "baseline-env", "", "extra environment of the -baseline process, K=V,K=V (e.g. GOMAXPROCS=1 to compare a binary with itself)")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directory")
	flag.Parse()
	for _, c := range strings.Split(clients, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(c), &n); err != nil || n <= 0 {
			return fmt.Errorf("bad -clients %q", clients)
		}
		o.clients = append(o.clients, n)
	}
	if o.listeners < 0 {
		return fmt.Errorf("bad -listeners %d", o.listeners)
	}
	if err := raiseNoFile(max(o.idleConns, o.listeners) + 1024); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	env, err := startEnv(ctx, o)
	if err != nil {
		return err
	}
	defer env.close()
	fmt.Printf("mqbench: Postgres %s, mqstack %s, PgBouncer %s, pool %d, cell %s, %d rounds (setup %s)\n",
		env.pgAddr, env.mqAddr, env.pgbAddr, o.poolSize, o.cell, o.rounds, time.Since(start).Round(time.Millisecond))

	b := &bench{o: o, env: env, res: newResults()}
	if err := b.runAll(ctx); err != nil {
		return err
	}
	b.res.print(os.Stdout, machine())
	if o.csvPath != "" {
		if err := os.MkdirAll(filepath.Dir(o.csvPath), 0o755); err != nil {
			return err
		}
		if err := b.res.writeCSV(o.csvPath, machine()); err != nil {
			return err
		}
		fmt.Println("wrote", o.csvPath)
	}
	fmt.Printf("mqbench: done in %s\n", time.Since(start).Round(time.Second))
	return nil
}

func (o options) want(w string) bool {
	if o.only == "" {
		return true
	}
	for _, x := range strings.Split(o.only, ",") {
		if strings.TrimSpace(x) == w {
			return true
		}
	}
	return false
}

func raiseNoFile(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= uint64(n) {
		return nil
	}
	if lim.Max < uint64(n) {
		lim.Max = uint64(n) // needs CAP_SYS_RESOURCE
	} else {
		lim.Cur = lim.Max // as much as allowed: mqstack and PgBouncer inherit it
	}
	lim.Cur = max(lim.Cur, uint64(n))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open-file limit to %d (needed for -idle and -listeners): %w", n, err)
	}
	return nil
}

// machine describes where the bench ran.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					cpu = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%d CPUs (%s), %s memory", numCPU(), cpu, mem)
}
