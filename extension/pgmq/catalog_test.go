package pgmq_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCatalogSignatures compares every function of schema pgmq, as the
// catalog prints it, with the spec's list (a copy lives in test/ so that a
// clean checkout can run it).
func TestCatalogSignatures(t *testing.T) {
	c, _ := cluster(t)
	db := newDB(t, c)
	conn := connect(t, c, db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	raw, err := os.ReadFile(filepath.Join("test", "pgmq-signatures.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")

	rows, err := conn.Query(ctx, `
		SELECT s FROM (
		  SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> '
		         || pg_get_function_result(p.oid) AS s
		    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		   WHERE n.nspname = 'pgmq') x
		 ORDER BY s COLLATE "C"`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) != 76 {
		t.Fatalf("test/pgmq-signatures.txt has %d lines, want 76", len(want))
	}
	for i := 0; i < len(want) || i < len(got); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("line %d:\n  catalog: %s\n  spec:    %s", i+1, g, w)
		}
	}

	// every function is a member of the extension; no queue objects are
	var members, functions int
	if err := conn.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM pg_depend d
		         WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		           AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgmq')
		           AND d.classid = 'pg_proc'::regclass),
		       (SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgmq'::regnamespace)`).Scan(&members, &functions); err != nil {
		t.Fatal(err)
	}
	if members != 76 || functions != 76 {
		t.Errorf("function members %d, functions %d; want 76 and 76", members, functions)
	}
}
