package router

import "testing"

func TestShapeKey(t *testing.T) {
	for _, tc := range []struct {
		sql, key string // key "" means: not shaped, the exact text is the key
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 4242;", "SELECT abalance FROM pgbench_accounts WHERE aid = 0;"},
		{"SELECT 1", "SELECT 0"},
		{"SELECT 1.5, .5, 1e10, 2E-3, 7.", "SELECT 0, 0, 0, 0, 0"},
		{"SELECT * FROM t1 WHERE a = $1 LIMIT 10", "SELECT * FROM t1 WHERE a = $1 LIMIT 0"},
		{"SELECT 'it''s 42', \"col 7\" FROM t WHERE x = 3", "SELECT 'it''s 42', \"col 7\" FROM t WHERE x = 0"},
		{"SELECT 1 -- 99\n, 2", "SELECT 0 -- 99\n, 0"},
		{"SELECT pg_advisory_lock(42)", "SELECT pg_advisory_lock(0)"},
		// Not shaped: no number, pgmq names, or text the scanner does not follow.
		{"SELECT now()", ""},
		{"SELECT $1", ""},
		{"SELECT pgmq.send('q', '{}', 5)", ""},
		{"SELECT * FROM send(1, 2)", ""},
		{`SELECT "PGMQ".x, "pgmq".y, 1`, ""},
		{"SELECT * FROM read(7)", ""},
		{"SELECT $$ 1 $$, 2", ""},
		{"SELECT /* 1 */ 2", ""},
		{"SELECT E'\\'', 1", ""},
		{"SELECT 1_000", ""},
		{"SELECT 0x1F", ""},
		{"SELECT 1abc", ""},
		{"SELECT 1..2", ""},
		{"SELECT 'unterminated 1", ""},
	} {
		key, ok := shapeKey(tc.sql)
		if ok != (tc.key != "") || key != tc.key {
			t.Errorf("shapeKey(%q) = %q, %v; want %q", tc.sql, key, ok, tc.key)
		}
	}
}

func TestCacheSharesShapes(t *testing.T) {
	r := New(16)
	a := r.Classify("SELECT abalance FROM pgbench_accounts WHERE aid = 1")
	b := r.Classify("SELECT abalance FROM pgbench_accounts WHERE aid = 2")
	if a != b {
		t.Fatal("statements differing in a number were parsed twice")
	}
	// Queue arguments are never merged, even numeric ones.
	x := r.Classify("SELECT pgmq.send(1, '{}')")
	y := r.Classify("SELECT pgmq.send(2, '{}')")
	if x == y {
		t.Fatal("pgmq calls with different literals share a classification")
	}
	// A parse error is never shared through a shape (the other way round
	// the server reports the error, as for any statement that classifies
	// but does not run).
	bad := r.Classify("SELECT 1::float(0)")
	ok := r.Classify("SELECT 1::float(5)")
	if bad.ParseError == "" || ok.ParseError != "" {
		t.Fatalf("float(0) %+v / float(5) %+v", bad, ok)
	}
}

func BenchmarkClassifyInlinedLiterals(b *testing.B) {
	r := New(1024)
	r.Classify("SELECT abalance FROM pgbench_accounts WHERE aid = 1;")
	sqls := make([]string, 1000)
	for i := range sqls {
		sqls[i] = "SELECT abalance FROM pgbench_accounts WHERE aid = " + string(rune('1'+i%9)) + "0" + string(rune('0'+i%10)) + ";"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Classify(sqls[i%len(sqls)])
		i++
	}
}
