package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
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
	// live is what the Go runtime's in-use heap and stacks grew by, per
	// client (mqstack only; 0 when unknown): the memory the idle clients
	// hold, which RSS also counts but keeps after a login burst frees it.
	live int64
}

// liveNote is the row's note on live memory, "" when unknown.
func (m memRow) liveNote() string {
	if m.live <= 0 {
		return ""
	}
	return fmt.Sprintf("Go heap+stack in use %.1f KiB per client", float64(m.live)/1024)
}

type results struct {
	order   []key
	samples map[key][]sample
	notes   map[key]string
	memory  []memRow
}

func newResults() *results { return &results{samples: map[key][]sample{}, notes: map[key]string{}} }

// note sets the text of k's note column. A row with a note and no sample
// is printed too, with empty figures (a target that cannot run it).
func (r *results) note(k key, text string) {
	if !r.seen(k) {
		r.order = append(r.order, k)
	}
	r.notes[k] = text
}

// seen says whether k is in r.order already.
func (r *results) seen(k key) bool {
	_, sampled := r.samples[k]
	_, noted := r.notes[k]
	return sampled || noted
}

func (r *results) add(k key, s sample) {
	if !r.seen(k) {
		r.order = append(r.order, k)
	}
	r.samples[k] = append(r.samples[k], s)
}

// median is the per-column median over the rounds whose cell ran; ok is
// false when none did.
func (r *results) median(k key) (sample, bool) {
	var ss []sample
	for _, s := range r.samples[k] {
		if s.failed == "" {
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		return sample{}, false
	}
	ops := make([]float64, len(ss))
	cpu := make([]float64, len(ss))
	p50 := make([]time.Duration, len(ss))
	p99 := make([]time.Duration, len(ss))
	var errs, count int64
	for i, s := range ss {
		ops[i], cpu[i], p50[i], p99[i] = s.ops, s.cpuUs, s.p50, s.p99
		errs += s.errors
		count += s.count
	}
	for _, x := range [][]float64{ops, cpu} {
		slices.Sort(x)
	}
	slices.Sort(p50)
	slices.Sort(p99)
	m := len(ss) / 2
	return sample{ops: ops[m], cpuUs: cpu[m], p50: p50[m], p99: p99[m], errors: errs, count: count}, true
}

// failures says how many of k's rounds failed, and the first reason.
func (r *results) failures(k key) (n int, why string) {
	for _, s := range r.samples[k] {
		if s.failed != "" {
			if n == 0 {
				why = s.failed
			}
			n++
		}
	}
	return n, why
}

// row is one printed line.
type row struct {
	k                   key
	s                   sample
	ok                  bool    // at least one round ran
	vsDirect, vsPgb     float64 // ops/s ratios; 0: not applicable
	vsBase              float64 // mqstack's ops/s over the baseline binary's
	cpuVsPgb, cpuVsBase float64
	addedP99            time.Duration
	hasAdded            bool
	failed              int
	why                 string
	note                string
}

// baselineDirect is the direct row a proxy (or REST) row is compared
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

func div(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a / b
}

// compare fills a proxy row's ratios against direct, PgBouncer and, for
// mqstack, the baseline binary in the same mode.
func (r *results) compare(rw *row) {
	k := rw.k
	if k.target == "direct" || k.target == "pgbouncer" || !rw.ok {
		return
	}
	if d, ok := r.baselineDirect(k); ok {
		rw.vsDirect = div(rw.s.ops, d.ops)
		rw.addedP99, rw.hasAdded = rw.s.p99-d.p99, true
	}
	if p, ok := r.baselinePgb(k); ok {
		rw.vsPgb = div(rw.s.ops, p.ops)
		rw.cpuVsPgb = div(rw.s.cpuUs, p.cpuUs)
	}
	if k.target == "mqstack" {
		if b, ok := r.median(key{k.workload, k.clients, "baseline", k.mode}); ok {
			rw.vsBase = div(rw.s.ops, b.ops)
			rw.cpuVsBase = div(rw.s.cpuUs, b.cpuUs)
		}
	}
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
		rw := row{k: k}
		rw.s, rw.ok = r.median(k)
		rw.failed, rw.why = r.failures(k)
		rw.note = r.notes[k]
		r.compare(&rw)
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

func micros(x float64) string {
	if x == 0 {
		return ""
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

// fields are a row's printed and CSV columns after workload, clients,
// target and mode.
func (rw row) fields() []string {
	added := ""
	if rw.hasAdded {
		added = ms(rw.addedP99)
	}
	note := rw.note
	if rw.failed > 0 {
		note = strings.TrimPrefix(note+fmt.Sprintf("; failed in %d round(s): %s", rw.failed, rw.why), "; ")
	}
	if !rw.ok && rw.failed == 0 {
		// Never run: no figures rather than zeros.
		return append(make([]string, len(header)-1), note)
	}
	return []string{strconv.FormatFloat(rw.s.ops, 'f', 0, 64), ms(rw.s.p50), ms(rw.s.p99), added,
		ratio(rw.vsDirect), ratio(rw.vsPgb), ratio(rw.vsBase), micros(rw.s.cpuUs), ratio(rw.cpuVsPgb), ratio(rw.cpuVsBase),
		strconv.FormatInt(rw.s.errors, 10), note}
}

var header = []string{"ops/s", "p50 ms", "p99 ms", "+p99 ms", "vs direct", "vs pgbouncer", "vs baseline",
	"cpu us/op", "cpu vs pgb", "cpu vs base", "errors", "note"}

func (r *results) print(w io.Writer, machine string) {
	fmt.Fprintf(w, "\nmqbench on %s; median of the rounds\n", machine)
	fmt.Fprintf(w, "cpu us/op: user+system CPU of the proxy process (mqstack, PgBouncer) per operation\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tclients\ttarget\tmode\t"+strings.Join(header, "\t")+"\t")
	last := ""
	for _, rw := range r.rows() {
		if rw.k.workload != last && last != "" {
			fmt.Fprintln(tw, strings.Repeat("\t", len(header)+4))
		}
		last = rw.k.workload
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", rw.k.workload, rw.k.clients, rw.k.target, rw.k.mode, strings.Join(rw.fields(), "\t"))
	}
	tw.Flush()
	r.printScaling(w)
	if len(r.memory) > 0 {
		fmt.Fprintln(w)
		for _, m := range r.memory {
			fmt.Fprintf(w, "idle memory: %-9s %6d clients  RSS %7.1f MiB -> %7.1f MiB  %6.1f KiB per client  %s\n", m.target, m.conns,
				float64(m.before)/(1<<20), float64(m.after)/(1<<20), float64(m.after-m.before)/float64(m.conns)/1024, m.liveNote())
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
		"vs_direct", "vs_pgbouncer", "vs_baseline", "cpu_us_per_op", "cpu_vs_pgbouncer", "cpu_vs_baseline",
		"errors", "note", "rounds", "rss_bytes_per_client"})
	for _, rw := range r.rows() {
		rec := append([]string{rw.k.workload, strconv.Itoa(rw.k.clients), rw.k.target, rw.k.mode}, rw.fields()...)
		cw.Write(append(rec, strconv.Itoa(len(r.samples[rw.k])), ""))
	}
	for _, m := range r.memory {
		rec := []string{"idle memory", strconv.Itoa(m.conns), m.target, ""}
		rec = append(rec, make([]string, len(header)-1)...)
		rec = append(rec, m.liveNote())
		cw.Write(append(rec, "1", strconv.FormatInt((m.after-m.before)/int64(m.conns), 10)))
	}
	cw.Flush()
	return cw.Error()
}
