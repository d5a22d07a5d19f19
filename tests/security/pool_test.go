package security

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/configs"
)

// Pool poisoning: every token's clients share backends, so nothing a
// client sets may stay on a backend the next client gets. A limited token
// may set only the allowlisted settings; a full token may set others, but
// they pin its client or are reset before anyone else gets the backend.

// poisonable are the settings the poisoning tests try, with the value a
// clean backend has for role mq (read on a direct connection).
var poisonable = []string{"default_transaction_read_only", "search_path", "work_mem", "statement_timeout",
	"default_transaction_isolation", "standard_conforming_strings", "client_encoding"}

func cleanSettings(t testing.TB) map[string]string {
	t.Helper()
	conn := direct(t, "mq")
	m := map[string]string{}
	for _, s := range poisonable {
		v, err := show(conn, s)
		if err != nil {
			t.Fatal(err)
		}
		m[s] = v
	}
	return m
}

// othersWrite checks other clients after a poisoning attempt: concurrent
// full-token transactions (so that, with concurrent equal to the pool size,
// every backend is used) each see clean settings and can send; then a
// limited token sends on the wire and over REST.
func (e *env) othersWrite(t testing.TB, queue string, concurrent int, clean map[string]string) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	full := mint(t, "other", nil, nil)
	var txs []pgx.Tx
	for i := 0; i < concurrent; i++ {
		conn, err := e.connect(t, full, pgx.QueryExecModeCacheStatement, nil)
		if err != nil {
			t.Errorf("another client could not connect: %v", err)
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Errorf("another client's BEGIN: %v", err)
			continue
		}
		txs = append(txs, tx)
		var id int64
		if err := tx.QueryRow(ctx, "SELECT pgmq.send($1, '{\"other\":true}')", queue).Scan(&id); err != nil {
			t.Errorf("another client's send (transaction %d of %d): %v", i+1, concurrent, err)
			continue
		}
		for _, s := range poisonable {
			var v string
			if err := tx.QueryRow(ctx, "SELECT current_setting($1)", s).Scan(&v); err != nil {
				t.Errorf("another client's current_setting(%s): %v", s, err)
				break
			}
			if v != clean[s] {
				t.Errorf("another client (transaction %d of %d) sees %s = %q, a clean backend has %q", i+1, concurrent, s, v, clean[s])
			}
		}
	}
	for _, tx := range txs {
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("another client's COMMIT: %v", err)
		}
	}
	limited := mint(t, "other-limited", []string{"send:" + queue}, nil)
	conn, err := e.connect(t, limited, pgx.QueryExecModeCacheStatement, nil)
	if err != nil {
		t.Errorf("a limited client could not connect: %v", err)
	} else {
		for i := 0; i < concurrent+1; i++ {
			if _, err := run(conn, pgx.QueryExecModeCacheStatement, bystanderSQL, queue, `{"other":"limited"}`); err != nil {
				t.Errorf("a limited client's send %d: %v", i+1, err)
			}
		}
	}
	for i := 0; i < concurrent; i++ {
		e.restSends(t, limited, queue)
	}
}

// poisonSettings are non-allowlisted settings a limited token tries at
// login.
var poisonSettings = []struct{ name, value string }{
	{"default_transaction_read_only", "on"},
	{"work_mem", "1GB"},
	{"session_replication_role", "replica"},
	{"statement_timeout", "0"},
	{"search_path", "evil"},
	{"default_transaction_isolation", "serializable"},
	{"row_security", "off"},
}

func TestPoolPoisoningLimitedStartupSettings(t *testing.T) {
	v := newVictims(t)
	clean := cleanSettings(t)
	tok := limitedToken(t, "send:"+v.orders+"*")
	for _, ps := range poisonSettings {
		t.Run(ps.name, func(t *testing.T) {
			e := newEnv(t, nil)
			by := e.newBystander(t, v.orders)
			opt := fmt.Sprintf("-c %s=%s", ps.name, ps.value)
			t.Run("raw_param", func(t *testing.T) {
				r, err := e.rawConnect(t, tok, map[string]string{ps.name: ps.value})
				wantError(t, "login with "+ps.name+"="+ps.value, err, "FATAL", "42501")
				if err == nil {
					r.query(sendSQL(v.orders))
				}
			})
			t.Run("raw_options", func(t *testing.T) {
				r, err := e.rawConnect(t, tok, map[string]string{"options": opt})
				wantError(t, "login with options "+opt, err, "FATAL", "42501")
				if err == nil {
					r.query(sendSQL(v.orders))
				}
			})
			t.Run("pgx_options", func(t *testing.T) {
				conn, err := e.connect(t, tok, pgx.QueryExecModeCacheStatement, map[string]string{"options": opt})
				wantError(t, "login with options "+opt, err, "FATAL", "42501")
				if err == nil {
					run(conn, pgx.QueryExecModeCacheStatement, sendSQL(v.orders))
				}
			})
			t.Run("psql_PGOPTIONS", func(t *testing.T) {
				r := e.psql(t, tok, []string{"PGOPTIONS=" + opt}, "postgres", sendSQL(v.orders))
				wantPsqlLoginRefused(t, "PGOPTIONS="+opt, r, ps.name)
			})
			e.serves(t, nil, tok, sendSQL(v.orders), by)
			e.othersWrite(t, v.orders, 2, clean)
		})
	}
}

// A full token may log in read-only; its setting must not reach anyone
// else, while it is connected or after it leaves.
func TestPoolPoisoningFullTokenStartupReadOnly(t *testing.T) {
	v := newVictims(t)
	clean := cleanSettings(t)
	for _, c := range []struct {
		name   string
		params map[string]string
	}{
		{"options", map[string]string{"options": "-c default_transaction_read_only=on"}},
		{"param", map[string]string{"default_transaction_read_only": "on"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			by := e.newBystander(t, v.orders)
			attacker, err := e.connect(t, fullToken(t), pgx.QueryExecModeCacheStatement, c.params)
			if err != nil {
				t.Fatalf("a full token with default_transaction_read_only=on was refused: %v", err)
			}
			for i := 0; i < 3; i++ {
				if _, err := run(attacker, pgx.QueryExecModeSimpleProtocol, "SELECT 1"); err != nil {
					t.Fatalf("the read-only session: %v", err)
				}
			}
			if ro, err := show(attacker, "default_transaction_read_only"); err != nil || ro != "on" {
				t.Logf("the attacker's own session sees default_transaction_read_only = %q (%v)", ro, err)
			}
			// While it is connected: one backend may be pinned to it.
			e.othersWrite(t, v.orders, 1, clean)
			if err := by.send(); err != nil {
				t.Errorf("the bystander while the read-only session is connected: %v", err)
			}
			attacker.Close(ctxFor(t, 5*time.Second))
			e.othersWrite(t, v.orders, 2, clean)
			e.serves(t, nil, "", "", by)
		})
	}
}

// fullSetStatements are session changes a full token makes that would
// poison a shared backend.
var fullSetStatements = []string{
	"SET default_transaction_read_only = on",
	"SELECT set_config('default_transaction_read_only', 'on', false)",
	"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
}

func TestPoolPoisoningFullTokenSet(t *testing.T) {
	v := newVictims(t)
	clean := cleanSettings(t)
	for i, stmt := range fullSetStatements {
		for _, mode := range execModes {
			t.Run(fmt.Sprintf("%02d/%s", i, modeName(mode)), func(t *testing.T) {
				t.Logf("%s", stmt)
				e := newEnv(t, nil)
				by := e.newBystander(t, v.orders)
				attacker := e.mustConnect(t, fullToken(t), mode)
				if _, err := run(attacker, mode, stmt); err != nil {
					t.Logf("the full token's %q was refused: %v", stmt, err)
				}
				for i := 0; i < 3; i++ {
					run(attacker, mode, "SELECT 1")
				}
				e.othersWrite(t, v.orders, 1, clean)
				attacker.Close(ctxFor(t, 5*time.Second))
				e.othersWrite(t, v.orders, 2, clean)
				e.serves(t, nil, "", "", by)
			})
		}
	}
}

// A DO block changes settings where no SET shows it; on a pool of one
// backend the next client must get a clean one.
func TestPoolPoisoningFullTokenDOBlock(t *testing.T) {
	v := newVictims(t)
	clean := cleanSettings(t)
	const do = `DO $$BEGIN PERFORM set_config('search_path', 'public', false); PERFORM set_config('default_transaction_read_only', 'on', false); END$$`
	for _, stays := range []bool{true, false} {
		name := "attacker_gone"
		if stays {
			name = "attacker_still_connected"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(c *configs.Config) { c.Pool.Size = 1 })
			by := e.newBystander(t, v.orders)
			attacker := e.mustConnect(t, fullToken(t), pgx.QueryExecModeSimpleProtocol)
			if _, err := run(attacker, pgx.QueryExecModeSimpleProtocol, do); err != nil {
				t.Logf("the DO block was refused: %v", err)
			}
			if !stays {
				attacker.Close(ctxFor(t, 5*time.Second))
			}
			next := e.mustConnect(t, fullToken(t), pgx.QueryExecModeCacheStatement)
			for _, s := range []string{"search_path", "default_transaction_read_only"} {
				got, err := show(next, s)
				if err != nil {
					t.Errorf("the next client's SHOW %s: %v", s, err)
				} else if got != clean[s] {
					t.Errorf("the next client sees %s = %q, the server default is %q", s, got, clean[s])
				}
			}
			if _, err := run(next, pgx.QueryExecModeCacheStatement, sendSQL(v.orders)); err != nil {
				t.Errorf("the next client's send: %v", err)
			}
			e.othersWrite(t, v.orders, 1, clean)
			e.serves(t, nil, "", "", by)
		})
	}
}

// limitedSetRefused are SETs outside a limited token's allowlist; LOCAL:
// means inside a transaction block.
var limitedSetRefused = []string{
	"SET search_path = evil",
	"SET search_path TO pgmq, evil",
	"SET search_path = pg_temp, pgmq",
	"SET work_mem = '1GB'",
	"SET SESSION work_mem = '1GB'",
	"SET statement_timeout = 0",
	"SET statement_timeout = '10min'", // above proxy.limited_statement_timeout: may lower it, not raise it
	"SET default_transaction_read_only = on",
	"SET session_replication_role = replica",
	"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
	"SELECT set_config('work_mem', '1GB', false)",
	"SELECT set_config('search_path', 'evil', false)",
	"LOCAL:SET LOCAL work_mem = '1GB'",
	"LOCAL:SET LOCAL search_path = evil",
}

func TestPoolPoisoningLimitedSetRefused(t *testing.T) {
	v := newVictims(t)
	clean := cleanSettings(t)
	tok := limitedToken(t, "send:"+v.orders+"*")
	for i, stmt := range limitedSetRefused {
		local := strings.HasPrefix(stmt, "LOCAL:")
		sql := strings.TrimPrefix(stmt, "LOCAL:")
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			t.Logf("%s", stmt)
			e := newEnv(t, nil)
			by := e.newBystander(t, v.orders)
			for _, mode := range execModes {
				t.Run(modeName(mode), func(t *testing.T) {
					conn := e.mustConnect(t, tok, mode)
					ctx := ctxFor(t, 15*time.Second)
					if local {
						tx, err := conn.Begin(ctx)
						if err != nil {
							t.Fatal(err)
						}
						_, err = run(conn, mode, sql)
						wantError(t, sql, err, "ERROR", "42501")
						tx.Rollback(ctx)
					} else {
						_, err := run(conn, mode, sql)
						wantError(t, sql, err, "ERROR", "42501")
					}
					e.serves(t, conn, tok, sendSQL(v.orders), by)
				})
			}
			e.othersWrite(t, v.orders, 2, clean)
		})
	}
}

// The allowlisted settings work for a limited token, and it runs under the
// configured statement_timeout (proxy.limited_statement_timeout, 5min by
// default), which RESET does not lift.
func TestPoolPoisoningLimitedSetAllowed(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, nil)
	tok := limitedToken(t, "send:"+v.orders+"*")
	allowed := []struct{ sql, setting, want string }{
		{"SET search_path = pgmq, public", "search_path", "pgmq, public"},
		{`SET search_path TO "$user", public`, "search_path", `"$user", public`},
		{"SET search_path = pg_catalog, pgmq", "search_path", "pg_catalog, pgmq"},
		{"SET statement_timeout = '2s'", "statement_timeout", "2s"},
		{"SET lock_timeout = '1s'", "lock_timeout", "1s"},
		{"SET application_name = 'sec-test'", "application_name", "sec-test"},
		{"SET TimeZone = 'UTC'", "TimeZone", "UTC"},
		{"SET DateStyle = 'ISO, DMY'", "DateStyle", "ISO, DMY"},
		{"SET IntervalStyle = 'iso_8601'", "IntervalStyle", "iso_8601"},
		{"SET extra_float_digits = 3", "extra_float_digits", "3"},
		{"SET bytea_output = 'hex'", "bytea_output", "hex"},
		{"SET idle_in_transaction_session_timeout = '10s'", "idle_in_transaction_session_timeout", "10s"},
	}
	for _, c := range allowed {
		for _, mode := range execModes {
			t.Run(modeName(mode)+"/"+c.sql, func(t *testing.T) {
				conn := e.mustConnect(t, tok, mode)
				if _, err := run(conn, mode, c.sql); err != nil {
					t.Fatalf("%s refused: %v", c.sql, err)
				}
				if got, err := show(conn, c.setting); err != nil || got != c.want {
					t.Errorf("after %s: SHOW %s = %q (%v), want %q", c.sql, c.setting, got, err, c.want)
				}
				if _, err := run(conn, mode, sendSQL(v.orders)); err != nil {
					t.Errorf("granted call after %s: %v", c.sql, err)
				}
			})
		}
	}
	want := e.cfg.Proxy.LimitedStatementTimeout
	wantShown := fmt.Sprintf("%dmin", int(want.Minutes()))
	t.Run("default_statement_timeout", func(t *testing.T) {
		conn := e.mustConnect(t, tok, pgx.QueryExecModeCacheStatement)
		if got, err := show(conn, "statement_timeout"); err != nil || got != wantShown {
			t.Errorf("a limited session's statement_timeout is %q (%v), want %q (proxy.limited_statement_timeout %s)", got, err, wantShown, want)
		}
	})
	for _, reset := range []string{"RESET statement_timeout", "SET statement_timeout TO DEFAULT", "RESET ALL"} {
		t.Run("after_"+reset, func(t *testing.T) {
			conn := e.mustConnect(t, tok, pgx.QueryExecModeSimpleProtocol)
			if _, err := run(conn, pgx.QueryExecModeSimpleProtocol, "SET statement_timeout = '2s'"); err != nil {
				t.Fatal(err)
			}
			_, err := run(conn, pgx.QueryExecModeSimpleProtocol, reset)
			t.Logf("%s: %v", reset, err)
			// Refused (42501) the session keeps its 2s; accepted it must be
			// back at the limit. Either way it is never lifted.
			want := wantShown
			if err != nil {
				want = "2s"
				wantError(t, reset, err, "ERROR", "42501")
			}
			if got, err := show(conn, "statement_timeout"); err != nil || got != want {
				t.Errorf("after %s the statement_timeout is %q (%v), want %q: the limit must not be lifted", reset, got, err, want)
			}
		})
	}
	for _, mode := range execModes {
		t.Run("SET_LOCAL/"+modeName(mode), func(t *testing.T) {
			conn := e.mustConnect(t, tok, mode)
			ctx := ctxFor(t, 15*time.Second)
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			for _, sql := range []string{"SET LOCAL statement_timeout = '1s'", "SET LOCAL lock_timeout = '2s'",
				"SET LOCAL application_name = 'local'", "SET LOCAL search_path = pgmq", "SET LOCAL TimeZone = 'UTC'"} {
				if _, err := run(conn, mode, sql); err != nil {
					t.Fatalf("%s refused: %v", sql, err)
				}
			}
			if _, err := run(conn, mode, sendSQL(v.orders)); err != nil {
				t.Errorf("granted call in the transaction: %v", err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Errorf("commit: %v", err)
			}
			if got, err := show(conn, "statement_timeout"); err != nil || got != wantShown {
				t.Errorf("after the transaction the statement_timeout is %q (%v), want %q", got, err, wantShown)
			}
		})
	}
}
