package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

type key struct {
	workload string
	clients  int
	target   string
	mode     string
}

type memRow struct {
	target        string
	conns         int
	before, after int64
}

type results struct {
	order   []key
	samples map[key][]sample
	memory  []memRow
}

func newResults() *results { return &results{samples: map[key][]sample{}} }

func (r *results) add(k key, s sample) {
	if _, ok := r.samples[k]; !ok {
		r.order = append(r.order, k)
	}
	r.samples[k] = append(r.samples[k], s)
}

// median is the per-column median over the rounds.
func (r *results) median(k key) (sample, bool) {
	ss := r.samples[k]
	if len(ss) == 0 {
		return sample{}, false
	}
	ops := make([]float64, len(ss))
	p50 := make([]time.Duration, len(ss))
	p99 := make([]time.Duration, len(ss))
	var errs int64
	for i, s := range ss {
		ops[i], p50[i], p99[i] = s.ops, s.p50, s.p99
		errs += s.errors
	}
	slices.Sort(ops)
	slices.Sort(p50)
	slices.Sort(p99)
	m := len(ss) / 2
	return sample{ops: ops[m], p50: p50[m], p99: p99[m], errors: errs}, true
}

// row is one printed line.
type row struct {
	k               key
	s               sample
	vsDirect, vsPgb float64 // 0: not applicable
	addedP99        time.Duration
	hasAdded        bool
}

// baselineDirect is the direct row a mqstack (or REST) row is compared
// with: the same mode where direct has it, else its prepared row, else the
// storm's scram row.
func (r *results) baselineDirect(k key) (sample, bool) {
	for _, mode := range []string{k.mode, "prepared", "scram"} {
		if s, ok := r.median(key{k.workload, k.clients, "direct", mode}); ok {
			return s, true
		}
	}
	return sample{}, false
}

func (r *results) baselinePgb(k key) (sample, bool) {
	for _, mode := range []string{"unnamed", "simple", "md5"} {
		if s, ok := r.median(key{k.workload, k.clients, "pgbouncer", mode}); ok {
			return s, true
		}
	}
	return sample{}, false
}

func (r *results) rows() []row {
	// Grouped by workload (in order of first run), then client count, so
	// the REST rows sit beside the SQL rows of the same operation.
	wl := map[string]int{}
	for _, k := range r.order {
		if _, ok := wl[k.workload]; !ok {
			wl[k.workload] = len(wl)
		}
	}
	order := slices.Clone(r.order)
	slices.SortStableFunc(order, func(a, b key) int {
		if d := wl[a.workload] - wl[b.workload]; d != 0 {
			return d
		}
		return a.clients - b.clients
	})
	var out []row
	for _, k := range order {
		s, _ := r.median(k)
		rw := row{k: k, s: s}
		if k.target == "mqstack" || k.target == "rest" {
			if d, ok := r.baselineDirect(k); ok && d.ops > 0 {
				rw.vsDirect = s.ops / d.ops
				rw.addedP99, rw.hasAdded = s.p99-d.p99, true
			}
			if p, ok := r.baselinePgb(k); ok && p.ops > 0 {
				rw.vsPgb = s.ops / p.ops
			}
		}
		out = append(out, rw)
	}
	return out
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

func ratio(x float64) string {
	if x == 0 {
		return ""
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func (r *results) print(w io.Writer, machine string) {
	fmt.Fprintf(w, "\nmqbench on %s; median of the rounds\n\n", machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tclients\ttarget\tmode\tops/s\tp50 ms\tp99 ms\t+p99 ms\tvs direct\tvs pgbouncer\terrors\t")
	last := ""
	for _, rw := range r.rows() {
		if rw.k.workload != last && last != "" {
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t\t\t")
		}
		last = rw.k.workload
		added := ""
		if rw.hasAdded {
			added = ms(rw.addedP99)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", rw.k.workload, rw.k.clients, rw.k.target, rw.k.mode,
			rw.s.ops, ms(rw.s.p50), ms(rw.s.p99), added, ratio(rw.vsDirect), ratio(rw.vsPgb), rw.s.errors)
	}
	tw.Flush()
	if len(r.memory) > 0 {
		fmt.Fprintln(w)
		for _, m := range r.memory {
			fmt.Fprintf(w, "idle memory: %-9s %6d clients  RSS %7.1f MiB -> %7.1f MiB  %6.1f KiB per client\n", m.target, m.conns,
				float64(m.before)/(1<<20), float64(m.after)/(1<<20), float64(m.after-m.before)/float64(m.conns)/1024)
		}
	}
}

func (r *results) writeCSV(path, machine string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "# mqbench %s on %s\n", time.Now().UTC().Format("2006-01-02"), machine)
	cw := csv.NewWriter(f)
	cw.Write([]string{"workload", "clients", "target", "mode", "ops_per_s", "p50_ms", "p99_ms", "added_p99_ms",
		"vs_direct", "vs_pgbouncer", "errors", "rounds", "rss_bytes_per_client"})
	for _, rw := range r.rows() {
		added := ""
		if rw.hasAdded {
			added = ms(rw.addedP99)
		}
		cw.Write([]string{rw.k.workload, strconv.Itoa(rw.k.clients), rw.k.target, rw.k.mode,
			strconv.FormatFloat(rw.s.ops, 'f', 0, 64), ms(rw.s.p50), ms(rw.s.p99), added,
			ratio(rw.vsDirect), ratio(rw.vsPgb), strconv.FormatInt(rw.s.errors, 10),
			strconv.Itoa(len(r.samples[rw.k])), ""})
	}
	for _, m := range r.memory {
		cw.Write([]string{"idle memory", strconv.Itoa(m.conns), m.target, "", "", "", "", "", "", "", "", "1",
			strconv.FormatInt((m.after-m.before)/int64(m.conns), 10)})
	}
	cw.Flush()
	return cw.Error()
}
