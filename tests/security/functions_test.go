package security

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/configs"
	"mqstack/internal/pgembed"
)

// Shared state through functions: what the router cannot see into (DO
// blocks, CALL, functions that are not pgmq's, pgmq's internal helpers) is
// refused to a limited token; a full token's objects and session state must
// not change what pgmq's functions do for anyone else.

func TestSharedStateThroughFunctionsLimitedRefused(t *testing.T) {
	v := newVictims(t)
	p := v.payments
	// A procedure and a function that wrap pgmq (made by the superuser: the
	// default role may not create in public), executable by anyone and
	// running as the caller.
	proc, fn := "sec_drop_proc_"+p, "sec_drop_fn_"+p
	sqlDirect(t, pgembed.Superuser,
		fmt.Sprintf(`CREATE PROCEDURE public.%s(q text) LANGUAGE plpgsql AS $$BEGIN PERFORM pgmq.drop_queue(q); END$$`, proc),
		fmt.Sprintf(`CREATE FUNCTION public.%s(q text) RETURNS boolean LANGUAGE sql AS $$SELECT pgmq.drop_queue(q)$$`, fn))
	t.Cleanup(func() {
		sqlDirect(t, pgembed.Superuser, "DROP PROCEDURE IF EXISTS public."+proc+"(text)", "DROP FUNCTION IF EXISTS public."+fn+"(text)")
	})
	e := newEnv(t, nil)
	by := e.newBystander(t, v.orders)
	tok := limitedToken(t, "send:"+v.orders+"*")
	evil := "evil_" + p
	cases := []struct{ name, sql string }{
		{"DO", fmt.Sprintf(`DO $$BEGIN PERFORM pgmq.drop_queue('%s'); END$$`, p)},
		{"DO_set_config", `DO $$BEGIN PERFORM set_config('search_path', 'public', false); END$$`},
		{"CALL", fmt.Sprintf("CALL public.%s('%s')", proc, p)},
		{"wrapper_function", fmt.Sprintf("SELECT public.%s('%s')", fn, p)},
		{"CREATE_FUNCTION", fmt.Sprintf("CREATE FUNCTION public.%s() RETURNS int LANGUAGE sql AS 'SELECT 1'", evil)},
		{"CREATE_SCHEMA", "CREATE SCHEMA " + evil},
		{"pg_sleep", "SELECT pg_sleep(1)"},
		{"internal_send_batch", fmt.Sprintf(`SELECT * FROM pgmq._send_batch('%s', ARRAY['{}'::jsonb], NULL, now())`, p)},
		{"internal_belongs_to_pgmq", fmt.Sprintf("SELECT pgmq._belongs_to_pgmq('q_%s')", p)},
		{"internal_partman_schema", "SELECT pgmq._get_pg_partman_schema()"},
		{"internal_validate_batch", `SELECT pgmq._validate_batch_params(ARRAY['{}'::jsonb], NULL)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("%s", c.sql)
			for _, mode := range execModes {
				t.Run(modeName(mode), func(t *testing.T) {
					before := stateOf(t, p)
					conn := e.mustConnect(t, tok, mode)
					start := time.Now()
					_, err := run(conn, mode, c.sql)
					wantError(t, c.name, err, "ERROR", "42501")
					if c.name == "pg_sleep" && time.Since(start) >= time.Second {
						t.Errorf("pg_sleep ran (%s)", time.Since(start))
					}
					untouched(t, p, before)
					e.serves(t, conn, tok, sendSQL(v.orders), by)
				})
			}
			var n int
			if err := direct(t, pgembed.Superuser).QueryRow(ctxFor(t, 10*time.Second),
				`SELECT (SELECT count(*) FROM pg_proc WHERE proname = $1) + (SELECT count(*) FROM pg_namespace WHERE nspname = $1)`, evil).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s was created", evil)
				sqlDirect(t, pgembed.Superuser, "DROP FUNCTION IF EXISTS public."+evil+"()", "DROP SCHEMA IF EXISTS "+evil)
			}
		})
	}
}

// The default role cannot create schemas (no CREATE on the database), so
// a full token cannot either: Postgres itself refuses with 42501.
func TestSharedStateThroughFunctionsFullTokenCreateSchema(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, nil)
	tok := fullToken(t)
	schema := "evil_" + v.orders
	t.Cleanup(func() { sqlDirect(t, pgembed.Superuser, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	for _, mode := range execModes {
		t.Run(modeName(mode), func(t *testing.T) {
			conn := e.mustConnect(t, tok, mode)
			_, err := run(conn, mode, "CREATE SCHEMA "+schema)
			wantError(t, "CREATE SCHEMA", err, "ERROR", "42501")
			if err == nil {
				run(conn, mode, "DROP SCHEMA "+schema)
			}
			e.serves(t, conn, tok, sendSQL(v.orders), nil)
		})
	}
	t.Run("direct_as_mq", func(t *testing.T) {
		_, err := direct(t, "mq").Exec(ctxFor(t, 10*time.Second), "CREATE SCHEMA "+schema+"_direct")
		wantError(t, "CREATE SCHEMA as the default role", err, "ERROR", "42501")
		if err == nil {
			sqlDirect(t, pgembed.Superuser, "DROP SCHEMA IF EXISTS "+schema+"_direct")
		}
	})
}

// shadowCheck sends as a limited send:orders token, on the wire in every
// exec mode and over REST, and checks each message lands in orders (not
// in payments) dated now.
func (e *env) shadowCheck(t *testing.T, v victims, prefix string) {
	tok := limitedToken(t, "send:"+v.orders)
	check := func(t *testing.T, send func() error) {
		ordersBefore, paymentsBefore := stateOf(t, v.orders), stateOf(t, v.payments)
		if err := send(); err != nil {
			t.Fatalf("the limited token's send: %v", err)
		}
		if got := stateOf(t, v.orders); got.Messages != ordersBefore.Messages+1 {
			t.Errorf("orders went from %d to %d messages, want one more", ordersBefore.Messages, got.Messages)
		}
		untouched(t, v.payments, paymentsBefore)
		var age float64
		if err := direct(t, pgembed.Superuser).QueryRow(ctxFor(t, 10*time.Second),
			fmt.Sprintf("SELECT extract(epoch FROM now() - least(enqueued_at, vt))::float8 FROM pgmq.q_%s ORDER BY msg_id DESC LIMIT 1", v.orders)).Scan(&age); err != nil {
			t.Fatal(err)
		}
		if age > 60 || age < -60 {
			t.Errorf("the new message is dated %.0f s before now", age)
		}
	}
	for _, mode := range execModes {
		t.Run(prefix+"wire/"+modeName(mode), func(t *testing.T) {
			conn := e.mustConnect(t, tok, mode)
			check(t, func() error { _, err := run(conn, mode, sendSQL(v.orders)); return err })
		})
	}
	t.Run(prefix+"rest", func(t *testing.T) {
		check(t, func() error {
			code, body := e.rest(t, tok, "send", map[string]any{"queue_name": v.orders, "msg": map[string]any{}})
			if code != http.StatusOK {
				return fmt.Errorf("HTTP %d %s", code, oneLine(string(body)))
			}
			return nil
		})
	})
}

// createAsFullToken runs statements through the proxy as a full token;
// the fix may refuse them, which is logged (the checks that follow hold
// either way).
func (e *env) createAsFullToken(t *testing.T, conn *pgx.Conn, stmts ...string) {
	for _, sql := range stmts {
		if _, err := run(conn, pgx.QueryExecModeSimpleProtocol, sql); err != nil {
			t.Logf("the full token's %q was refused: %v", oneLine(sql), err)
		}
	}
}

// A full token creates pgmq.format(text, text): pgmq.send builds its
// INSERT with format(text, VARIADIC "any"), and Postgres prefers the
// closer signature from any schema on the search_path (pinning
// search_path = pg_catalog, pgmq does not help: identical signatures
// resolve by path order, different ones do not). No session state is
// involved, so every send in the database would go to payments. A limited
// send:orders token's send must still land in orders.
func TestSharedStateThroughFunctionsShadowedBuiltins(t *testing.T) {
	v := newVictims(t)
	t.Cleanup(func() { sqlDirect(t, pgembed.Superuser, "DROP FUNCTION IF EXISTS pgmq.format(text, text)") })
	e := newEnv(t, nil)
	attacker := e.mustConnect(t, fullToken(t), pgx.QueryExecModeSimpleProtocol)
	e.createAsFullToken(t, attacker,
		fmt.Sprintf(`CREATE FUNCTION pgmq.format(fmt text, ident text) RETURNS text LANGUAGE sql AS $$SELECT pg_catalog.format(fmt, 'q_%s')$$`, v.payments))
	attacker.Close(ctxFor(t, 5*time.Second))
	e.shadowCheck(t, v, "")
}

// A full token creates pgmq.clock_timestamp() and pgmq.now() (the
// signatures of the builtins pgmq.send uses to date a message), then puts
// pgmq before pg_catalog on its backend's search_path from inside a DO
// block. On a pool of one backend, a limited send:orders token's send,
// while the attacker is connected and after it left, must be dated now.
func TestSharedStateThroughFunctionsSearchPathInDO(t *testing.T) {
	v := newVictims(t)
	t.Cleanup(func() {
		sqlDirect(t, pgembed.Superuser, "DROP FUNCTION IF EXISTS pgmq.clock_timestamp()", "DROP FUNCTION IF EXISTS pgmq.now()")
	})
	e := newEnv(t, func(c *configs.Config) { c.Pool.Size = 1 })
	attacker := e.mustConnect(t, fullToken(t), pgx.QueryExecModeSimpleProtocol)
	e.createAsFullToken(t, attacker,
		`CREATE FUNCTION pgmq.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$`,
		`CREATE FUNCTION pgmq.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$`,
		`DO $$BEGIN PERFORM set_config('search_path', 'pgmq, pg_catalog', false); END$$`)
	e.shadowCheck(t, v, "attacker_connected/")
	attacker.Close(ctxFor(t, 5*time.Second))
	e.shadowCheck(t, v, "attacker_gone/")
}
