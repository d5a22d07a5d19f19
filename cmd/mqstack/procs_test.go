package main

import (
	"testing"

	"mqstack/configs"
)

func TestProcsFor(t *testing.T) {
	for _, tc := range []struct {
		maxProcs, pgCPUs int
		embedded         bool
		cpus, want       int
	}{
		{0, 0, true, 2, 1},    // up on 2 CPUs: one
		{0, 0, true, 16, 4},   // up on 16: a quarter
		{0, 8, true, 16, 2},   // up with Postgres sized for 8
		{0, 0, false, 16, 16}, // serve: every CPU
		{3, 0, true, 16, 3},   // configured
		{3, 0, false, 16, 3},
	} {
		p := configs.Default().Proxy
		p.MaxProcs = tc.maxProcs
		if got := procsFor(p, tc.pgCPUs, tc.embedded, tc.cpus); got != tc.want {
			t.Errorf("procsFor(max_procs %d, postgres.cpus %d, embedded %v, %d CPUs) = %d, want %d",
				tc.maxProcs, tc.pgCPUs, tc.embedded, tc.cpus, got, tc.want)
		}
	}
}
