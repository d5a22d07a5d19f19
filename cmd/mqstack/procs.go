package main

import (
	"os"
	"runtime"

	"go.uber.org/zap"

	"mqstack/configs"
)

// procsFor is the GOMAXPROCS the process runs with: proxy.max_procs, or
// when it is 0, under `mqstack up` (embedded) a quarter of the CPUs
// Postgres is sized for, at least one, and under `serve` every CPU the
// process may use (Go's own default, cpus). On a small machine shared with
// Postgres, one scheduler thread costs the proxy 10 to 30% less CPU per
// operation than two, at the same throughput (docs/performance.md).
func procsFor(p configs.ProxyConfig, pgCPUs int, embedded bool, cpus int) int {
	switch {
	case p.MaxProcs > 0:
		return p.MaxProcs
	case !embedded:
		return cpus
	case pgCPUs <= 0:
		pgCPUs = cpus
	}
	return max(1, pgCPUs/4)
}

// setProcs applies procsFor, unless GOMAXPROCS is set in the environment.
func setProcs(v *configs.Validated, embedded bool, log *zap.Logger) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	n := procsFor(v.Proxy, v.Postgres.CPUs, embedded, runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(n)
	log.Debug("scheduler threads", zap.Int("gomaxprocs", n))
}
