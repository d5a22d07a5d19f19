package proxy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// connectToken connects as mq with tok in the given pgx mode.
func (h *harness) connectToken(t testing.TB, tok string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("host=127.0.0.1 port=" + h.port() + " user=mq dbname=postgres sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = tok
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(ctxT(t, 15*time.Second), cfg)
	if err != nil {
		t.Fatalf("connect with token: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// psqlToken runs psql with tok; it returns the output and the exit error.
func (h *harness) psqlToken(t testing.TB, tok, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgBin(t, "psql"), append([]string{"-X", "-At"}, args...)...)
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+h.port(), "PGUSER=mq", "PGDATABASE=postgres",
		"PGPASSWORD="+tok, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func isDenied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501"
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// grantFixture makes queues gp_orders, gp_orders_admin, gp_other (with a
// topic binding gp.* -> gp_orders and insert notifications on gp_orders),
// a function wrapping pgmq, and a token limited to them.
func grantFixture(t *testing.T, h *harness, prefix string) (tok string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	d := h.connect(t) // role mq, no grants: it owns the queues
	for _, q := range []string{"orders", "orders_admin", "other"} {
		name := prefix + q
		if _, err := d.Exec(ctx, "SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = $1", name); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, "SELECT pgmq.create($1)", name); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"orders", "orders_admin", "other"} {
			d.Exec(context.Background(), "SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = $1", prefix+q)
		}
	})
	for _, sql := range []string{
		"SELECT pgmq.bind_topic('" + prefix + ".*', '" + prefix + "orders')",
		"SELECT pgmq.enable_notify_insert('" + prefix + "orders', 0)",
	} {
		if _, err := d.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	su := h.direct(t) // the wrapper is the superuser's, as an admin would make it
	for _, sql := range []string{
		"CREATE OR REPLACE FUNCTION public." + prefix + "wrap(q text) RETURNS SETOF bigint LANGUAGE sql AS $$ SELECT * FROM pgmq.send(q, '{}') $$",
		"GRANT EXECUTE ON FUNCTION public." + prefix + "wrap(text) TO mq",
	} {
		if _, err := su.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	return testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{
		{Queues: []string{prefix + "orders*"}, Ops: []string{"send", "read", "delete", "archive", "list"}},
		{Topics: []string{prefix + ".allowed"}, Ops: []string{"publish"}},
	}, Deny: []auth.GrantEntry{{Queues: []string{prefix + "orders_admin*"}, Ops: []string{"*"}}}})
}

var execModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"extended", pgx.QueryExecModeCacheStatement},
	{"describe_exec", pgx.QueryExecModeDescribeExec},
	{"exec", pgx.QueryExecModeExec},
	{"simple", pgx.QueryExecModeSimpleProtocol},
}

func queueLen(t testing.TB, h *harness, queue string) int {
	t.Helper()
	var n int
	if err := h.direct(t).QueryRow(context.Background(), "SELECT count(*) FROM pgmq.q_"+queue).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Allowed calls pass, by literal and by bound parameter, positional and
// named, in every pgx mode.
func TestGrantsAllowed(t *testing.T) {
	h := newHarness(t, nil)
	tok := grantFixture(t, h, "ga_")
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t, 30*time.Second)
			c := h.connectToken(t, tok, m.mode)
			before := queueLen(t, h, "ga_orders")
			var id int64
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`SELECT pgmq.send('ga_orders', '{"a":1}')`, nil},
				{`SELECT * FROM pgmq.send($1, $2::jsonb)`, []any{"ga_orders", `{"a":2}`}},
				{`SELECT * FROM pgmq.send(queue_name => $1::text, msg => $2::jsonb)`, []any{"GA_Orders", `{"a":3}`}},
				{`SELECT pgmq.send(msg => '{"a":4}', queue_name => 'ga_orders')`, nil},
			} {
				if err := c.QueryRow(ctx, q.sql, q.args...).Scan(&id); err != nil {
					t.Fatalf("%s: %v", q.sql, err)
				}
			}
			if got := queueLen(t, h, "ga_orders"); got != before+4 {
				t.Fatalf("queue length %d, want %d", got, before+4)
			}
			var ids []int64
			rows, _ := c.Query(ctx, `SELECT msg_id FROM pgmq.read($1, 30, 3)`, "ga_orders")
			for rows.Next() {
				var v int64
				rows.Scan(&v)
				ids = append(ids, v)
			}
			if err := rows.Err(); err != nil || len(ids) != 3 {
				t.Fatalf("read: %v %v", err, ids)
			}
			var ok bool
			if err := c.QueryRow(ctx, `SELECT pgmq.delete('ga_orders', $1::bigint)`, ids[0]).Scan(&ok); err != nil || !ok {
				t.Fatalf("delete: %v %v", err, ok)
			}
			if err := c.QueryRow(ctx, `SELECT pgmq.archive($1, $2::bigint)`, "ga_orders", ids[1]).Scan(&ok); err != nil || !ok {
				t.Fatalf("archive: %v %v", err, ok)
			}
			if _, err := c.Exec(ctx, `SELECT * FROM pgmq.pop('ga_orders')`); err != nil {
				t.Fatalf("pop: %v", err)
			}
			var n int
			if err := c.QueryRow(ctx, `SELECT pgmq.send_topic('ga_.allowed', '{"t":1}')`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("send_topic: %v %d", err, n)
			}
			if _, err := c.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pgmq`); err != nil {
				t.Fatalf("create extension: %v", err)
			}
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SELECT pgmq.send('ga_orders', '{}')`); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			c.Exec(ctx, `SELECT pgmq.purge_queue('ga_orders')`) // denied (no drop): ignored
			d := h.direct(t)
			d.Exec(ctx, `SELECT pgmq.purge_queue('ga_orders')`)
		})
	}
}

// LISTEN on a readable queue's insert channel receives a notification after
// a send; on another queue's channel it is refused.
func TestGrantsListen(t *testing.T) {
	h := newHarness(t, nil)
	tok := grantFixture(t, h, "gl_")
	ctx := ctxT(t, 30*time.Second)
	l := h.connectToken(t, tok, pgx.QueryExecModeCacheStatement)
	if _, err := l.Exec(ctx, `LISTEN "pgmq.q_gl_orders.INSERT"`); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(ctx, `LISTEN "pgmq.q_gl_other.INSERT"`); !isDenied(err) {
		t.Fatalf("LISTEN on another queue: %v", err)
	}
	if _, err := l.Exec(ctx, `LISTEN anything`); !isDenied(err) {
		t.Fatalf("LISTEN on another channel: %v", err)
	}
	s := h.connectToken(t, tok, pgx.QueryExecModeCacheStatement)
	if _, err := s.Exec(ctx, `SELECT pgmq.send('gl_orders', '{}')`); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := l.WaitForNotification(wctx)
	if err != nil || n.Channel != "pgmq.q_gl_orders.INSERT" {
		t.Fatalf("notification: %v %+v", err, n)
	}
}

// Each refused statement answers 42501 and the session goes on: outside a
// transaction the next statement runs; inside one the transaction is
// aborted, as Postgres does for a failing statement, and COMMIT rolls it
// back.
func TestGrantsDenied(t *testing.T) {
	h := newHarness(t, nil)
	tok := grantFixture(t, h, "gd_")
	refused := []struct {
		name, sql string
		args      []any
	}{
		{"another queue", `SELECT pgmq.send('gd_other', '{}')`, nil},
		{"another queue bound", `SELECT * FROM pgmq.send($1, '{}')`, []any{"gd_other"}},
		{"another queue named", `SELECT * FROM pgmq.read(queue_name => $1, vt => 30, qty => 1)`, []any{"gd_other"}},
		{"case cannot escape a deny", `SELECT pgmq.send('GD_ORDERS_ADMIN', '{}')`, nil},
		{"case cannot escape a deny bound", `SELECT pgmq.send($1, '{}')`, []any{"Gd_Orders_Admin"}},
		{"case cannot reach another queue", `SELECT pgmq.send('GD_OTHER', '{}')`, nil},
		{"missing op", `SELECT pgmq.purge_queue('gd_orders')`, nil},
		{"missing op pop on other", `SELECT * FROM pgmq.pop($1)`, []any{"gd_other"}},
		{"topic key not covered", `SELECT pgmq.send_topic('gd_.other', '{}')`, nil},
		{"topic key not covered bound", `SELECT pgmq.send_topic($1, '{}')`, []any{"gd_.other"}},
		{"raw queue table", `SELECT * FROM pgmq.q_gd_orders`, nil},
		{"raw archive table", `SELECT count(*) FROM pgmq.a_gd_orders`, nil},
		{"queue computed at run time", `SELECT pgmq.send('gd_' || 'orders', '{}')`, nil},
		{"queue computed from a parameter", `SELECT pgmq.send($1 || 'orders', '{}')`, []any{"gd_"}},
		{"DO block", `DO $$BEGIN PERFORM pgmq.send('gd_other', '{}'); END$$`, nil},
		{"function wrapping pgmq", `SELECT * FROM public.gd_wrap('gd_other')`, nil},
		{"function wrapping pgmq unqualified", `SELECT gd_wrap('gd_orders')`, nil},
		{"DML", `DELETE FROM pgmq.q_gd_orders`, nil},
		{"SET ROLE", `SET ROLE postgres`, nil},
		{"listing without a queue_name column", `SELECT pgmq.list_queues()`, nil},
	}
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t, 60*time.Second)
			c := h.connectToken(t, tok, m.mode)
			for _, r := range refused {
				_, err := c.Exec(ctx, r.sql, r.args...)
				if !isDenied(err) {
					t.Errorf("%s: %s: got %v, want 42501", r.name, r.sql, err)
					continue
				}
				var one int
				if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
					t.Fatalf("%s: session not usable afterwards: %v", r.name, err)
				}
			}
			// Inside a transaction: the transaction fails as in Postgres.
			before := queueLen(t, h, "gd_orders")
			for _, r := range refused[:3] {
				tx, err := c.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, `SELECT pgmq.send('gd_orders', '{}')`); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, r.sql, r.args...); !isDenied(err) {
					t.Fatalf("%s in a transaction: %v", r.name, err)
				}
				if _, err := tx.Exec(ctx, "SELECT 1"); sqlState(err) != "25P02" {
					t.Fatalf("%s: statement after a denial in a transaction: %v, want 25P02", r.name, err)
				}
				if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
					t.Fatalf("%s: COMMIT after a denial: %v, want a rollback", r.name, err)
				}
			}
			if got := queueLen(t, h, "gd_orders"); got != before {
				t.Fatalf("sends of denied transactions were committed: %d -> %d", before, got)
			}
			var one int
			if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				t.Fatalf("after transactions: %v", err)
			}
		})
	}
}

// A multi-statement string cannot smuggle a statement: nothing of it runs.
func TestGrantsMultiStatement(t *testing.T) {
	h := newHarness(t, nil)
	tok := grantFixture(t, h, "gm_")
	ctx := ctxT(t, 30*time.Second)
	c := h.connectToken(t, tok, pgx.QueryExecModeSimpleProtocol)
	before := queueLen(t, h, "gm_orders")
	for _, sql := range []string{
		`SELECT pgmq.send('gm_orders', '{}'); SELECT pgmq.send('gm_other', '{}')`,
		`SELECT pgmq.send('gm_orders', '{}'); DELETE FROM pgmq.q_gm_orders`,
		`BEGIN; SELECT pgmq.send('gm_orders', '{}'); SELECT * FROM pgmq.q_gm_other; COMMIT`,
	} {
		_, err := c.PgConn().Exec(ctx, sql).ReadAll()
		if !isDenied(err) {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if got := queueLen(t, h, "gm_orders"); got != before {
		t.Fatalf("a part of a refused string ran: %d -> %d", before, got)
	}
	res, err := c.PgConn().Exec(ctx, `BEGIN; SELECT pgmq.send('gm_orders', '{}'); COMMIT`).ReadAll()
	if err != nil || len(res) != 3 {
		t.Fatalf("allowed multi-statement: %v", err)
	}
	// A pipelined extended cycle: the denial fails the implicit
	// transaction, so the send before it is rolled back, as in Postgres.
	c2 := h.connectToken(t, tok, pgx.QueryExecModeCacheStatement)
	b := &pgx.Batch{}
	b.Queue(`SELECT pgmq.send('gm_orders', '{}')`)
	b.Queue(`SELECT pgmq.send('gm_other', '{}')`)
	if err := c2.SendBatch(ctx, b).Close(); !isDenied(err) {
		t.Fatalf("batch: %v", err)
	}
	if got := queueLen(t, h, "gm_orders"); got != before+1 {
		t.Fatalf("queue length %d, want %d", got, before+1)
	}
}

// Listings show only the queues the token may list.
func TestGrantsListing(t *testing.T) {
	h := newHarness(t, nil)
	tok := grantFixture(t, h, "gs_")
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t, 30*time.Second)
			c := h.connectToken(t, tok, m.mode)
			for _, sql := range []string{
				`SELECT queue_name FROM pgmq.list_queues() ORDER BY 1`,
				`SELECT queue_name FROM pgmq.metrics_all() ORDER BY 1`,
				`SELECT queue_name FROM pgmq.list_topic_bindings() ORDER BY 1`,
				`SELECT queue_name FROM pgmq.test_routing('gs_.x') ORDER BY 1`,
			} {
				rows, err := c.Query(ctx, sql)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for rows.Next() {
					var q string
					rows.Scan(&q)
					got = append(got, q)
				}
				if rows.Err() != nil {
					t.Fatalf("%s: %v", sql, rows.Err())
				}
				if tag := rows.CommandTag(); int(tag.RowsAffected()) != len(got) {
					t.Errorf("%s: tag %q for %d rows", sql, tag, len(got))
				}
				if strings.Join(got, ",") != "gs_orders" {
					t.Errorf("%s: %v, want only gs_orders", sql, got)
				}
			}
			var n int
			if err := c.QueryRow(ctx, `SELECT count(*) FROM (SELECT * FROM pgmq.list_queues()) q`).Scan(&n); !isDenied(err) {
				t.Errorf("a listing hidden in a subquery: %v %d", err, n)
			}
		})
	}
}

// psql: allowed calls, refusals and the session staying usable.
func TestGrantsPsql(t *testing.T) {
	h := newHarness(t, nil)
	tok := grantFixture(t, h, "gq_")
	out, err := h.psqlToken(t, tok, "", "-v", "ON_ERROR_STOP=1", "-c",
		`CREATE EXTENSION IF NOT EXISTS pgmq; SELECT pgmq.send('gq_orders', '{"a":1}'); SELECT message->>'a' FROM pgmq.read('gq_orders', 30, 1)`)
	if err != nil || !strings.Contains(out, "\n1\n") {
		t.Fatalf("allowed: %v\n%s", err, out)
	}
	script := `SELECT pgmq.send('gq_other', '{}');
SELECT 'after-denial';
BEGIN;
SELECT * FROM pgmq.q_gq_orders;
SELECT 'in-aborted';
COMMIT;
SELECT queue_name FROM pgmq.list_queues();
`
	out, _ = h.psqlToken(t, tok, script)
	for _, want := range []string{"permission denied by queue grants", "after-denial", "current transaction is aborted", "ROLLBACK", "gq_orders"} {
		if !strings.Contains(out, want) {
			t.Errorf("psql output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "gq_other\n") {
		t.Errorf("listing shows an unlistable queue:\n%s", out)
	}
}

// A queue bound in binary format is read as text only for text-like
// declared types; any other binary type fails closed.
func TestGrantsBinaryParams(t *testing.T) {
	h := newHarness(t, nil)
	tok := grantFixture(t, h, "gb_")
	ctx := ctxT(t, 30*time.Second)
	c := h.connectToken(t, tok, pgx.QueryExecModeCacheStatement).PgConn()
	// name (19) truncates and bpchar (1042) drops trailing blanks: a queue
	// bound as either is refused, even a granted one.
	for _, oid := range []uint32{19, 1042} {
		for _, format := range []int16{0, 1} {
			res := c.ExecParams(ctx, `SELECT pgmq.send($1, '{}')`, [][]byte{[]byte("gb_orders")}, []uint32{oid}, []int16{format}, nil).Read()
			if !isDenied(res.Err) {
				t.Fatalf("queue bound as oid %d (format %d): %v", oid, format, res.Err)
			}
		}
	}
	for _, oid := range []uint32{25, 1043} {
		res := c.ExecParams(ctx, `SELECT pgmq.send($1, '{}')`, [][]byte{[]byte("gb_orders")}, []uint32{oid}, []int16{1}, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 {
			t.Fatalf("binary oid %d: %v", oid, res.Err)
		}
		res = c.ExecParams(ctx, `SELECT pgmq.send($1, '{}')`, [][]byte{[]byte("gb_other")}, []uint32{oid}, []int16{1}, nil).Read()
		if !isDenied(res.Err) {
			t.Fatalf("binary oid %d on another queue: %v", oid, res.Err)
		}
	}
	res := c.ExecParams(ctx, `SELECT pgmq.send($1::text, '{}')`, [][]byte{[]byte("gb_orders")}, []uint32{17}, []int16{1}, nil).Read()
	if !isDenied(res.Err) || !strings.Contains(res.Err.Error(), "binary format") {
		t.Fatalf("bytea in binary format: %v", res.Err)
	}
	if res := c.ExecParams(ctx, `SELECT 1`, nil, nil, nil, nil).Read(); res.Err != nil {
		t.Fatalf("session not usable: %v", res.Err)
	}
}
