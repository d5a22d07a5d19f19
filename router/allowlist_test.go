package router

import (
	"encoding/json"
	"strings"
	"testing"

	"mqstack/auth"
)

// The issue 11 classes, at the router: what a grant-limited token may run
// besides its pgmq calls, and the casts that would change a queue name.
func TestAuthorizeLimitedAllowlist(t *testing.T) {
	g, err := auth.ParseGrants(json.RawMessage(`{"grants":[{"queues":["*"],"ops":["*"]}],"deny":[{"queues":["payments"],"ops":["*"]}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := auth.Identity{Role: "mq", Grants: g}
	orders := Params(func(int) (string, bool) { return "orders", true })
	for _, c := range []struct {
		sql  string
		deny string // substring of the denial, "" = allowed
	}{
		// casts that change the name after the check
		{`SELECT * FROM pgmq.read('payments  '::char(10), 0, 1)`, "cast"},
		{`SELECT * FROM pgmq.read('payments'::bpchar, 0, 1)`, "cast"},
		{`SELECT * FROM pgmq.read('orders_x'::varchar(6), 0, 1)`, "cast"},
		{`SELECT * FROM pgmq.read('payments'::name, 0, 1)`, "cast"},
		{`SELECT * FROM pgmq.read(CAST('payments' AS character(8)), 0, 1)`, "cast"},
		{`SELECT * FROM pgmq.read('payments'::text::char(8), 0, 1)`, "cast"},
		{`SELECT * FROM pgmq.read($1::char(10), 0, 1)`, "cast"},
		{`SELECT * FROM pgmq.read('orders'::text, 0, 1)`, ""},
		{`SELECT * FROM pgmq.read('orders'::varchar, 0, 1)`, ""},
		{`SELECT * FROM pgmq.read('orders'::pg_catalog.text, 0, 1)`, ""},
		{`SELECT * FROM pgmq.read($1::text, 0, 1)`, ""},
		{`SELECT * FROM pgmq.read(U&'\0070ayments', 0, 1)`, "payments"},
		{`SELECT * FROM pgmq.read(E'pay\u006dents', 0, 1)`, "payments"},
		{`SELECT * FROM pgmq.read('ordérs', 0, 1)`, "not ASCII"},
		// catalogs and functions that tell about other queues
		{`SELECT * FROM pg_stats`, "pg_stats"},
		{`SELECT * FROM pg_catalog.pg_statistic`, "pg_statistic"},
		{`SELECT query FROM pg_stat_activity`, "pg_stat_activity"},
		{`SELECT * FROM pg_prepared_statements`, "pg_prepared_statements"},
		{`SELECT relname FROM pg_class`, "pg_class"},
		{`SELECT * FROM pg_stat_user_tables`, "pg_stat_user_tables"},
		{`SELECT * FROM pg_settings`, "pg_settings"},
		{`SELECT * FROM information_schema.tables`, "information_schema.tables"},
		{`SELECT 'pgmq.q_payments'::regclass`, "reg"},
		{`SELECT to_regclass('pgmq.q_payments')`, "to_regclass"},
		{`SELECT pg_relation_size('pgmq.q_payments')`, "pg_relation_size"},
		{`SELECT pg_read_file('/etc/passwd')`, "pg_read_file"},
		{`SELECT repeat('x', 1000000000)`, "repeat"},
		{`SELECT count(*) FROM generate_series(1, 1e12::bigint)`, "generate_series"},
		{`SELECT current_setting('data_directory')`, "data_directory"},
		{`SELECT current_setting($1)`, "literal"},
		{`SELECT oid, typname FROM pg_catalog.pg_type WHERE oid = 25`, ""},
		{`SELECT current_setting('application_name'), version(), current_user, now()`, ""},
		{`SHOW statement_timeout`, ""},
		{`SHOW data_directory`, "data_directory"},
		{`SHOW ALL`, "all"},
		// settings
		{`SET search_path = evil`, "search_path"},
		{`SET search_path = pgmq, public`, ""},
		{`SET search_path = pgmq, pg_catalog`, "pg_catalog only first"},
		{`SET search_path = pg_catalog, pgmq, "$user"`, ""},
		{`SET work_mem = '1GB'`, "may only change"},
		{`SET default_transaction_read_only = on`, "may only change"},
		{`SET LOCAL lock_timeout = '1s'`, ""},
		{`SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`, ""},
		{`SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`, "SESSION"},
		{`SELECT set_config('application_name', 'x', false)`, "set_config"},
		{`DO $$BEGIN END$$`, "DO"},
		{`CALL p()`, "CALL"},
		{`SELECT pg_sleep(1)`, "pg_sleep"},
		{`CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`, "CREATEFUNCTION"},
		{`PREPARE TRANSACTION 'x'`, "two-phase"},
		{`SELECT 1 OPERATOR(evil.+) 1`, "operator"},
	} {
		_, err := Authorize(id, Classify(c.sql), orders)
		switch {
		case c.deny == "" && err != nil:
			t.Errorf("%s: denied: %v", c.sql, err)
		case c.deny != "" && (err == nil || !strings.Contains(err.Error(), c.deny)):
			t.Errorf("%s: err = %v, want a denial mentioning %q", c.sql, err, c.deny)
		}
	}
}

// SessionDenial holds for every token: what would make the router read
// other statements than the server, role changes, DEALLOCATE in company.
func TestSessionDenial(t *testing.T) {
	for _, c := range []struct {
		sql  string
		deny bool
	}{
		{`SET standard_conforming_strings = off`, true},
		{`SET standard_conforming_strings TO 'off'`, true},
		{`SET SESSION standard_conforming_strings = false`, true},
		{`SET LOCAL standard_conforming_strings = 0`, true},
		{`SELECT set_config('standard_conforming_strings', 'off', false)`, true},
		{`SET client_encoding = 'SJIS'`, true},
		{`SET NAMES 'Shift_JIS'`, true},
		{`SET client_encoding TO 'win932'`, true},
		{`SELECT set_config('client_encoding', 'BIG5', false)`, true},
		{`SET client_encoding = 'GB18030'`, true},
		{`SET ROLE postgres`, true},
		{`RESET ROLE`, false}, // back to the session's own role
		{`SET SESSION AUTHORIZATION postgres`, true},
		{`SELECT 1; DEALLOCATE ALL`, true},
		{`SET standard_conforming_strings = on`, false},
		{`RESET standard_conforming_strings`, false},
		{`SET client_encoding = 'UTF8'`, false},
		{`SET NAMES 'LATIN1'`, false},
		{`DEALLOCATE ALL`, false},
		{`SELECT 'SET standard_conforming_strings = off'`, false},
	} {
		d := SessionDenial(Classify(c.sql))
		if (d != nil) != c.deny {
			t.Errorf("%s: denial %v, want denied=%v", c.sql, d, c.deny)
		}
	}
}

func TestBindTopicNeedsTopicRead(t *testing.T) {
	only, _ := auth.ParseGrants(nil, []string{"mq.create:q"})
	withRead, _ := auth.ParseGrants(nil, []string{"mq.create:q", "mq.read:topic:orders.*"})
	for _, c := range []struct {
		g       *auth.Grants
		pattern string
		ok      bool
	}{
		{only, "#", false},
		{only, "orders.*", false},
		{withRead, "orders.*", true},
		{withRead, "orders.#", true},
		{withRead, "#", false},
		{withRead, "*.created", false},
	} {
		sql := `SELECT pgmq.bind_topic('` + c.pattern + `', 'q')`
		_, err := Authorize(auth.Identity{Role: "mq", Grants: c.g}, Classify(sql), nil)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want allowed=%v", sql, err, c.ok)
		}
	}
}
