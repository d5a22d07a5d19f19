package rest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"mqstack/router"
)

var update = flag.Bool("update", false, "rewrite testdata/calls.golden")

// Request -> SQL: the statement and parameters each request becomes, kept
// in testdata/calls.golden (go test -run Golden -update rewrites it). The
// JSON that comes back is checked against Postgres in the other tests.
func TestGoldenCalls(t *testing.T) {
	cases := []struct{ fn, body string }{
		{"create", `{"queue_name":"my_demo"}`},
		{"create_partitioned", `{"queue_name":"p","partition_interval":"1 day"}`},
		{"list_queues", `{}`},
		{"send", `{"queue_name":"my_demo","msg":{"hello":"world-0"}}`},
		{"send", `{"delay":5,"msg":{"a":1},"queue_name":"q"}`},
		{"send", `{"queue_name":"q","msg":{"a":1},"delay":" -5 "}`},
		{"send", `{"queue_name":"q","msg":{"a":1},"headers":{"x-pgmq-group":"g"},"delay":"2030-01-01T00:00:00Z"}`},
		{"send", `{"queue_name":"q","msg":null}`},
		{"send_batch", `{"queue_name":"q","msgs":[{"a":1},"two",3,null,{"q\"":"b\\s"}]}`},
		{"send_batch", `{"queue_name":"q","msgs":[1],"headers":[null],"delay":10}`},
		{"send_batch", `{"queue_name":"q","msgs":"{\"1\"}"}`},
		{"read", `{"queue_name":"my_demo","vt":30,"qty":1}`},
		{"read", `{"queue_name":"q","vt":"30","qty":"1","conditional":{"k":"v"}}`},
		{"read_with_poll", `{"queue_name":"q","vt":30,"qty":1,"max_poll_seconds":10,"poll_interval_ms":250}`},
		{"read_grouped_head_with_poll", `{"queue_name":"q","vt":30,"qty":1}`},
		{"pop", `{"queue_name":"q"}`},
		{"archive", `{"queue_name":"my_demo","msg_id":1}`},
		{"archive", `{"queue_name":"my_demo","msg_ids":[2,3]}`},
		{"delete", `{"queue_name":"q","msg_ids":["5",6,null]}`},
		{"set_vt", `{"queue_name":"q","msg_id":1,"vt":0}`},
		{"set_vt", `{"queue_name":"q","msg_ids":[1],"vt":"2030-01-01T00:00:00+02:00"}`},
		{"metrics", `{"queue_name":"q"}`},
		{"drop_queue", `{"queue_name":"q","partitioned":true}`},
		{"send_topic", `{"routing_key":"a.b","msg":{},"headers":{},"delay":0}`},
		{"send_batch_topic", `{"routing_key":"a.b","msgs":[{}],"delay":"2030-01-01T00:00:00Z"}`},
		{"list_topic_bindings", `{"queue_name":"q"}`},
	}
	var b strings.Builder
	for _, c := range cases {
		var args map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.body), &args); err != nil {
			t.Fatal(err)
		}
		call, err := buildCall(functions[c.fn], args)
		if err != nil {
			t.Fatalf("%s %s: %v", c.fn, c.body, err)
		}
		fmt.Fprintf(&b, "== POST /pgmq/v1/%s %s\n%s\n", c.fn, c.body, call.sql)
		for i, a := range call.args {
			if a == nil {
				fmt.Fprintf(&b, "$%d = NULL\n", i+1)
			} else {
				fmt.Fprintf(&b, "$%d = %s\n", i+1, *a)
			}
		}
		if c.fn != call.fn.name || call.fn.poll != "" {
			fmt.Fprintf(&b, "poll: max_poll_seconds=%d poll_interval_ms=%d\n", call.pollSeconds, call.pollIntervalMS)
		}
		b.WriteByte('\n')
	}
	const path = "testdata/calls.golden"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update)", err)
	}
	if string(want) != b.String() {
		t.Fatalf("request -> SQL differs from %s (go test -run Golden -update, then review the diff):\n%s", path, b.String())
	}
}

// expansions lists every argument list a signature can send to Postgres:
// each subset of its optional arguments, each type of a seconds-or-time
// argument. Each has the JSON values that produce it.
func expansions(s signature) []map[string]string {
	out := []map[string]string{{}}
	for _, prm := range s.params {
		var next []map[string]string
		for _, base := range out {
			if prm.optional {
				next = append(next, base)
			}
			values := []string{exampleJSON(prm)}
			if prm.typ == typeSecondsOrTime {
				values = append(values, `"2030-01-01T00:00:00Z"`)
			}
			for _, v := range values {
				m := map[string]string{prm.name: v}
				for k, x := range base {
					m[k] = x
				}
				next = append(next, m)
			}
		}
		out = next
	}
	return out
}

func exampleJSON(prm param) string {
	switch prm.typ {
	case typeJSONBArray:
		return `[{}]`
	case typeBigintArray:
		return `[1]`
	case typeText:
		return `"x"`
	case typeBoolean:
		return `true`
	case typeJSONB:
		return `{}`
	}
	return `1`
}

// Every argument list the table can send resolves to a pgmq function (the
// statement prepares, so Postgres found the overload), the router vouches
// for it as exactly one call of that function, and every overload of the
// public functions in the catalog is reachable from the table.
func TestSignaturesMatchCatalog(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.ConnString("mq", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	reached := map[string]bool{}
	for _, f := range functionList {
		for _, s := range f.sigs {
			for _, exp := range expansions(s) {
				args := map[string]json.RawMessage{}
				var ident []string
				for _, prm := range s.params {
					v, ok := exp[prm.name]
					if !ok {
						continue
					}
					args[prm.name] = json.RawMessage(v)
					typ := prm.typ
					if typ == typeSecondsOrTime {
						typ = typeInteger
						if strings.HasPrefix(v, `"`) {
							typ = typeTimestamptz
						}
					}
					ident = append(ident, prm.name+" "+typ.sqlName())
				}
				reached[f.name+"("+strings.Join(ident, ", ")+")"] = true
				call, err := buildCall(f, args)
				if err != nil {
					t.Fatalf("%s %v: %v", f.name, exp, err)
				}
				if _, err := conn.Prepare(ctx, "", call.sql); err != nil {
					t.Errorf("%s: %s: %v", f.name, call.sql, err)
				}
				st := router.Classify(call.sql)
				calls := st.Calls()
				base := f.name
				if f.poll != "" {
					base = f.poll
				}
				if st.Uncertain() != "" || len(calls) != 1 || calls[0].Function != base {
					t.Errorf("router on %s: %+v (uncertain %q)", call.sql, calls, st.Uncertain())
				}
			}
		}
	}
	rows, err := conn.Query(ctx, `SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgmq'`)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(catalog)
	public := 0
	for _, sig := range catalog {
		name := sig[:strings.IndexByte(sig, '(')]
		if functions[name] == nil {
			continue
		}
		public++
		if !reached[sig] {
			t.Errorf("catalog overload %s is not reachable over REST", sig)
		}
	}
	if public < 60 {
		t.Fatalf("only %d public overloads in the catalog: is pgmq 1.13.1 installed?", public)
	}
}
