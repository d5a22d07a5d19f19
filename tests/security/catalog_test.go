package security

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Catalog leaks: every token shares role mq, so the statistics and
// activity views show other tenants' queue names, depths, message bodies
// (pg_stats histograms) and statements (payloads included). A limited
// token may read only the catalogs drivers use for introspection.

func TestCatalogLeaksRefused(t *testing.T) {
	v := newVictims(t)
	// Statistics for pg_stats and pg_statistic; a statement of the victim
	// in pg_stat_statements and pg_stat_activity.
	sqlDirect(t, "postgres", "ANALYZE pgmq.q_"+v.payments)
	e := newEnv(t, nil)
	by := e.newBystander(t, v.orders)
	tok := limitedToken(t, "send:"+v.orders+"*")
	q := "pgmq.q_" + v.payments
	refused := []string{
		fmt.Sprintf("SELECT histogram_bounds::text FROM pg_stats WHERE tablename = 'q_%s'", v.payments),
		"SELECT count(*) FROM pg_statistic",
		"SELECT query FROM pg_stat_activity",
		"SELECT name, statement FROM pg_prepared_statements",
		"SELECT relname, reltuples FROM pg_class WHERE relnamespace = 'pgmq'::regnamespace",
		"SELECT relname, n_live_tup FROM pg_stat_user_tables",
		"SELECT relname, heap_blks_read FROM pg_statio_user_tables",
		"SELECT locktype, relation FROM pg_locks",
		"SELECT name, statement FROM pg_cursors",
		"SELECT gid FROM pg_prepared_xacts",
		"SELECT query FROM pg_stat_statements",
		"SELECT name, setting FROM pg_settings WHERE name = 'data_directory'",
		"SELECT table_name FROM information_schema.tables WHERE table_schema = 'pgmq'",
		fmt.Sprintf("SELECT '%s'::regclass", q),
		fmt.Sprintf("SELECT to_regclass('%s')", q),
		fmt.Sprintf("SELECT pg_relation_size('%s')", q),
		"SELECT pg_read_file('/etc/passwd')",
		"SELECT lo_import('/etc/passwd')",
		"SELECT current_setting('data_directory')",
		fmt.Sprintf("SELECT query_to_xml('select * from %s', true, true, '')", q),
		fmt.Sprintf("SELECT * FROM %s", q),
		fmt.Sprintf("SELECT count(*) FROM pgmq.a_%s", v.payments),
	}
	for i, sql := range refused {
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			t.Logf("%s", sql)
			for _, mode := range execModes {
				t.Run(modeName(mode), func(t *testing.T) {
					conn := e.mustConnect(t, tok, mode)
					rows, err := run(conn, mode, sql)
					wantError(t, sql, err, "ERROR", "42501")
					if rows > 0 {
						t.Errorf("%d rows returned", rows)
					}
					e.serves(t, conn, tok, sendSQL(v.orders), by)
				})
			}
		})
	}
	t.Run("psql", func(t *testing.T) {
		r := e.psql(t, tok, nil, "postgres", "SELECT query FROM pg_stat_activity")
		wantPsqlError(t, "pg_stat_activity", r, "42501")
	})
}

// pg_class and pg_settings serve driver introspection, so the contract
// lets the proxy answer them filtered instead of refusing: either way no
// row may name a queue the token cannot list, or a setting off the
// allowlist.
func TestCatalogLeaksFilteredOrRefused(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, nil)
	tok := limitedToken(t, "send:"+v.orders+"*", "list:"+v.orders+"*")
	allowedSettings := []string{"application_name", "client_encoding", "datestyle", "intervalstyle", "timezone",
		"extra_float_digits", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
		"search_path", "standard_conforming_strings", "bytea_output"}
	cases := []struct {
		name, sql string
		leak      func(row string) bool
	}{
		{"pg_class", "SELECT relname::text FROM pg_class", func(r string) bool { return strings.Contains(r, v.payments) }},
		{"pg_class_pgmq", "SELECT relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pgmq'",
			func(r string) bool { return strings.Contains(r, v.payments) }},
		{"pg_settings", "SELECT name::text FROM pg_settings", func(r string) bool { return !slices.Contains(allowedSettings, strings.ToLower(r)) }},
	}
	for _, c := range cases {
		for _, mode := range execModes {
			t.Run(c.name+"/"+modeName(mode), func(t *testing.T) {
				conn := e.mustConnect(t, tok, mode)
				rows, err := conn.Query(ctxFor(t, 15*time.Second), c.sql, mode)
				var leaked []string
				n := 0
				if err == nil {
					for rows.Next() {
						var s string
						if rows.Scan(&s) == nil && c.leak(s) {
							leaked = append(leaked, s)
						}
						n++
					}
					rows.Close()
					err = rows.Err()
				}
				if err != nil {
					wantError(t, c.sql, err, "ERROR", "42501")
				}
				if len(leaked) > 0 {
					t.Errorf("%d of %d rows leak: %v", len(leaked), n, leaked[:min(len(leaked), 5)])
				}
				e.serves(t, conn, tok, sendSQL(v.orders), nil)
			})
		}
	}
}

// What a limited token may still read: driver introspection and constants.
func TestCatalogLeaksAllowed(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, nil)
	tok := limitedToken(t, "send:"+v.orders+"*")
	for _, sql := range []string{
		"SELECT oid, typname FROM pg_catalog.pg_type WHERE oid = 25",
		"SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = 'pgmq'",
		"SELECT version()",
		"SELECT current_setting('application_name')",
		"SELECT current_user",
		"SELECT 1",
		"SELECT now()",
	} {
		for _, mode := range execModes {
			t.Run(modeName(mode)+"/"+sql, func(t *testing.T) {
				conn := e.mustConnect(t, tok, mode)
				rows, err := run(conn, mode, sql)
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if rows != 1 {
					t.Errorf("%d rows, want 1", rows)
				}
			})
		}
	}
}

// list_queues shows only the queues the token may list, on the wire and
// over REST.
func TestCatalogLeaksListQueuesFiltered(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, nil)
	tok := limitedToken(t, "send:"+v.orders+"*", "list:"+v.orders+"*")
	for _, mode := range execModes {
		t.Run("wire/"+modeName(mode), func(t *testing.T) {
			conn := e.mustConnect(t, tok, mode)
			rows, err := conn.Query(ctxFor(t, 15*time.Second), "SELECT queue_name FROM pgmq.list_queues()", mode)
			if err != nil {
				t.Fatal(err)
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(names, v.orders) || slices.Contains(names, v.payments) {
				t.Errorf("list_queues shows %v: want %s, never %s", names, v.orders, v.payments)
			}
		})
	}
	t.Run("rest", func(t *testing.T) {
		code, body := e.rest(t, tok, "list_queues", map[string]any{})
		if code != http.StatusOK {
			t.Fatalf("HTTP %d %s", code, oneLine(string(body)))
		}
		var rows []struct {
			QueueName string `json:"queue_name"`
		}
		if err := json.Unmarshal(body, &rows); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range rows {
			names = append(names, r.QueueName)
		}
		if !slices.Contains(names, v.orders) || slices.Contains(names, v.payments) {
			t.Errorf("REST list_queues shows %v: want %s, never %s", names, v.orders, v.payments)
		}
	})
}
