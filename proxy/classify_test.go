package proxy

import (
	"testing"

	"mqstack/router"
)

// Pins come from the router's parse and the proxy's list of replayed
// settings.
func TestPinOf(t *testing.T) {
	r := router.New(64)
	const (
		listen = string(router.PinListen)
		set    = string(router.PinSessionSet)
	)
	for _, tc := range []struct{ sql, pin string }{
		{"SELECT 1", ""},
		{"SELECT pgmq.send('q', '{}')", ""},
		{"SELECT * FROM pgmq.read($1, 30, 1)", ""},
		{"SELECT 'LISTEN x'", ""},
		{"listen foo", listen},
		{"SELECT 1; LISTEN x", listen},
		{`LISTEN "pgmq.q_orders.INSERT"`, listen},
		{"SET work_mem = '4MB'", set},
		{"SET LOCAL work_mem = '4MB'", ""},
		{"SET application_name = 'x'", ""},
		{"set time zone 'UTC'", ""},
		{"SET NAMES 'UTF8'", ""},
		{"SET search_path = mq_test", ""}, // replayed: wanted, and the backend reset after
		{"SET statement_timeout = 5000", ""},
		{"RESET ALL", ""},
		{"RESET application_name", ""},
		{"RESET statement_timeout", ""},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ""},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", set},
		{"SELECT set_config('search_path', 'x', false)", set},
		{"SELECT set_config('search_path', 'x', true)", ""},
		{"CREATE TEMP TABLE t (i int)", string(router.PinTempTable)},
		{"CREATE TEMPORARY TABLE t (i int) ON COMMIT DROP", ""},
		{"CREATE TEMP VIEW v AS SELECT 1", string(router.PinTempTable)},
		{"SELECT 1 INTO TEMP t", string(router.PinTempTable)},
		{"SELECT pg_advisory_lock(1)", string(router.PinAdvisoryLock)},
		{"INSERT INTO t SELECT pg_advisory_lock(1)", string(router.PinAdvisoryLock)},
		{"SELECT pg_advisory_xact_lock(1)", ""},
		{"PREPARE p AS SELECT 1", string(router.PinSQLPrepare)},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", string(router.PinHoldCursor)},
		{"DECLARE c CURSOR FOR SELECT 1", ""},
		{"LOAD 'auto_explain'", set},
		{"INSERT INTO t VALUES (1)", ""},
		{"SELEC 1", ""},
	} {
		if got := pinOf(r.Classify(tc.sql)); got != tc.pin {
			t.Errorf("pinOf(%q) = %q, want %q", tc.sql, got, tc.pin)
		}
	}
	for _, tc := range []struct {
		sql    string
		taints bool
	}{
		{"DO $$BEGIN PERFORM set_config('search_path', 'public', false); END$$", true},
		{"CALL p()", true},
		{"SELECT myschema.f()", true},
		{"INSERT INTO t VALUES (evil())", true},
		{"SELECEC", true},
		{"SELECT now()", false},
		{"SELECT pgmq.send('q', '{}')", false},
		{"INSERT INTO t VALUES (1)", false},
	} {
		if got := r.Classify(tc.sql).Taints; got != tc.taints {
			t.Errorf("Taints(%q) = %v, want %v", tc.sql, got, tc.taints)
		}
	}
}

// A classified pgmq call costs no allocation to pin-check.
func TestPinOfAllocs(t *testing.T) {
	r := router.New(64)
	sql := "SELECT * FROM pgmq.read(queue_name => $1, vt => $2, qty => $3)"
	st := r.Classify(sql)
	if n := testing.AllocsPerRun(100, func() { pinOf(r.Classify(sql)) }); n != 0 {
		t.Fatalf("%v allocations per classification and pin check", n)
	}
	_ = st
}
