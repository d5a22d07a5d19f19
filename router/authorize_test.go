package router

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"mqstack/auth"
)

func limitedIdentity(t *testing.T) auth.Identity {
	t.Helper()
	g, err := auth.ParseGrants(json.RawMessage(`{
	  "grants": [
	    {"queues": ["orders", "orders_*"], "ops": ["send"]},
	    {"queues": ["orders_dlq"], "ops": ["read", "delete", "archive", "list"]},
	    {"topics": ["logs.*"], "ops": ["publish"]}
	  ],
	  "deny": [{"queues": ["orders_admin*"], "ops": ["*"]}]
	}`), []string{"mq.read:jobs", "mq.delete:jobs"})
	if err != nil {
		t.Fatal(err)
	}
	return auth.Identity{Role: "mq", Grants: g}
}

func TestAuthorize(t *testing.T) {
	id := limitedIdentity(t)
	bound := func(v string) Params { return func(int) (string, bool) { return v, true } }
	none := Params(func(int) (string, bool) { return "", false })
	cases := []struct {
		sql    string
		params Params
		deny   string // substring of the denial; "" = allowed
		filter bool
	}{
		{`SELECT pgmq.send('orders', '{}')`, none, "", false},
		{`SELECT pgmq.send('orders_eu', '{}')`, none, "", false},
		{`SELECT pgmq.send('ORDERS', '{}')`, none, "", false}, // pgmq folds case: same queue
		{`SELECT pgmq.send($1, $2)`, bound("orders"), "", false},
		{`SELECT pgmq.send($1, $2)`, bound("payments"), `"payments" needs the "send" grant`, false},
		{`SELECT pgmq.send($1, $2)`, none, "NULL or not bound", false},
		{`SELECT * FROM pgmq.read('orders', 30, 1)`, none, `needs the "read" grant`, false},
		{`SELECT * FROM pgmq.read('orders_dlq', 30, 1)`, none, "", false},
		{`SELECT * FROM pgmq.pop('jobs')`, none, "", false}, // read + delete allow pop
		{`SELECT * FROM pgmq.pop('orders_dlq')`, none, "", false},
		{`SELECT pgmq.send('orders_admin_x', '{}')`, none, "needs", false}, // deny beats allow
		{`SELECT pgmq.drop_queue('orders')`, none, `"drop"`, false},
		{`SELECT pgmq.send_topic('logs.error', '{}')`, none, "", false},
		{`SELECT pgmq.send_topic('audit.x', '{}')`, none, "routing key", false},
		{`SELECT * FROM pgmq.list_queues()`, none, "", true},
		{`SELECT pgmq.create_fifo_indexes_all()`, none, "every queue", false},
		{`BEGIN; SELECT pgmq.send('orders','{}'); COMMIT`, none, "", false},
		{`BEGIN; SELECT pgmq.send('payments','{}'); COMMIT`, none, "payments", false},
		{`LISTEN "pgmq.q_orders_dlq.INSERT"`, none, "", false},
		{`LISTEN "pgmq.q_orders.INSERT"`, none, `"read"`, false},
		{`LISTEN somewhere`, none, "insert-notification channel", false},
		{`SELECT 1`, none, "", false},
		{`SELECT typname FROM pg_type WHERE oid = $1`, none, "", false},
		{`SET application_name = 'x'`, none, "", false},
		{`DISCARD ALL`, none, "", false},
		{`CREATE EXTENSION IF NOT EXISTS pgmq`, none, "", false},
		{`SET ROLE postgres`, none, "role", false},
		{`SELECT * FROM pgmq.q_orders`, none, "directly", false},
		{`DELETE FROM pgmq.q_orders`, none, "DELETE", false},
		{`DO $$ BEGIN PERFORM pgmq.send('orders','{}'); END $$`, none, "DO", false},
		{`SELECT pgmq.send(lower('ORDERS'), '{}')`, none, "computed at run time", false},
	}
	for _, c := range cases {
		dec, err := Authorize(id, Classify(c.sql), c.params)
		if c.deny == "" {
			if err != nil {
				t.Errorf("%s: denied: %v", c.sql, err)
			}
			if dec.FilterListing != c.filter {
				t.Errorf("%s: filter = %v", c.sql, dec.FilterListing)
			}
			continue
		}
		var d *Denial
		if !errors.As(err, &d) || !strings.Contains(err.Error(), c.deny) {
			t.Errorf("%s: err = %v, want a denial mentioning %q", c.sql, err, c.deny)
		}
	}
}

func TestAuthorizeWithoutGrants(t *testing.T) {
	id := auth.Identity{Role: "mq"}
	for _, sql := range []string{`DELETE FROM pgmq.q_orders`, `SET ROLE x`, `SELECT pgmq.drop_queue('a')`} {
		if _, err := Authorize(id, Classify(sql), nil); err != nil {
			t.Errorf("%s: a token without grants is limited only by Postgres: %v", sql, err)
		}
	}
}

func TestDenialMessage(t *testing.T) {
	_, err := Authorize(limitedIdentity(t), Classify(`SELECT pgmq.drop_queue('orders')`), nil)
	want := `permission denied by queue grants: pgmq call on "orders" needs the "drop" grant`
	if err == nil || err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
}
