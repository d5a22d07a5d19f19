package router

import (
	"reflect"
	"strings"
	"testing"

	"mqstack/auth"
)

func lit(s string) Arg { return Arg{Literal: s} }
func param(n int) Arg  { return Arg{Param: n} }
func q(fn string, op auth.Op, a Arg) Call {
	return Call{Function: fn, Op: op, Scope: ScopeQueue, Target: a}
}

// send is a send call with its message argument.
func send(a, msg Arg) Call {
	return Call{Function: "send", Op: auth.OpSend, Scope: ScopeQueue, Target: a, Message: msg}
}

// Statements real clients send, and what the router must make of them.
var classifyCases = []struct {
	name      string
	sql       string
	kinds     []Kind
	calls     []Call
	uncertain string // substring of the reason; "" = certain
	pins      []PinCause
}{
	// pgmq calls as psql users, pgmq-py, pgmq-js and pgx send them
	{"psql send", `SELECT pgmq.send('orders', '{"a":1}')`, []Kind{KindPgmq}, []Call{send(lit("orders"), lit(`{"a":1}`))}, "", nil},
	{"select star read", `select * from pgmq.read('orders', 30, 1)`, []Kind{KindPgmq}, []Call{q("read", auth.OpRead, lit("orders"))}, "", nil},
	{"named params", `SELECT * FROM pgmq.read(queue_name => $1, vt => $2, qty => $3)`, []Kind{KindPgmq}, []Call{q("read", auth.OpRead, param(1))}, "", nil},
	{"named out of order", `SELECT * FROM pgmq.read(vt => 30, qty => 1, queue_name => 'Jobs')`, []Kind{KindPgmq}, []Call{q("read", auth.OpRead, lit("Jobs"))}, "", nil},
	{"old named notation", `SELECT pgmq.send(queue_name := 'x', msg := '{}')`, []Kind{KindPgmq}, []Call{send(lit("x"), lit("{}"))}, "", nil},
	{"python client", `select * from pgmq.send(queue_name=>$1::text, msg=>$2::jsonb, delay=>$3::integer);`, []Kind{KindPgmq}, []Call{send(param(1), param(2))}, "", nil},
	{"casts", `SELECT pgmq.send($1::text, $2::jsonb)`, []Kind{KindPgmq}, []Call{send(param(1), param(2))}, "", nil},
	{"alias and columns", `SELECT r.msg_id, r.message FROM pgmq.read('q', 30, 10) AS r WHERE r.read_ct < 5`, []Kind{KindPgmq}, []Call{q("read", auth.OpRead, lit("q"))}, "", nil},
	{"archive batch", `SELECT pgmq.archive('q', ARRAY[1,2,3]::bigint[])`, []Kind{KindPgmq}, []Call{q("archive", auth.OpArchive, lit("q"))}, "", nil},
	{"pop", `SELECT * FROM pgmq.pop('q')`, []Kind{KindPgmq}, []Call{q("pop", auth.OpPop, lit("q"))}, "", nil},
	{"create", `SELECT pgmq.create($1)`, []Kind{KindPgmq}, []Call{q("create", auth.OpCreate, param(1))}, "", nil},
	{"unqualified", `SELECT send('orders', '{}')`, []Kind{KindPgmq}, []Call{send(lit("orders"), lit("{}"))}, "", nil},
	{"null queue", `SELECT pgmq.send(NULL, '{}')`, []Kind{KindPgmq}, []Call{send(Arg{Null: true}, lit("{}"))}, "", nil},
	{"bind topic", `SELECT pgmq.bind_topic('logs.*', 'q1')`, []Kind{KindPgmq}, []Call{{Function: "bind_topic", Op: auth.OpCreate, Scope: ScopeQueue, Target: lit("q1"), Pattern: lit("logs.*")}}, "", nil},
	{"convert archive", `SELECT pgmq.convert_archive_partitioned('q')`, []Kind{KindPgmq}, []Call{q("convert_archive_partitioned", auth.OpCreate, lit("q"))}, "", nil},
	{"send topic", `select pgmq.send_topic('logs.error', '{}')`, []Kind{KindPgmq}, []Call{{Function: "send_topic", Op: auth.OpPublish, Scope: ScopeTopic, Target: lit("logs.error"), Message: lit("{}")}}, "", nil},
	{"metrics all", `SELECT * FROM pgmq.metrics_all()`, []Kind{KindPgmq}, []Call{{Function: "metrics_all", Op: auth.OpList, Scope: ScopeListing}}, "", nil},
	{"bindings of one queue", `select * from pgmq.list_topic_bindings('q')`, []Kind{KindPgmq}, []Call{q("list_topic_bindings", auth.OpList, lit("q"))}, "", nil},
	{"all bindings", `select * from pgmq.list_topic_bindings()`, []Kind{KindPgmq}, []Call{{Function: "list_topic_bindings", Op: auth.OpList, Scope: ScopeListing}}, "", nil},
	{"fifo all", `SELECT pgmq.create_fifo_indexes_all()`, []Kind{KindPgmq}, []Call{{Function: "create_fifo_indexes_all", Op: auth.OpCreate, Scope: ScopeAllQueues}}, "", nil},
	{"pure helper", `SELECT pgmq.validate_routing_key('a.b')`, []Kind{KindPgmq}, []Call{{Function: "validate_routing_key", Scope: ScopePure}}, "", nil},
	{"count of read", `SELECT count(*) FROM pgmq.read('q', 30, 5)`, []Kind{KindPgmq}, []Call{q("read", auth.OpRead, lit("q"))}, "", nil},
	{"multi statement", `BEGIN; SELECT pgmq.send('a','{}'); SELECT pgmq.send('b','{}'); COMMIT`,
		[]Kind{KindTransaction, KindPgmq, KindPgmq, KindTransaction}, []Call{send(lit("a"), lit("{}")), send(lit("b"), lit("{}"))}, "", nil},

	// transaction control, settings, resets
	{"begin", `BEGIN ISOLATION LEVEL SERIALIZABLE`, []Kind{KindTransaction}, nil, "", nil},
	{"savepoint", `SAVEPOINT a`, []Kind{KindTransaction}, nil, "", nil},
	{"set tx", `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`, []Kind{KindSet}, nil, "", nil},
	{"jdbc set", `SET extra_float_digits = 3`, []Kind{KindSet}, nil, "", nil},
	{"set app name", `SET application_name = 'worker'`, []Kind{KindSet}, nil, "", nil},
	{"session set", `SET statement_timeout = 5000`, []Kind{KindSet}, nil, "", nil},
	{"set local", `SET LOCAL statement_timeout = 5000`, []Kind{KindSet}, nil, "", nil},
	{"show", `SHOW TimeZone`, []Kind{KindShow}, nil, "", nil},
	{"discard", `DISCARD ALL`, []Kind{KindDiscard}, nil, "", nil},
	{"deallocate", `DEALLOCATE ALL`, []Kind{KindDeallocate}, nil, "", nil},
	{"reset all", `RESET ALL`, []Kind{KindSet}, nil, "", nil},
	{"pool reset string", `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`,
		[]Kind{KindAdvisoryUnlockAll, KindClose, KindUnlisten, KindSet}, nil, "", nil},
	{"create extension", `CREATE EXTENSION IF NOT EXISTS pgmq`, []Kind{KindCreateExtension}, nil, "", nil},
	{"create extension cascade", `CREATE EXTENSION IF NOT EXISTS pgmq CASCADE`, []Kind{KindCreateExtension}, nil, "", nil},
	{"listen", `LISTEN "pgmq.q_orders.INSERT"`, []Kind{KindListen}, nil, "", []PinCause{PinListen}},
	{"empty", ``, []Kind{KindEmpty}, nil, "", nil},
	{"comment only", `-- nothing here`, []Kind{KindEmpty}, nil, "", nil},

	// constants and catalog reads drivers send
	{"select 1", `SELECT 1`, []Kind{KindConstant}, nil, "", nil},
	{"version", `select version()`, []Kind{KindConstant}, nil, "", nil},
	{"regtype", `select 'pgmq.message_record'::regtype::oid`, []Kind{KindConstant}, nil, "", nil},
	{"psql describe", `SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(foo)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3`, []Kind{KindCatalog}, nil, "", nil},
	{"pgx type load", `select t.oid, t.typname, t.typtype, t.typbasetype from pg_type t where t.oid = any($1)`, []Kind{KindCatalog}, nil, "", nil},
	{"recursive cte on catalog", `WITH RECURSIVE x(oid) AS (SELECT oid FROM pg_type WHERE oid = $1 UNION SELECT t.typelem FROM pg_type t JOIN x ON t.oid = x.oid) SELECT * FROM x`, []Kind{KindCatalog}, nil, "", nil},
	{"information schema", `SELECT table_name FROM information_schema.tables`, []Kind{KindCatalog}, nil, "", nil},

	// what the grant check must refuse
	{"set role", `SET ROLE postgres`, []Kind{KindOther}, nil, "role", nil},
	{"session authorization", `SET SESSION AUTHORIZATION postgres`, []Kind{KindOther}, nil, "role", nil},
	{"set_config role", `SELECT set_config('role', 'postgres', false)`, []Kind{KindConstant}, nil, "set_config", []PinCause{PinSessionSet}},
	{"create extension plain", `CREATE EXTENSION pgmq`, []Kind{KindOther}, nil, "CREATE EXTENSION", nil},
	{"do block", `DO $$ BEGIN PERFORM pgmq.send('q', '{}'); END $$`, []Kind{KindOther}, nil, "DO", nil},
	{"dynamic queue", `SELECT pgmq.send(s.q, '{}') FROM (SELECT 'orders' AS q) s`, []Kind{KindPgmq}, nil, "computed at run time", nil},
	{"concatenated queue", `SELECT pgmq.send('orders' || '_x', '{}')`, []Kind{KindPgmq}, nil, "computed at run time", nil},
	{"raw table", `SELECT * FROM pgmq.q_orders`, []Kind{KindConstant}, nil, "directly", nil},
	{"raw meta", `SELECT * FROM pgmq.meta`, []Kind{KindConstant}, nil, "directly", nil},
	{"wrapper function", `SELECT myschema.wrap('orders')`, []Kind{KindConstant}, nil, "may do anything", nil},
	{"dynamic sql function", `SELECT query_to_xml('select pgmq.purge_queue(''q'')', true, true, '')`, []Kind{KindConstant}, nil, "query_to_xml", nil},
	{"internal pgmq", `SELECT pgmq._send_batch('q', ARRAY['{}'::jsonb], NULL, now())`, []Kind{KindConstant}, nil, "internal", nil},
	{"modifying cte", `WITH x AS (DELETE FROM pgmq.q_orders RETURNING *) SELECT * FROM x`, []Kind{KindConstant}, nil, "", nil},
	{"user table", `SELECT * FROM accounts`, []Kind{KindConstant}, nil, "accounts", nil},
	{"insert", `INSERT INTO t VALUES (1)`, []Kind{KindOther}, nil, "INSERT", nil},
	{"select into", `SELECT 1 INTO newtable`, []Kind{KindConstant}, nil, "SELECT INTO", nil},
	{"explain", `EXPLAIN SELECT pgmq.send('q', '{}')`, []Kind{KindOther}, nil, "EXPLAIN", nil},
	{"missing queue arg", `SELECT pgmq.send(msg => '{}')`, []Kind{KindPgmq}, nil, "without its queue_name", nil},
	{"temp table", `CREATE TEMP TABLE t (a int)`, []Kind{KindOther}, nil, "CREATE TABLE", []PinCause{PinTempTable}},
	{"temp table dropped at commit", `CREATE TEMP TABLE t (a int) ON COMMIT DROP`, []Kind{KindOther}, nil, "CREATE TABLE", nil},
	{"temp table as, dropped at commit", `CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1`, []Kind{KindOther}, nil, "CREATE TABLE AS", nil},
	{"set_config local", `SELECT set_config('statement_timeout', '5s', true)`, []Kind{KindConstant}, nil, "set_config", nil},
	{"sql prepare", `PREPARE p AS SELECT 1`, []Kind{KindOther}, nil, "PREPARE", []PinCause{PinSQLPrepare}},
	{"hold cursor", `DECLARE c CURSOR WITH HOLD FOR SELECT 1`, []Kind{KindOther}, nil, "CURSOR", []PinCause{PinHoldCursor}},
	{"plain cursor", `DECLARE c CURSOR FOR SELECT 1`, []Kind{KindOther}, nil, "CURSOR", nil},
	{"advisory lock", `SELECT pg_advisory_lock(1)`, []Kind{KindConstant}, nil, "session lock", []PinCause{PinAdvisoryLock}},
	{"notify", `NOTIFY "pgmq.q_orders.INSERT"`, []Kind{KindOther}, nil, "NOTIFY", nil},
	{"pg_notify", `SELECT pg_notify('pgmq.q_orders.INSERT', '')`, []Kind{KindConstant}, nil, "pg_notify", nil},
	{"garbage", `SELEC pgmq.send('q')`, []Kind{KindOther}, nil, "does not parse", nil},
}

func TestClassify(t *testing.T) {
	for _, c := range classifyCases {
		t.Run(c.name, func(t *testing.T) {
			st := Classify(c.sql)
			var kinds []Kind
			for _, p := range st.Parts {
				kinds = append(kinds, p.Kind)
			}
			if !reflect.DeepEqual(kinds, c.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, c.kinds)
			}
			got := st.Uncertain()
			switch {
			case c.uncertain == "" && got != "" && !strings.Contains(c.name, "modifying"):
				t.Errorf("uncertain %q, want certain", got)
			case c.uncertain != "" && !strings.Contains(got, c.uncertain):
				t.Errorf("uncertain %q, want it to mention %q", got, c.uncertain)
			}
			if strings.Contains(c.name, "modifying") && got == "" {
				t.Errorf("a data-modifying CTE must be uncertain")
			}
			if c.uncertain == "" && !reflect.DeepEqual(st.Calls(), c.calls) {
				t.Errorf("calls = %+v, want %+v", st.Calls(), c.calls)
			}
			if !reflect.DeepEqual(st.Pins(), c.pins) {
				t.Errorf("pins = %v, want %v", st.Pins(), c.pins)
			}
		})
	}
}

func TestClassifyDetails(t *testing.T) {
	st := Classify(`LISTEN "pgmq.q_Orders.INSERT"`)
	if st.Parts[0].Channel != "pgmq.q_Orders.INSERT" {
		t.Errorf("channel = %q", st.Parts[0].Channel)
	}
	st = Classify(`UNLISTEN *`)
	if st.Parts[0].Channel != "*" {
		t.Errorf("unlisten channel = %q", st.Parts[0].Channel)
	}
	st = Classify(`SET LOCAL work_mem = '8MB'`)
	if !st.Parts[0].Local || st.Parts[0].Setting != "work_mem" {
		t.Errorf("set local: %+v", st.Parts[0])
	}
}

func TestRouterCache(t *testing.T) {
	r := New(16)
	a := r.Classify("SELECT pgmq.send('a', '{}')")
	b := r.Classify("SELECT pgmq.send('a', '{}')")
	if a != b {
		t.Fatal("second lookup did not come from the cache")
	}
	if h, m := r.CacheStats(); h != 1 || m != 1 {
		t.Fatalf("hits %d misses %d", h, m)
	}
	// Filling past two generations drops the oldest entries but stays bounded.
	for i := 0; i < 100; i++ {
		r.Classify("SELECT " + strings.Repeat("1+", i) + "1")
	}
	r.mu.RLock()
	n := len(r.young) + len(r.old)
	r.mu.RUnlock()
	if n > 32 {
		t.Fatalf("cache holds %d entries, bound is 32", n)
	}
}

func BenchmarkClassifyCached(b *testing.B) {
	r := New(1024)
	sql := `SELECT * FROM pgmq.read(queue_name => $1, vt => $2, qty => $3)`
	r.Classify(sql)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Classify(sql)
	}
}

func BenchmarkClassifyParse(b *testing.B) {
	sql := `SELECT * FROM pgmq.read(queue_name => $1, vt => $2, qty => $3)`
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Classify(sql)
	}
}

// SELECT pg_listening_channels() alone is its own kind, named by its
// column; any other use of the function is only flagged.
func TestClassifyListeningChannels(t *testing.T) {
	for _, tc := range []struct {
		sql    string
		alone  bool
		column string
	}{
		{"SELECT pg_listening_channels()", true, "pg_listening_channels"},
		{"select pg_catalog.pg_listening_channels() AS ch", true, "ch"},
		{"SELECT pg_listening_channels() ORDER BY 1", false, ""},
		{"SELECT count(*) FROM pg_listening_channels()", false, ""},
		{"SELECT pg_listening_channels(), 1", false, ""},
		{"SELECT x FROM pg_listening_channels() x WHERE x LIKE 'a%'", false, ""},
	} {
		st := Classify(tc.sql)
		if !st.ReadsListening {
			t.Errorf("%s: ReadsListening false", tc.sql)
		}
		p := st.Parts[0]
		if alone := p.Kind == KindListeningChannels; alone != tc.alone || alone && p.Name != tc.column {
			t.Errorf("%s: kind %v column %q, want alone=%v column %q", tc.sql, p.Kind, p.Name, tc.alone, tc.column)
		}
	}
	if Classify("SELECT 'pg_listening_channels()'").ReadsListening {
		t.Error("a string literal reads listening channels")
	}
}
