package differential

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"mqstack/auth"
	"mqstack/internal/pgembed"
	"mqstack/router"
)

// limitedGrants allow everything but one queue: the broadest grant-limited
// token, so the router allows as much as it ever does and the one denied
// queue shows whether a statement can reach what the router refused.
const limitedGrants = `{
  "grants": [{"queues": ["*"], "ops": ["*"]}],
  "deny": [{"queues": ["payments"], "ops": ["*"]}]
}`

const deniedQueue = "payments"

func limitedIdentity(t *testing.T) auth.Identity {
	t.Helper()
	g, err := auth.ParseGrants(json.RawMessage(limitedGrants), nil)
	if err != nil {
		t.Fatal(err)
	}
	return auth.Identity{Role: "mq", Subject: "differential", Grants: g}
}

var paramCastRE = regexp.MustCompile(`(?i)\$[0-9]+\s*::|CAST\s*\(\s*\$[0-9]`)

// queueValues are what a text parameter is bound to: two granted queues
// (one in mixed case); where a parameter is cast, also values that name the
// denied queue or a granted one only after a cast (char(n) and bpchar drop
// trailing blanks, varchar(n) truncates).
func queueValues(sql string) []string {
	if !paramRE.MatchString(sql) {
		return []string{""}
	}
	if paramCastRE.MatchString(sql) {
		return []string{"orders", "Audit", "payments  ", "orders_x"}
	}
	return []string{"orders", "Audit"}
}

// authorize is what the proxy checks before a statement of a grant-limited
// token reaches Postgres: SessionDenial (every token), Authorize, and a
// listing only as a statement of its own (its rows are filtered).
func authorize(id auth.Identity, st *router.Statement, params router.Params) error {
	if d := router.SessionDenial(st); d != nil {
		return d
	}
	dec, err := router.Authorize(id, st, params)
	if err != nil {
		return err
	}
	if dec.FilterListing && len(st.Parts) != 1 {
		return fmt.Errorf("a listing must be a statement of its own")
	}
	return nil
}

// expectation is what the router's classification lets Postgres do.
type expectation struct {
	named     []string        // pgmq functions the router named
	funcs     map[string]bool // those and everything they may call
	queues    map[string]bool // queues the router named (lower case), or reached by a routing key
	readAny   bool            // a listing: may read every queue (the proxy filters the rows)
	allQueues bool            // a function on every queue
	partman   bool            // may call pg_partman and touch its tables
	triggers  bool            // calls on queues: pgmq's trigger functions may fire
}

func (h *harness) expect(st *router.Statement, params router.Params) expectation {
	e := expectation{funcs: map[string]bool{}, queues: map[string]bool{}}
	named := map[string]bool{}
	for _, c := range st.Calls() {
		fn := "pgmq." + c.Function
		named[fn] = true
		e.funcs[fn] = true
		for callee := range h.closure[fn] {
			if callee == pgembed.PartmanSchema+".*" {
				e.partman = true
				continue
			}
			e.funcs[callee] = true
		}
		switch c.Scope {
		case router.ScopeQueue, router.ScopeTopic:
			e.triggers = true
			name, ok := c.Target.Literal, !c.Target.Null
			if c.Target.Param > 0 {
				name, ok = params(c.Target.Param)
			}
			if !ok {
				continue
			}
			if c.Scope == router.ScopeTopic {
				for _, q := range h.routing(name) {
					e.queues[q] = true
				}
			} else {
				e.queues[strings.ToLower(name)] = true
			}
		case router.ScopeListing:
			e.readAny = true
		case router.ScopeAllQueues:
			e.allQueues = true
		}
	}
	e.named = sortedKeys(named)
	return e
}

// observation is what Postgres did.
type observation struct {
	called map[string]int64    // schema.function -> calls
	queues map[string][]string // queue -> what moved
	writes map[string]bool     // queue -> written (rows or DDL)
	other  map[string]string   // relations outside pgmq touched -> what moved
}

func (h *harness) observe(before, after snapshot, notices []string) observation {
	o := observation{called: map[string]int64{}, queues: map[string][]string{}, writes: map[string]bool{}, other: map[string]string{}}
	for fn, n := range after.funcs {
		if d := n - before.funcs[fn]; d > 0 && !strings.HasPrefix(fn, "difftest.") {
			o.called[fn] = d
		}
	}
	for oid, a := range after.rels {
		d := a.c.sub(before.rels[oid].c)
		if d.zero() {
			continue
		}
		q, known := h.relQueue[oid]
		if !known && a.schema == "pgmq" {
			q, known = queueOfTable(a.name), true
		}
		switch {
		case q != "":
			o.queues[q] = append(o.queues[q], a.name+": "+d.String())
			o.writes[q] = o.writes[q] || d.writes()
		case known, a.schema == "pg_toast", a.schema == "difftest":
			// pgmq's own tables (meta, bindings, ...); catalog toast
		default:
			o.other[a.schema+"."+a.name] = d.String()
		}
	}
	ddl, other := h.ddlQueues(notices)
	for q, what := range ddl {
		o.queues[q] = append(o.queues[q], what...)
		o.writes[q] = true
	}
	for rel, what := range other {
		o.other[rel] = what
	}
	for q := range o.queues {
		sort.Strings(o.queues[q])
	}
	return o
}

// brief is Postgres' view without the counters: what was called, which
// queues were touched, how it ended.
func brief(o observation, errMsg string) string {
	s := fmt.Sprintf("called [%s]; touched queues [%s]", strings.Join(sortedKeys(o.called), ", "), strings.Join(sortedKeys(o.queues), ", "))
	if errMsg != "" {
		return s + "; error: " + firstLine(errMsg)
	}
	return s + "; completed"
}

// problems compares the two views; each problem is a statement doing what
// the router did not say it does.
func (h *harness) problems(e expectation, o observation, errored bool) []string {
	var out []string
	for _, fn := range sortedKeys(o.called) {
		schema, _, _ := strings.Cut(fn, ".")
		switch {
		case schema == "pg_catalog" || schema == "information_schema":
			// builtins the router vouches for by name (safe functions)
		case e.funcs[fn]:
		case h.triggers[fn] && e.triggers:
		case schema == pgembed.PartmanSchema && e.partman:
		default:
			out = append(out, fmt.Sprintf("Postgres called %s, which the router did not name and nothing it named calls", fn))
		}
	}
	if !errored {
		for _, fn := range e.named {
			if o.called[fn] == 0 {
				out = append(out, fmt.Sprintf("the router named %s, which Postgres did not call although the statement succeeded", fn))
			}
		}
	}
	for _, q := range sortedKeys(o.queues) {
		switch {
		case e.allQueues, e.queues[q]:
		case !isFixtureQueue(q) && e.queues[partitionOf(q)]:
			// a partition (q_<queue>_p0, _default) or the archive a
			// conversion renames (a_<queue>_old) of a named queue, made
			// by the statement
		case e.readAny && !o.writes[q]:
		default:
			out = append(out, fmt.Sprintf("Postgres touched queue %q, which the router did not name", q))
		}
	}
	for _, rel := range sortedKeys(o.other) {
		if strings.HasPrefix(rel, pgembed.PartmanSchema+".") && e.partman {
			continue
		}
		out = append(out, fmt.Sprintf("Postgres touched %s outside pgmq", rel))
	}
	return out
}

func isFixtureQueue(q string) bool {
	for _, f := range fixtureQueues {
		if strings.ToLower(f) == q {
			return true
		}
	}
	return false
}

var partitionRE = regexp.MustCompile(`^(.+)_(p[0-9]+|default|old)$`)

// partitionOf is the queue whose partition (or renamed archive) the table
// of "queue" q would be, or "".
func partitionOf(q string) string {
	if m := partitionRE.FindStringSubmatch(q); m != nil {
		return m[1]
	}
	return ""
}

func routerView(st *router.Statement, params router.Params) string {
	var parts []string
	for _, p := range st.Parts {
		s := p.Kind.String()
		var calls []string
		for _, c := range p.Calls {
			cs := c.Function
			if c.Op != 0 {
				cs += "[" + c.Op.String() + "]"
			}
			switch c.Scope {
			case router.ScopeQueue, router.ScopeTopic:
				what := "queue"
				if c.Scope == router.ScopeTopic {
					what = "routing key"
				}
				switch {
				case c.Target.Param > 0:
					v, ok := params(c.Target.Param)
					if !ok {
						v = "NULL"
					} else {
						v = fmt.Sprintf("%q", v)
					}
					cs += fmt.Sprintf(" %s $%d=%s", what, c.Target.Param, v)
				case c.Target.Null:
					cs += " " + what + " NULL"
				default:
					cs += fmt.Sprintf(" %s %q", what, c.Target.Literal)
				}
			case router.ScopeListing:
				cs += " listing"
			case router.ScopeAllQueues:
				cs += " all queues"
			case router.ScopePure:
				cs += " helper"
			}
			calls = append(calls, cs)
		}
		if len(calls) > 0 {
			s += " {" + strings.Join(calls, "; ") + "}"
		}
		if p.Setting != "" {
			s += " " + p.Setting
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, " | ") + "] allowed"
}

func postgresView(o observation, errMsg string) string {
	var b strings.Builder
	var fns []string
	for _, fn := range sortedKeys(o.called) {
		fns = append(fns, fmt.Sprintf("%s x%d", fn, o.called[fn]))
	}
	fmt.Fprintf(&b, "called [%s]", strings.Join(fns, ", "))
	var qs []string
	for _, q := range sortedKeys(o.queues) {
		qs = append(qs, fmt.Sprintf("%s (%s)", q, strings.Join(o.queues[q], "; ")))
	}
	fmt.Fprintf(&b, "; queues touched [%s]", strings.Join(qs, ", "))
	if len(o.other) > 0 {
		var os []string
		for _, r := range sortedKeys(o.other) {
			os = append(os, r+" ("+o.other[r]+")")
		}
		fmt.Fprintf(&b, "; other relations [%s]", strings.Join(os, ", "))
	}
	if errMsg != "" {
		fmt.Fprintf(&b, "; error: %s", firstLine(errMsg))
	} else {
		b.WriteString("; completed")
	}
	return b.String()
}

// mismatch is one statement (with its parameters) whose two views differ,
// under the settings where they did.
type mismatch struct {
	sql, params, source string
	router, postgres    string
	problems            []string
	settings            []string
}

type tally struct {
	units, denied, allowed, errored, completed, restores, rebuilds int
	stmtsAllowed                                                   map[string]bool
	runsBySource                                                   map[string]int
	deniedSettings                                                 []string
}

func TestRouterAgainstPostgres(t *testing.T) {
	start := time.Now()
	c := buildCorpus(t)
	id := limitedIdentity(t)
	none := router.Params(func(int) (string, bool) { return "", false })
	for q, allowed := range map[string]bool{"orders": true, "Audit": true, deniedQueue: false, strings.ToUpper(deniedQueue): false} {
		err := authorize(id, router.Classify("SELECT * FROM pgmq.read("+quoteLit(q)+", 0, 1)"), none)
		if (err == nil) != allowed {
			t.Fatalf("the limited identity: read of %q allowed=%v, want %v (%v)", q, err == nil, allowed, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h := newHarness(t, ctx)
	h.startDialer(t)
	setupTime := time.Since(start)

	allowAll := func(router.Params) error { return nil }

	// Rolled-back work must still count, or the check sees nothing.
	t.Run("rolled back work is counted", func(t *testing.T) {
		before, err := h.settle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// (A non-set-returning function next to one that returns a set is
		// evaluated once more when the set ends: metrics runs twice here.)
		out, err := h.run(ctx, `SELECT pgmq.send('orders', '{}'), pgmq.metrics('jobs')`, sessionSettings[0], "", allowAll)
		if err != nil || out.err != "" {
			t.Fatalf("run: %v %s", err, out.err)
		}
		after, err := h.settle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o := h.observe(before, after, out.notices)
		if o.called["pgmq.send"] != 1 || o.called["pgmq.metrics"] < 1 || o.called["pgmq.format_table_name"] < 2 {
			t.Fatalf("function calls of a rolled-back transaction are not counted: %v", o.called)
		}
		if !o.writes["orders"] || len(o.queues["jobs"]) == 0 || len(o.queues) != 2 {
			t.Fatalf("table statistics of a rolled-back transaction are not as expected: %v", o.queues)
		}
		// and DDL shows through the event triggers
		out, err = h.run(ctx, `SELECT pgmq.drop_queue('jobs')`, sessionSettings[0], "", allowAll)
		if err != nil || out.err != "" {
			t.Fatalf("run: %v %s", err, out.err)
		}
		if _, err := h.settle(ctx); err != nil {
			t.Fatal(err)
		}
		if q, _ := h.ddlQueues(out.notices); len(q["jobs"]) == 0 {
			t.Fatalf("DROP of q_jobs not seen: notices %q", out.notices)
		}
	})
	// The check must see the attacks when something lets them
	// through: each runs unchecked, against what a router that read it
	// naively (casts ignored, standard_conforming_strings on, UTF-8) would
	// have said.
	t.Run("the check catches the issue's attacks when let through", func(t *testing.T) {
		for _, c := range []struct {
			run, naive string
			set        setting
		}{
			{`SELECT * FROM pgmq.read('payments  '::char(10),0,1)`, `SELECT * FROM pgmq.read('payments  ',0,1)`, sessionSettings[0]},
			{`SELECT * FROM pgmq.read('orders_x'::varchar(6),0,1)`, `SELECT * FROM pgmq.read('orders_x',0,1)`, sessionSettings[0]},
			{scsOffBindings, scsOffBindings, settingNamed(t, "standard_conforming_strings=off")},
			{sjisRead, sjisRead, settingNamed(t, "client_encoding=SJIS")},
			{sjisBindings, sjisBindings, settingNamed(t, "client_encoding=SJIS")},
		} {
			before, err := h.settle(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.run(ctx, c.run, c.set, "", allowAll)
			if err != nil {
				t.Fatalf("%s: %v", c.run, err)
			}
			after, err := h.settle(ctx)
			if err != nil {
				t.Fatal(err)
			}
			obs := h.observe(before, after, out.notices)
			probs := h.problems(h.expect(router.Classify(c.naive), none), obs, out.err != "")
			if len(probs) == 0 {
				t.Errorf("%s under %s: the check sees nothing wrong (Postgres: %s)", c.run, c.set.name, postgresView(obs, out.err))
			}
		}
	})
	if t.Failed() {
		return
	}

	// Settings a limited token may not set are skipped (the router refuses
	// them; that is the point).
	var tl tally
	tl.stmtsAllowed = map[string]bool{}
	tl.runsBySource = map[string]int{}
	var settings []setting
	for _, s := range sessionSettings {
		if s.sql != "" {
			if err := authorize(id, router.Classify(s.sql), nil); err != nil {
				tl.deniedSettings = append(tl.deniedSettings, s.name)
				continue
			}
		}
		settings = append(settings, s)
	}
	others := settings[1:]
	var relevant, inert, parse []setting
	for _, s := range others {
		if s.inert {
			inert = append(inert, s)
		} else {
			relevant = append(relevant, s)
		}
		if s.parse {
			parse = append(parse, s)
		}
	}
	all := 0

	rt := router.New(8192)
	mismatches := map[string]*mismatch{}
	var order []string
	cacheDiffs := 0
	before, err := h.settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// what became of the attack forms: verdict -> where (first seen order)
	isAttack := map[string]bool{}
	for _, a := range attackForms {
		isAttack[a] = true
	}
	verdicts := map[string]map[string][]string{}
	var verdictOrder = map[string][]string{}
	note := func(sql, verdict, where string) {
		if !isAttack[sql] {
			return
		}
		if verdicts[sql] == nil {
			verdicts[sql] = map[string][]string{}
		}
		if _, ok := verdicts[sql][verdict]; !ok {
			verdictOrder[sql] = append(verdictOrder[sql], verdict)
		}
		verdicts[sql][verdict] = append(verdicts[sql][verdict], where)
	}
	some := 0
	for _, e := range c.entries {
		st := rt.Classify(e.sql)
		if fresh := router.Classify(e.sql); !reflect.DeepEqual(st, fresh) {
			cacheDiffs++
			t.Errorf("router.New().Classify and router.Classify disagree on %q:\n cached %+v\n fresh  %+v", e.sql, st, fresh)
		}
		runSettings := []setting{settings[0]}
		switch {
		case e.settings == settingsParse:
			runSettings = append(runSettings, parse...)
		case e.settings == settingsAll:
			runSettings = append(runSettings, relevant...)
			if len(inert) > 0 {
				runSettings = append(runSettings, inert[all%len(inert)])
			}
			all++
		case e.settings == settingsSome && len(others) > 0:
			runSettings = append(runSettings, others[(2*some)%len(others)])
			if len(others) > 1 {
				runSettings = append(runSettings, others[(2*some+1)%len(others)])
			}
			some++
		}
		for _, set := range runSettings {
			for _, qv := range queueValues(e.sql) {
				tl.units++
				var params router.Params
				out, err := h.run(ctx, e.sql, set, qv, func(p router.Params) error {
					params = p
					return authorize(id, st, p)
				})
				if err != nil {
					t.Fatalf("harness: running %q under %s: %v", e.sql, set.name, err)
				}
				where := set.name
				if qv != "" {
					where += " " + quoteLit(qv)
				}
				if out.denied != nil {
					tl.denied++
					note(e.sql, "refused: "+out.denied.Error(), where)
					continue
				}
				tl.allowed++
				tl.runsBySource[sourceGroup(e.source)]++
				tl.stmtsAllowed[e.sql] = true
				if out.err != "" {
					tl.errored++
				} else {
					tl.completed++
				}
				after, err := h.settle(ctx)
				if err != nil {
					t.Fatalf("harness: after %q: %v", e.sql, err)
				}
				exp := h.expect(st, params)
				obs := h.observe(before, after, out.notices)
				probs := h.problems(exp, obs, out.err != "")
				if len(probs) > 0 {
					note(e.sql, "MISMATCH: "+strings.Join(probs, "; "), where)
				} else {
					note(e.sql, "ran as the router said: "+brief(obs, out.err), where)
				}
				if len(probs) > 0 {
					ps := strings.Join(out.params, ", ")
					key := e.sql + "\x00" + ps + "\x00" + strings.Join(probs, "\x00")
					m := mismatches[key]
					if m == nil {
						m = &mismatch{sql: e.sql, params: ps, source: e.source, router: routerView(st, params),
							postgres: postgresView(obs, out.err), problems: probs}
						mismatches[key] = m
						order = append(order, key)
					}
					m.settings = append(m.settings, set.name)
				}
				before = after
				if out.ended {
					full, err := h.restore(ctx)
					if err != nil {
						t.Fatalf("harness: restoring the fixture after %q: %v", e.sql, err)
					}
					tl.restores++
					if full {
						tl.rebuilds++
					}
					if before, err = h.settle(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	// The fixture is as it was: every statement was rolled back (or the
	// fixture restored).
	if rows, err := exec(ctx, h.super, fingerprintSQL); err != nil || rows[0][0] != h.fingerprint {
		t.Errorf("the fixture changed during the run (err %v)", err)
	}

	for _, key := range order {
		m := mismatches[key]
		var b strings.Builder
		fmt.Fprintf(&b, "router and Postgres disagree (%s; settings: %s)\n", m.source, strings.Join(m.settings, ", "))
		fmt.Fprintf(&b, "  SQL:      %s\n", oneLine(m.sql))
		if m.params != "" {
			fmt.Fprintf(&b, "  params:   %s\n", m.params)
		}
		fmt.Fprintf(&b, "  router:   %s\n", m.router)
		fmt.Fprintf(&b, "  postgres: %s\n", m.postgres)
		for _, p := range m.problems {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
		t.Error(b.String())
	}

	var src []string
	for _, k := range sortedKeys(c.bySource) {
		src = append(src, fmt.Sprintf("%s %d", k, c.bySource[k]))
	}
	t.Logf("corpus: %d statements (%s; %d duplicates dropped); %d of them allowed at least once", len(c.entries), strings.Join(src, ", "), c.dups, len(tl.stmtsAllowed))
	if len(tl.deniedSettings) > 0 {
		t.Logf("settings the router refuses (skipped): %s", strings.Join(tl.deniedSettings, ", "))
	}
	var sn []string
	for _, s := range settings {
		sn = append(sn, s.name)
	}
	t.Logf("settings run: %s", strings.Join(sn, ", "))
	t.Logf("runs (statement x setting x parameter value): %d; denied by the router %d; allowed and run %d (completed %d, errored in Postgres %d); fixture restores %d (full %d)",
		tl.units, tl.denied, tl.allowed, tl.completed, tl.errored, tl.restores, tl.rebuilds)
	for _, a := range attackForms {
		var b strings.Builder
		fmt.Fprintf(&b, "attack %s", oneLine(a))
		if len(verdictOrder[a]) == 0 {
			b.WriteString("\n    not run (not in the corpus?)")
		}
		for _, v := range verdictOrder[a] {
			w := verdicts[a][v]
			if len(w) > 3 {
				w = append(w[:3:3], fmt.Sprintf("... %d runs", len(w)))
			}
			fmt.Fprintf(&b, "\n    [%s] %s", strings.Join(w, ", "), v)
		}
		t.Log(b.String())
	}
	var rs []string
	for _, k := range sortedKeys(tl.runsBySource) {
		rs = append(rs, fmt.Sprintf("%s %d", k, tl.runsBySource[k]))
	}
	t.Logf("allowed runs by source: %s", strings.Join(rs, ", "))
	t.Logf("mismatches: %d distinct (statement, parameters, problem) groups; cache disagreements %d", len(order), cacheDiffs)
	t.Logf("time: setup %v, total %v", setupTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func settingNamed(t *testing.T, name string) setting {
	for _, s := range sessionSettings {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no setting %q", name)
	return setting{}
}

func oneLine(s string) string {
	r := strings.NewReplacer("\n", `\n`, "\t", `\t`)
	return r.Replace(s)
}
