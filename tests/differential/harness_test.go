package differential

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
	"mqstack/router"
)

// fixtureQueues are created before the run and restored whenever a
// statement commits: the queues of the generated set (mixed case and
// underscores included; "Audit" is the table q_audit) and those the router
// tests name.
var fixtureQueues = []string{"orders", "orders_eu", "orders_dlq", "payments", "Audit", "jobs", "q", "x", "a", "b", "q1"}

// fixtureBindings are topic bindings (pattern, queue), so send_topic has
// queues to reach (payments among them: publish grants match routing keys,
// not queue names).
var fixtureBindings = [][2]string{{"orders.#", "orders"}, {"orders.eu.*", "orders_eu"}, {"payments.*", "payments"}, {"audit.#", "Audit"}}

const (
	// statementTimeout bounds every statement (a poll on an empty queue
	// waits up to its max_poll_seconds).
	statementTimeout = "5000"
	// flushWait bounds the wait for a session's statistics to show.
	flushWait = 15 * time.Second
)

// setupSQL (as the superuser) installs what the harness observes with: a
// sentinel function each statement session calls before it forces its
// statistics out, and event triggers that report DDL on relations (as
// notices, which a rollback does not take back).
const setupSQL = `
CREATE SCHEMA difftest;
GRANT USAGE ON SCHEMA difftest TO mq;
CREATE FUNCTION difftest.tick() RETURNS integer LANGUAGE plpgsql AS $$BEGIN RETURN 1; END$$;

-- the table a relation belongs to: an index's table, a sequence's or toast
-- table's owner, a partition's root
CREATE FUNCTION difftest.root_rel(rel oid) RETURNS oid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
    r oid := rel;
    p oid;
BEGIN
    SELECT i.indrelid INTO p FROM pg_index i WHERE i.indexrelid = r;
    IF FOUND THEN r := p; END IF;
    SELECT d.refobjid INTO p FROM pg_depend d
     WHERE d.classid = 'pg_class'::regclass AND d.objid = r
       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       AND (SELECT c.relkind FROM pg_class c WHERE c.oid = r) = 'S'
     LIMIT 1;
    IF FOUND THEN r := p; END IF;
    SELECT c.oid INTO p FROM pg_class c WHERE c.reltoastrelid = r;
    IF FOUND THEN r := p; END IF;
    LOOP
        SELECT h.inhparent INTO p FROM pg_inherits h WHERE h.inhrelid = r LIMIT 1;
        EXIT WHEN NOT FOUND;
        r := p;
    END LOOP;
    RETURN r;
END $$;

CREATE FUNCTION difftest.ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    r    record;
    root oid;
    nm   text;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        root := NULL;
        IF r.classid = 'pg_class'::regclass THEN
            root := difftest.root_rel(r.objid);
        ELSIF r.classid = 'pg_trigger'::regclass THEN
            SELECT difftest.root_rel(t.tgrelid) INTO root FROM pg_trigger t WHERE t.oid = r.objid;
        END IF;
        IF root IS NOT NULL THEN
            SELECT n.nspname || '.' || c.relname INTO nm
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = root;
            RAISE NOTICE 'difftest-ddl|%|%|%', root, r.command_tag, coalesce(nm, '?');
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION difftest.ddl_drop() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        RAISE NOTICE 'difftest-drop|%|%|%', r.objid, r.object_type, array_to_string(r.address_names, '|');
    END LOOP;
END $$;

CREATE EVENT TRIGGER difftest_ddl ON ddl_command_end EXECUTE FUNCTION difftest.ddl_end();
CREATE EVENT TRIGGER difftest_drop ON sql_drop EXECUTE FUNCTION difftest.ddl_drop();
`

// fingerprintSQL describes the fixture's structure: queues, bindings,
// notify settings, queue relations and their triggers. A statement that
// committed changes to it forces a full rebuild.
const fingerprintSQL = `
SELECT concat_ws(E'\n',
  (SELECT string_agg(m.queue_name || ':' || m.is_partitioned || ':' || m.is_unlogged, ',' ORDER BY m.queue_name) FROM pgmq.meta m),
  (SELECT string_agg(b.pattern || '>' || b.queue_name, ',' ORDER BY b.pattern, b.queue_name) FROM pgmq.topic_bindings b),
  (SELECT string_agg(t.queue_name, ',' ORDER BY t.queue_name) FROM pgmq.notify_insert_throttle t),
  (SELECT string_agg(c.oid || ':' || c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname)
     FROM pg_class c WHERE c.relnamespace = 'pgmq'::regnamespace),
  (SELECT string_agg(tg.tgname || '@' || tg.tgrelid::regclass, ',' ORDER BY 1)
     FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid WHERE c.relnamespace = 'pgmq'::regnamespace))`

// rebuildSQL drops every queue and pgmq relation of a queue, then creates
// the fixture (as the default role, which owns the queues).
func rebuildSQL() string {
	var b strings.Builder
	b.WriteString(`DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT m.queue_name FROM pgmq.meta m LOOP
        PERFORM pgmq.drop_queue(r.queue_name);
    END LOOP;
    FOR r IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relkind IN ('r', 'p')
                AND (c.relname LIKE 'q\_%' OR c.relname LIKE 'a\_%') LOOP
        EXECUTE format('DROP TABLE IF EXISTS pgmq.%I CASCADE', r.relname);
    END LOOP;
    DELETE FROM pgmq.topic_bindings;
    DELETE FROM pgmq.notify_insert_throttle;
END $$;
`)
	for _, q := range fixtureQueues {
		fmt.Fprintf(&b, "SELECT pgmq.create(%s);\n", quoteLit(q))
	}
	for _, bd := range fixtureBindings {
		fmt.Fprintf(&b, "SELECT pgmq.bind_topic(%s, %s);\n", quoteLit(bd[0]), quoteLit(bd[1]))
	}
	b.WriteString(refillSQL())
	return b.String()
}

// refillSQL empties the fixture queues and puts three visible messages
// (two message groups) in each.
func refillSQL() string {
	var b strings.Builder
	for _, q := range fixtureQueues {
		t := strings.ToLower(q)
		fmt.Fprintf(&b, "TRUNCATE pgmq.%s, pgmq.%s RESTART IDENTITY;\n", quoteIdent("q_"+t), quoteIdent("a_"+t))
		fmt.Fprintf(&b, `SELECT pgmq.send_batch(%s, ARRAY['{"n":1,"k":1}', '{"n":2}', '{"n":3}']::jsonb[], ARRAY['{"x-pgmq-group":"g1"}', '{"x-pgmq-group":"g2"}', '{}']::jsonb[]);`+"\n", quoteLit(q))
	}
	return b.String()
}

func quoteLit(s string) string   { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// harness holds the cluster and the sessions that observe it.
type harness struct {
	cluster *pgembed.Cluster
	db      string

	super  *pgconn.PgConn // superuser: setup, the fixture's relation map
	admin  *pgconn.PgConn // default role: the fixture's queues
	reader *pgconn.PgConn // superuser: reads statistics only, never pgmq tables

	ticks    int64 // difftest.tick calls so far
	sessions chan dialed

	// relQueue maps a pgmq relation (and its indexes, sequences, toast
	// tables) to its queue, "" for pgmq tables that are not a queue's.
	relQueue    map[uint32]string
	fingerprint string

	// closure of each pgmq function (by name): what it may call.
	closure  map[string]map[string]bool
	triggers map[string]bool // pgmq trigger functions
	bindings []binding
}

type binding struct {
	queue string // lower case, as the table is named
	re    *regexp.Regexp
}

func newHarness(t *testing.T, ctx context.Context) *harness {
	t.Helper()
	c := testenv.NewCluster(t, testenv.Options{Settings: map[string]string{
		"track_functions": "all",
		// Nothing but the statement under test may touch a queue table or
		// call a function while it is measured.
		"autovacuum":              "off",
		"pg_partman_bgw.interval": "86400",
		// A PREPARE TRANSACTION in the corpus must fail, not keep locks.
		"max_prepared_transactions": "0",
	}})
	h := &harness{cluster: c, db: c.Database()}
	var err error
	if h.super, err = pgconn.Connect(ctx, c.ConnString(pgembed.Superuser, h.db)); err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	if h.reader, err = pgconn.Connect(ctx, c.ConnString(pgembed.Superuser, h.db)); err != nil {
		t.Fatalf("connect the reader: %v", err)
	}
	if h.admin, err = pgconn.Connect(ctx, c.ConnString(c.DefaultRole(), h.db)); err != nil {
		t.Fatalf("connect as %s: %v", c.DefaultRole(), err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, pc := range []*pgconn.PgConn{h.super, h.reader, h.admin} {
			pc.Close(cctx)
		}
	})
	if _, err := h.super.Exec(ctx, setupSQL).ReadAll(); err != nil {
		t.Fatalf("installing the observers: %v", err)
	}
	if rows, err := exec(ctx, h.admin, "SHOW track_functions"); err != nil || rows[0][0] != "all" {
		t.Fatalf("track_functions: %v %v", rows, err)
	}
	if err := h.rebuild(ctx); err != nil {
		t.Fatalf("creating the fixture: %v", err)
	}
	if err := h.loadClosure(ctx); err != nil {
		t.Fatalf("reading pgmq's functions: %v", err)
	}
	return h
}

// exec runs sql (simple protocol) and returns the rows of its last result.
func exec(ctx context.Context, pc *pgconn.PgConn, sql string) ([][]string, error) {
	res, err := pc.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var rows [][]string
	if len(res) > 0 {
		for _, r := range res[len(res)-1].Rows {
			row := make([]string, len(r))
			for i, v := range r {
				row[i] = string(v)
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// flushAdmin forces the admin session's statistics out: pgstat flushes a
// forced report before the server sends ReadyForQuery outside a
// transaction, so they are visible once this returns.
func (h *harness) flushAdmin(ctx context.Context) error {
	_, err := exec(ctx, h.admin, "SELECT pg_stat_force_next_flush()")
	return err
}

// rebuild recreates the fixture from nothing.
func (h *harness) rebuild(ctx context.Context) error {
	if _, err := exec(ctx, h.admin, rebuildSQL()); err != nil {
		return err
	}
	if err := h.flushAdmin(ctx); err != nil {
		return err
	}
	return h.loadFixture(ctx)
}

// loadFixture reads the fixture's fingerprint, relation map and bindings.
func (h *harness) loadFixture(ctx context.Context) error {
	rows, err := exec(ctx, h.super, fingerprintSQL)
	if err != nil {
		return err
	}
	h.fingerprint = rows[0][0]
	rows, err = exec(ctx, h.super, `
SELECT c.oid, rc.relname FROM pg_class c
  JOIN pg_class rc ON rc.oid = difftest.root_rel(c.oid)
 WHERE rc.relnamespace = 'pgmq'::regnamespace`)
	if err != nil {
		return err
	}
	h.relQueue = map[uint32]string{}
	for _, r := range rows {
		oid, _ := strconv.ParseUint(r[0], 10, 32)
		h.relQueue[uint32(oid)] = queueOfTable(r[1])
	}
	rows, err = exec(ctx, h.super, `SELECT b.queue_name, b.compiled_regex FROM pgmq.topic_bindings b ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	h.bindings = nil
	for _, r := range rows {
		re, err := regexp.Compile(r[1])
		if err != nil {
			return fmt.Errorf("binding regex %q: %w", r[1], err)
		}
		h.bindings = append(h.bindings, binding{queue: strings.ToLower(r[0]), re: re})
	}
	return nil
}

// restore brings the fixture back after a statement that committed: the
// messages when its structure is intact, everything otherwise.
func (h *harness) restore(ctx context.Context) (full bool, err error) {
	rows, err := exec(ctx, h.super, fingerprintSQL)
	if err != nil {
		return false, err
	}
	if rows[0][0] != h.fingerprint {
		return true, h.rebuild(ctx)
	}
	if _, err := exec(ctx, h.admin, refillSQL()); err != nil {
		return false, err
	}
	return false, h.flushAdmin(ctx)
}

// queueOfTable is the queue a pgmq table holds ("" for meta and the other
// tables of the extension).
func queueOfTable(rel string) string {
	if strings.HasPrefix(rel, "q_") || strings.HasPrefix(rel, "a_") {
		return rel[2:]
	}
	return ""
}

var callRE = regexp.MustCompile(`(?i)\bpgmq\s*\.\s*"?([a-z_][a-z0-9_]*)"?\s*\(`)

// loadClosure reads the bodies of pgmq's functions and computes, for each,
// the functions it may call (itself included): pgmq functions it names, and
// pg_partman's (any) when it looks pg_partman's schema up.
func (h *harness) loadClosure(ctx context.Context) error {
	rows, err := exec(ctx, h.super, `
SELECT p.proname, p.prosrc, p.prorettype = 'trigger'::regtype
  FROM pg_proc p WHERE p.pronamespace = 'pgmq'::regnamespace ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	edges := map[string]map[string]bool{}
	h.triggers = map[string]bool{}
	for _, r := range rows {
		name := "pgmq." + r[0]
		if edges[name] == nil {
			edges[name] = map[string]bool{}
		}
		if r[2] == "t" {
			h.triggers[name] = true
		}
	}
	for _, r := range rows {
		name := "pgmq." + r[0]
		for _, m := range callRE.FindAllStringSubmatch(r[1], -1) {
			callee := "pgmq." + strings.ToLower(m[1])
			if _, ok := edges[callee]; ok {
				edges[name][callee] = true
			}
		}
		if strings.Contains(r[1], "_get_pg_partman_schema") {
			edges[name][pgembed.PartmanSchema+".*"] = true
		}
	}
	h.closure = map[string]map[string]bool{}
	for name := range edges {
		seen := map[string]bool{}
		var visit func(string)
		visit = func(n string) {
			if seen[n] {
				return
			}
			seen[n] = true
			for c := range edges[n] {
				visit(c)
			}
		}
		visit(name)
		h.closure[name] = seen
	}
	if len(h.closure) < 40 {
		return fmt.Errorf("pgmq has only %d functions", len(h.closure))
	}
	return nil
}

// routing returns the queues a routing key reaches.
func (h *harness) routing(key string) []string {
	var out []string
	for _, b := range h.bindings {
		if b.re.MatchString(key) {
			out = append(out, b.queue)
		}
	}
	return out
}

// counters of one relation (table, index, sequence or toast table).
type counters struct {
	scans, ins, upd, del, blks int64
}

func (c counters) sub(o counters) counters {
	return counters{c.scans - o.scans, c.ins - o.ins, c.upd - o.upd, c.del - o.del, c.blks - o.blks}
}

func (c counters) zero() bool { return c == counters{} }

func (c counters) writes() bool { return c.ins != 0 || c.upd != 0 || c.del != 0 }

func (c counters) String() string {
	var parts []string
	for _, f := range []struct {
		n string
		v int64
	}{{"scans", c.scans}, {"ins", c.ins}, {"upd", c.upd}, {"del", c.del}, {"blks", c.blks}} {
		if f.v != 0 {
			parts = append(parts, fmt.Sprintf("%s%+d", f.n, f.v))
		}
	}
	return strings.Join(parts, " ")
}

type relStat struct {
	schema, name string
	c            counters
}

// snapshot is what the statistics say: calls of every function outside
// pg_catalog, and for every relation outside the system catalogs its scans
// (sequential for a table, index scans for an index), tuples inserted,
// updated and deleted (rolled back or not) and blocks fetched.
type snapshot struct {
	funcs map[string]int64 // schema.function -> calls (all overloads)
	rels  map[uint32]relStat
}

// snapshotSQL reads the counters behind pg_stat_user_functions,
// pg_stat_user_tables, pg_statio_user_tables and pg_statio_user_sequences
// directly, for the relations and functions that matter (the views compute
// every column of every relation, which costs more than the statement
// under test).
const snapshotSQL = `SELECT pg_stat_clear_snapshot();
SELECT 'f', p.oid::int8, n.nspname::text, p.proname::text, pg_stat_get_function_calls(p.oid), 0::int8, 0::int8, 0::int8, 0::int8
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND pg_stat_get_function_calls(p.oid) IS NOT NULL
UNION ALL
SELECT 'r', c.oid::int8, n.nspname::text, c.relname::text, pg_stat_get_numscans(c.oid),
       pg_stat_get_tuples_inserted(c.oid), pg_stat_get_tuples_updated(c.oid), pg_stat_get_tuples_deleted(c.oid),
       pg_stat_get_blocks_fetched(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`

func (h *harness) snapshot(ctx context.Context) (snapshot, error) {
	rows, err := exec(ctx, h.reader, snapshotSQL)
	if err != nil {
		return snapshot{}, err
	}
	s := snapshot{funcs: map[string]int64{}, rels: map[uint32]relStat{}}
	for _, r := range rows {
		var n [5]int64
		for i := range n {
			n[i], _ = strconv.ParseInt(r[4+i], 10, 64)
		}
		oid, _ := strconv.ParseUint(r[1], 10, 32)
		if r[0] == "f" {
			s.funcs[r[2]+"."+r[3]] += n[0]
			continue
		}
		s.rels[uint32(oid)] = relStat{schema: r[2], name: r[3], c: counters{n[0], n[1], n[2], n[3], n[4]}}
	}
	return s, nil
}

// settle waits until the statistics show every tick so far (each statement
// session ticks, then forces a flush), and returns them.
func (h *harness) settle(ctx context.Context) (snapshot, error) {
	deadline := time.Now().Add(flushWait)
	wait := time.Millisecond
	for {
		s, err := h.snapshot(ctx)
		if err != nil {
			return s, err
		}
		if s.funcs["difftest.tick"] >= h.ticks {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("statistics show %d ticks after %v, want %d", s.funcs["difftest.tick"], flushWait, h.ticks)
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// setting is a session setting a statement runs under.
type setting struct {
	name string
	sql  string // "" for none
	// inert settings change nothing the router or pgmq read: a statement
	// that runs under every setting runs under one of them, in turn.
	inert bool
	// parse settings change how the server reads text or resolves names.
	parse bool
}

// sessionSettings are the settings a grant-limited token may change, set on
// the statement's session before it runs; and, last, settings the spec
// refuses (the router's SessionDenial or the limited allowlist must refuse
// them: while it does not, statements run under them too).
var sessionSettings = []setting{
	{name: "default"},
	{name: "DateStyle", sql: "SET DateStyle = 'SQL, DMY'"},
	{name: "TimeZone", sql: "SET TimeZone = 'America/St_Johns'"},
	{name: "IntervalStyle", sql: "SET IntervalStyle = 'iso_8601'"},
	{name: "extra_float_digits", sql: "SET extra_float_digits = 3"},
	{name: "bytea_output", sql: "SET bytea_output = 'escape'"},
	{name: "search_path=pgmq,public", sql: "SET search_path = pgmq, public", parse: true},
	{name: `search_path=pg_catalog,pgmq,"$user"`, sql: `SET search_path = pg_catalog, pgmq, "$user"`, parse: true},
	{name: "application_name", sql: "SET application_name = 'differential'", inert: true},
	{name: "client_encoding=UTF8", sql: "SET client_encoding = 'UTF8'", parse: true},
	{name: "standard_conforming_strings=on", sql: "SET standard_conforming_strings = on", parse: true},
	{name: "statement_timeout", sql: "SET statement_timeout = '4s'", inert: true},
	{name: "lock_timeout", sql: "SET lock_timeout = '3s'", inert: true},
	{name: "idle_in_transaction_session_timeout", sql: "SET idle_in_transaction_session_timeout = '60s'", inert: true},
	// refused by the spec (issue 11, finding 1; pg_catalog after pgmq
	// would let pgmq's objects shadow the builtins the router vouches for)
	{name: "standard_conforming_strings=off", sql: "SET standard_conforming_strings = off", parse: true},
	{name: "client_encoding=SJIS", sql: "SET client_encoding = 'SJIS'", parse: true},
	{name: "search_path=pgmq,pg_catalog", sql: "SET search_path = pgmq, pg_catalog", parse: true},
}

// session is one fresh connection as the default role, with the notices it
// received.
type session struct {
	pc      *pgconn.PgConn
	mu      sync.Mutex
	notices []string
}

func (s *session) takeNotices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notices
}

type dialed struct {
	s   *session
	err error
}

// startDialer keeps two fresh sessions ready, so that a backend's start
// overlaps the previous statement's run. (An idle new session touches no
// table and calls no function, so it does not disturb the statistics.)
func (h *harness) startDialer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan dialed, 2)
	h.sessions = ch
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			s, err := h.dial(ctx)
			select {
			case ch <- dialed{s, err}:
			case <-ctx.Done():
				if s != nil {
					s.pc.Close(context.Background())
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		for d := range ch {
			if d.s != nil {
				d.s.pc.Close(context.Background())
			}
		}
		<-done
	})
}

func (h *harness) dial(ctx context.Context) (*session, error) {
	cfg, err := pgconn.ParseConfig(h.cluster.ConnString(h.cluster.DefaultRole(), h.db) + " statement_timeout=" + statementTimeout)
	if err != nil {
		return nil, err
	}
	s := &session{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		s.mu.Lock()
		s.notices = append(s.notices, n.Message)
		s.mu.Unlock()
	}
	s.pc, err = pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (h *harness) session(ctx context.Context) (*session, error) {
	select {
	case d, ok := <-h.sessions:
		if !ok {
			return nil, fmt.Errorf("the dialer stopped")
		}
		return d.s, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// nameParamOIDs declares text the parameters that name a queue, routing
// key or pattern, as the proxy does for grant-limited tokens (proxy
// pinNameParams): Postgres would otherwise type such a parameter at its
// first use, which may be a cast to char(n) elsewhere in the statement.
func nameParamOIDs(cls *router.Statement) []uint32 {
	var oids []uint32
	for _, n := range cls.NameParams {
		for len(oids) < n {
			oids = append(oids, 0)
		}
		oids[n-1] = 25 // text
	}
	return oids
}

// outcome is what one run did in Postgres.
type outcome struct {
	denied  error    // the router refused (nothing ran)
	err     string   // the statement's error, "" when it completed
	ended   bool     // the statement ended the harness's transaction (so it may have committed)
	params  []string // the bound values, for the report
	notices []string
}

var paramRE = regexp.MustCompile(`\$[0-9]`)

// run runs sql for a limited token on a fresh connection as the default
// role: the session setting first, then BEGIN, the statement, ROLLBACK; then
// the sentinel tick and a forced statistics flush. With qv != "", the
// statement is described first and its parameters bound with unspecified
// types, as drivers do, except those naming a queue, which are declared text
// as the proxy declares them (text parameters to qv, others to fixed values
// of their type); authorize sees exactly those values and may refuse, in which
// case nothing runs.
func (h *harness) run(ctx context.Context, sql string, set setting, qv string, authorize func(router.Params) error) (out outcome, err error) {
	none := router.Params(func(int) (string, bool) { return "", false })
	all := router.Params(func(int) (string, bool) { return qv, true })
	if qv == "" {
		if out.denied = authorize(none); out.denied != nil {
			return out, nil
		}
	} else if out.denied = authorize(all); out.denied != nil {
		// Refused with the queue value for every parameter: refused with
		// the bound values too (only text parameters can name a queue).
		out.params = []string{"every $n " + quoteLit(qv)}
		return out, nil
	}
	s, err := h.session(ctx)
	if err != nil {
		return out, err
	}
	pc := s.pc
	defer pc.Close(context.Background())
	if set.sql != "" {
		if _, err := exec(ctx, pc, set.sql); err != nil {
			return out, fmt.Errorf("%s: %w", set.sql, err)
		}
	}
	var values [][]byte
	var oids []uint32
	usePrepared := false
	if qv != "" {
		params := all
		oids = nameParamOIDs(router.Classify(sql))
		if desc, perr := pc.Prepare(ctx, "", sql, oids); perr == nil {
			usePrepared = true
			values = make([][]byte, len(desc.ParamOIDs))
			for i, oid := range desc.ParamOIDs {
				if v, ok := valueFor(oid, qv); ok {
					values[i] = []byte(v)
				}
			}
			params = func(n int) (string, bool) {
				if n < 1 || n > len(values) || values[n-1] == nil {
					return "", false
				}
				return string(values[n-1]), true
			}
			for i, v := range values {
				if v == nil {
					out.params = append(out.params, fmt.Sprintf("$%d=NULL", i+1))
				} else {
					out.params = append(out.params, fmt.Sprintf("$%d=%s", i+1, quoteLit(string(v))))
				}
			}
		} else {
			out.params = []string{"every $n " + quoteLit(qv) + " (not preparable: " + firstLine(perr.Error()) + "; sent as a simple query)"}
		}
		if out.denied = authorize(params); out.denied != nil {
			return out, nil
		}
	}
	if _, err := exec(ctx, pc, "BEGIN"); err != nil {
		return out, err
	}
	if usePrepared {
		res := pc.ExecParams(ctx, sql, values, oids, nil, nil).Read()
		if res.Err != nil {
			out.err = res.Err.Error()
		}
	} else {
		results, rerr := pc.Exec(ctx, sql).ReadAll()
		if rerr != nil {
			out.err = rerr.Error()
		}
		for _, r := range results {
			if r.Err != nil && out.err == "" {
				out.err = r.Err.Error()
			}
		}
	}
	if pc.IsClosed() {
		return out, fmt.Errorf("the statement's connection broke: %s", out.err)
	}
	out.ended = pc.TxStatus() == 'I'
	// One ROLLBACK ends whatever transaction block the statement left open;
	// the tick and the forced flush then run outside any block, so the
	// statistics are flushed before the server says it is ready.
	if _, err := exec(ctx, pc, "ROLLBACK; SELECT difftest.tick(), pg_stat_force_next_flush()"); err != nil {
		return out, fmt.Errorf("rollback and tick: %w", err)
	}
	if pc.TxStatus() != 'I' {
		return out, fmt.Errorf("the session stays in a transaction (status %c)", pc.TxStatus())
	}
	h.ticks++
	out.notices = s.takeNotices()
	return out, nil
}

// valueFor is the text a parameter of type oid is bound to; text types get
// the queue value, unknown types NULL.
func valueFor(oid uint32, qv string) (string, bool) {
	switch oid {
	case 25, 1043, 1042, 19, 705, 0: // text, varchar, bpchar, name, unknown
		return qv, true
	case 3802, 114: // jsonb, json
		return `{"k":1}`, true
	case 3807: // jsonb[]
		return `{"{\"k\":1}"}`, true
	case 20, 21, 23, 26, 700, 701, 1700: // integers, oid, floats, numeric
		return "1", true
	case 1016, 1007, 1005, 1028: // int8[], int4[], int2[], oid[]
		return "{1}", true
	case 1009: // text[]
		return "{" + qv + "}", true
	case 16:
		return "false", true
	case 1184, 1114:
		return "2030-01-02 03:04:05+00", true
	case 1186:
		return "1 second", true
	}
	return "", false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// ddlQueues reads the event triggers' notices: the queues whose tables
// (or their indexes, sequences, triggers, row types, partitions) DDL
// changed, and relations outside pgmq so changed.
func (h *harness) ddlQueues(notices []string) (queues map[string][]string, other map[string]string) {
	queues, other = map[string][]string{}, map[string]string{}
	for _, n := range notices {
		f := strings.Split(n, "|")
		switch {
		case len(f) == 4 && f[0] == "difftest-ddl":
			oid, _ := strconv.ParseUint(f[1], 10, 32)
			schema, rel, _ := strings.Cut(f[3], ".")
			q, known := h.relQueue[uint32(oid)]
			if !known && schema == "pgmq" {
				q = queueOfTable(rel)
			}
			what := "DDL " + f[2] + " on " + f[3]
			switch {
			case q != "":
				queues[q] = append(queues[q], what)
			case schema != "pgmq" && schema != "pg_toast" && !strings.HasPrefix(schema, "pg_temp"):
				other[f[3]] = what
			}
		case len(f) >= 3 && f[0] == "difftest-drop":
			oid, _ := strconv.ParseUint(f[1], 10, 32)
			kind, names := f[2], f[3:]
			if kind == "type" && len(names) == 1 {
				// a type's address is its qualified name in one piece
				names = strings.SplitN(names[0], ".", 2)
			}
			schema, q := "", h.relQueue[uint32(oid)]
			if len(names) > 0 {
				schema = names[0]
			}
			if q == "" && len(names) >= 2 && schema == "pgmq" {
				switch kind {
				case "table", "type", "trigger", "table constraint":
					// a table, its row type (and array type), or an
					// object on a table
					q = queueOfTable(strings.TrimSuffix(names[1], "[]"))
				}
			}
			what := "DROP " + kind + " " + strings.Join(names, ".")
			switch {
			case q != "":
				queues[q] = append(queues[q], what)
			case schema != "" && schema != "pgmq" && schema != "pg_toast" && !strings.HasPrefix(schema, "pg_temp"):
				other[strings.Join(names, ".")] = what
			}
		}
	}
	return queues, other
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
