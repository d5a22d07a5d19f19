package proxy

import (
	"testing"

	"mqstack/router"
)

// Pins come from the router's parse; the lexical scan only decides for
// statements the router leaves as "other" or uncertain.
func TestPinOf(t *testing.T) {
	r := router.New(64)
	for _, tc := range []struct{ sql, pin string }{
		{"SELECT 1", ""},
		{"SELECT pgmq.send('q', '{}')", ""},
		{"SELECT * FROM pgmq.read($1, 30, 1)", ""},
		{"SELECT 'LISTEN x'", ""},
		{"listen foo", pinListen},
		{"SELECT 1; LISTEN x", pinListen},
		{`LISTEN "pgmq.q_orders.INSERT"`, pinListen},
		{"SET work_mem = '4MB'", pinSet},
		{"SET LOCAL work_mem = '4MB'", ""},
		{"SET application_name = 'x'", ""},
		{"set time zone 'UTC'", ""},
		{"SET NAMES 'UTF8'", ""},
		{"SET search_path = mq_test", pinSet}, // the proxy does not replay search_path
		{"RESET ALL", pinSet},
		{"RESET application_name", ""},
		{"RESET statement_timeout", pinSet},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ""},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", pinSet},
		{"SET ROLE bob", pinSet},
		{"SET SESSION AUTHORIZATION bob", pinSet},
		{"SELECT set_config('search_path', 'x', false)", pinSet},
		{"SELECT set_config('search_path', 'x', true)", ""},
		{"CREATE TEMP TABLE t (i int)", pinTempTable},
		{"CREATE TEMPORARY TABLE t (i int) ON COMMIT DROP", ""},
		{"SELECT 1 INTO TEMP t", pinTempTable},
		{"SELECT pg_advisory_lock(1)", pinAdvisoryLock},
		{"SELECT pg_advisory_xact_lock(1)", ""},
		{"PREPARE p AS SELECT 1", pinPrepare},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", pinHoldCursor},
		{"DECLARE c CURSOR FOR SELECT 1", ""},
		{"LOAD 'auto_explain'", pinSet},
		{"INSERT INTO t VALUES (1)", ""},
		{"SELEC 1", ""},
	} {
		if got := pinOf(r.Classify(tc.sql), tc.sql); got != tc.pin {
			t.Errorf("pinOf(%q) = %q, want %q", tc.sql, got, tc.pin)
		}
	}
	for _, tc := range []struct {
		sql       string
		intercept interceptKind
		name      string
	}{
		{"DEALLOCATE foo", interceptDeallocate, "foo"},
		{"DEALLOCATE ALL", interceptDeallocateAll, ""},
		{"DISCARD ALL", interceptDiscardAll, ""},
		{"DISCARD PLANS", interceptNone, ""},
		{"DISCARD ALL; SELECT 1", interceptNone, ""},
		{"SELECT 'DISCARD ALL'", interceptNone, ""},
	} {
		got := interceptOf(r.Classify(tc.sql), tc.sql)
		if got.intercept != tc.intercept || got.name != tc.name {
			t.Errorf("interceptOf(%q) = %+v", tc.sql, got)
		}
	}
}

// A classified pgmq call costs no allocation to pin-check.
func TestPinOfAllocs(t *testing.T) {
	r := router.New(64)
	sql := "SELECT * FROM pgmq.read(queue_name => $1, vt => $2, qty => $3)"
	st := r.Classify(sql)
	if n := testing.AllocsPerRun(100, func() { pinOf(r.Classify(sql), sql) }); n != 0 {
		t.Fatalf("%v allocations per classification and pin check", n)
	}
	_ = st
}
