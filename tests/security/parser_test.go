package security

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/configs"
)

// Parser differential: the router reads SQL as Postgres does with
// standard_conforming_strings=on and an ASCII-safe client encoding. A
// client that changes either makes Postgres read a statement differently
// from the router, so both are refused for every token: FATAL 42501 at
// login, ERROR 42501 later.

// tokenKind is a token an attack is tried with.
type tokenKind struct {
	name string
	mint func(t testing.TB, v victims) string
}

// sendTokens: a token limited to sending to the orders queues, and a full
// token (no grants).
var sendTokens = []tokenKind{
	{"limited", func(t testing.TB, v victims) string { return limitedToken(t, "send:"+v.orders+"*") }},
	{"full", func(t testing.TB, v victims) string { return fullToken(t) }},
}

// scsOffStartup are the ways to ask for standard_conforming_strings=off in
// a startup message.
var scsOffStartup = []struct {
	name   string
	params map[string]string
}{
	{"param_off", map[string]string{"standard_conforming_strings": "off"}},
	{"param_false", map[string]string{"standard_conforming_strings": "false"}},
	{"param_0", map[string]string{"standard_conforming_strings": "0"}},
	{"param_mixed_case", map[string]string{"Standard_Conforming_Strings": "OFF"}},
	{"options_-c", map[string]string{"options": "-c standard_conforming_strings=off"}},
	{"options_-c_joined", map[string]string{"options": "-cstandard_conforming_strings=off"}},
	{"options_--dashes", map[string]string{"options": "--standard-conforming-strings=off"}},
	{"options_second", map[string]string{"options": "-c application_name=x -c standard_conforming_strings=off"}},
}

// asciiUnsafeEncodings are the client encodings (in spellings Postgres
// accepts, checked against Postgres 15) whose multibyte characters may
// contain ASCII bytes such as a backslash.
var asciiUnsafeEncodings = []string{
	"SJIS", "Shift_JIS", "sjis", "SHIFTJIS", "Shift-JIS", "MSKANJI", "WIN932", "SHIFT_JIS_2004", "SHIFTJIS2004",
	"BIG5", "WIN950", "GBK", "WIN936", "UHC", "WIN949", "GB18030", "JOHAB",
}

// afterRefusedSet checks a session whose SET was refused: the setting kept
// its value, and the stack serves.
func (e *env) afterRefusedSet(t *testing.T, conn *pgx.Conn, setting, want, tok string, v victims, by *bystander) {
	t.Helper()
	if got, err := show(conn, setting); err != nil {
		t.Errorf("SHOW %s after the refusal: %v", setting, err)
	} else if !strings.EqualFold(got, want) {
		t.Errorf("%s is %q after the refused SET, want %q", setting, got, want)
	}
	e.serves(t, conn, tok, sendSQL(v.orders), by)
	e.freshSetting(t, tok, setting, want)
}

// freshSetting checks the setting a fresh session of tok sees.
func (e *env) freshSetting(t *testing.T, tok, setting, want string) {
	t.Helper()
	conn, err := e.connect(t, tok, pgx.QueryExecModeSimpleProtocol, nil)
	if err != nil {
		t.Errorf("fresh connection: %v", err)
		return
	}
	if got, err := show(conn, setting); err != nil {
		t.Errorf("SHOW %s on a fresh connection: %v", setting, err)
	} else if !strings.EqualFold(got, want) {
		t.Errorf("a fresh session sees %s = %q, want %q", setting, got, want)
	}
}

// Logins that are refused share one stack per token: a refused login
// leaves nothing behind (and one that is not refused fails its own case).
func TestParserDifferentialStandardConformingStringsAtStartup(t *testing.T) {
	v := newVictims(t)
	for _, tk := range sendTokens {
		e := newEnv(t, nil)
		tok := tk.mint(t, v)
		by := e.newBystander(t, v.orders)
		for _, c := range scsOffStartup {
			t.Run(tk.name+"/raw/"+c.name, func(t *testing.T) {
				r, err := e.rawConnect(t, tok, c.params)
				wantError(t, "login", err, "FATAL", "42501")
				if err == nil {
					r.query("SELECT 1") // let the session touch a backend
				}
				e.serves(t, nil, tok, sendSQL(v.orders), by)
				e.freshSetting(t, tok, "standard_conforming_strings", "on")
			})
		}
		for _, c := range []struct {
			name   string
			params map[string]string
		}{
			{"param", map[string]string{"standard_conforming_strings": "off"}},
			{"options", map[string]string{"options": "-c standard_conforming_strings=off"}},
		} {
			t.Run(tk.name+"/pgx/"+c.name, func(t *testing.T) {
				conn, err := e.connect(t, tok, pgx.QueryExecModeCacheStatement, c.params)
				wantError(t, "login", err, "FATAL", "42501")
				if err == nil {
					run(conn, pgx.QueryExecModeSimpleProtocol, "SELECT 1")
				}
				e.serves(t, nil, tok, sendSQL(v.orders), by)
				e.freshSetting(t, tok, "standard_conforming_strings", "on")
			})
		}
		t.Run(tk.name+"/psql/PGOPTIONS", func(t *testing.T) {
			r := e.psql(t, tok, []string{"PGOPTIONS=-c standard_conforming_strings=off"}, "postgres", "SHOW standard_conforming_strings")
			wantPsqlLoginRefused(t, "psql with PGOPTIONS", r, "standard_conforming_strings")
			e.serves(t, nil, tok, sendSQL(v.orders), by)
			e.freshSetting(t, tok, "standard_conforming_strings", "on")
		})
	}
}

// scsOffStatements turn standard_conforming_strings off in a session; a
// LOCAL: prefix means inside a transaction block.
var scsOffStatements = []string{
	"SET standard_conforming_strings = off",
	"SET standard_conforming_strings TO off",
	"SET standard_conforming_strings = 'off'",
	"SET standard_conforming_strings = false",
	"SET standard_conforming_strings = 0",
	"SET SESSION standard_conforming_strings = off",
	"set Standard_Conforming_Strings to 'OFF'",
	"SELECT set_config('standard_conforming_strings', 'off', false)",
	"LOCAL:SET LOCAL standard_conforming_strings = off",
	"LOCAL:SELECT set_config('standard_conforming_strings', 'off', true)",
}

// encodingStatements switch the session to an ASCII-unsafe client encoding.
var encodingStatements = []string{
	"SET client_encoding = 'SJIS'",
	"SET client_encoding TO 'BIG5'",
	"SET client_encoding = GBK",
	"SET SESSION client_encoding = 'UHC'",
	"SET client_encoding = 'Shift_JIS'",
	"SET client_encoding = 'WIN932'",
	"SET NAMES 'SJIS'",
	"set names 'gb18030'",
	"SELECT set_config('client_encoding', 'JOHAB', false)",
	"SELECT set_config('client_encoding', 'WIN950', false)",
	"LOCAL:SET LOCAL client_encoding = 'SJIS'",
}

// refusedSetting runs each statement with each token in all five exec modes
// and expects ERROR 42501 with setting left at want.
func refusedSetting(t *testing.T, statements []string, setting, want string) {
	v := newVictims(t)
	for _, tk := range sendTokens {
		e := newEnv(t, nil)
		tok := tk.mint(t, v)
		by := e.newBystander(t, v.orders)
		for i, stmt := range statements {
			local := strings.HasPrefix(stmt, "LOCAL:")
			sql := strings.TrimPrefix(stmt, "LOCAL:")
			t.Run(fmt.Sprintf("%s/%02d", tk.name, i), func(t *testing.T) {
				t.Logf("%s", stmt)
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
							if err := tx.Rollback(ctx); err != nil {
								t.Errorf("rollback: %v", err)
							}
						} else {
							_, err := run(conn, mode, sql)
							wantError(t, sql, err, "ERROR", "42501")
						}
						e.afterRefusedSet(t, conn, setting, want, tok, v, by)
					})
				}
			})
		}
		t.Run(tk.name+"/psql", func(t *testing.T) {
			sql := strings.TrimPrefix(statements[0], "LOCAL:")
			r := e.psql(t, tok, nil, "postgres", sql+"; SHOW "+setting)
			wantPsqlError(t, sql, r, "42501")
			e.serves(t, nil, tok, sendSQL(v.orders), by)
			e.freshSetting(t, tok, setting, want)
		})
	}
}

func TestParserDifferentialStandardConformingStringsInSession(t *testing.T) {
	refusedSetting(t, scsOffStatements, "standard_conforming_strings", "on")
}

func TestParserDifferentialClientEncodingAtStartup(t *testing.T) {
	v := newVictims(t)
	for _, tk := range sendTokens {
		e := newEnv(t, nil)
		tok := tk.mint(t, v)
		by := e.newBystander(t, v.orders)
		for _, enc := range asciiUnsafeEncodings {
			t.Run(tk.name+"/raw/"+enc, func(t *testing.T) {
				r, err := e.rawConnect(t, tok, map[string]string{"client_encoding": enc})
				wantError(t, "login with client_encoding "+enc, err, "FATAL", "42501")
				if err == nil {
					r.query("SELECT 1")
				}
				e.serves(t, nil, tok, sendSQL(v.orders), by)
				e.freshSetting(t, tok, "client_encoding", "UTF8")
			})
		}
		t.Run(tk.name+"/raw/options", func(t *testing.T) {
			_, err := e.rawConnect(t, tok, map[string]string{"options": "-c client_encoding=SJIS"})
			wantError(t, "login with options -c client_encoding=SJIS", err, "FATAL", "42501")
			e.serves(t, nil, tok, sendSQL(v.orders), by)
		})
		t.Run(tk.name+"/psql/PGCLIENTENCODING", func(t *testing.T) {
			// Every spelling is tried by the raw client above; psql tries
			// the canonical names.
			for _, enc := range []string{"SJIS", "SHIFT_JIS_2004", "BIG5", "GBK", "UHC", "GB18030", "JOHAB"} {
				r := e.psql(t, tok, []string{"PGCLIENTENCODING=" + enc}, "postgres", "SHOW client_encoding")
				wantPsqlLoginRefused(t, "PGCLIENTENCODING="+enc, r, "encoding")
			}
			e.serves(t, nil, tok, sendSQL(v.orders), by)
			e.freshSetting(t, tok, "client_encoding", "UTF8")
		})
	}
}

func TestParserDifferentialClientEncodingInSession(t *testing.T) {
	refusedSetting(t, encodingStatements, "client_encoding", "UTF8")
}

// The safe spellings keep working: UTF8 and LATIN1 at startup and in
// session, and standard_conforming_strings=on.
func TestParserDifferentialSafeSettingsAllowed(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, nil)
	for _, tk := range sendTokens {
		tok := tk.mint(t, v)
		for _, c := range []struct {
			name   string
			params map[string]string
		}{
			{"UTF8", map[string]string{"client_encoding": "UTF8"}},
			{"utf-8", map[string]string{"client_encoding": "utf-8"}},
			{"LATIN1", map[string]string{"client_encoding": "LATIN1"}},
			{"scs_on", map[string]string{"standard_conforming_strings": "on"}},
			{"options_scs_on_LATIN1", map[string]string{"options": "-c standard_conforming_strings=on -c client_encoding=LATIN1"}},
		} {
			t.Run(tk.name+"/raw/"+c.name, func(t *testing.T) {
				r, err := e.rawConnect(t, tok, c.params)
				if err != nil {
					t.Fatalf("login with %v refused: %v", c.params, err)
				}
				if _, err := r.query(sendSQL(v.orders)); err != nil {
					t.Errorf("granted call: %v", err)
				}
			})
		}
		t.Run(tk.name+"/psql/LATIN1", func(t *testing.T) {
			r := e.psql(t, tok, []string{"PGCLIENTENCODING=LATIN1"}, "postgres", sendSQL(v.orders))
			if r.Exit != 0 {
				t.Errorf("psql with PGCLIENTENCODING=LATIN1: exit %d %s", r.Exit, oneLine(r.Stderr))
			}
		})
		allowed := []string{"SET client_encoding = 'LATIN1'", "SET NAMES 'UTF8'", "SET client_encoding TO 'UTF8'",
			"SET standard_conforming_strings = on"}
		if tk.name == "full" {
			// set_config is not on a limited token's allowlist (SET is).
			allowed = append(allowed, "SELECT set_config('standard_conforming_strings', 'on', false)")
		}
		for _, sql := range allowed {
			for _, mode := range execModes {
				t.Run(fmt.Sprintf("%s/%s/%s", tk.name, modeName(mode), sql), func(t *testing.T) {
					conn := e.mustConnect(t, tok, mode)
					if _, err := run(conn, mode, sql); err != nil {
						t.Errorf("%s refused: %v", sql, err)
					}
					after := mode
					if after == pgx.QueryExecModeSimpleProtocol && strings.Contains(sql, "LATIN1") {
						after = pgx.QueryExecModeExec // pgx runs simple queries in UTF8 only
					}
					if _, err := run(conn, after, sendSQL(v.orders)); err != nil {
						t.Errorf("granted call after %s: %v", sql, err)
					}
				})
			}
		}
	}
}

// smuggleSCS looks, read with standard_conforming_strings=on (as the
// router reads), like a send to orders and two string constants. Read with
// it off (a backslash escapes a quote), the second constant ends early and what
// the router took for its text runs: a read of payments and a drop of it.
func smuggleSCS(v victims) string {
	return fmt.Sprintf(`SELECT pgmq.send('%s', '{}'), 'A\', ' AS x; SELECT * FROM pgmq.read($$%s$$, 0, 1); SELECT pgmq.drop_queue($$%s$$); SELECT ' AS y --'`,
		v.orders, v.payments, v.payments)
}

// smuggleSJIS is the same through a client encoding. The router reads
// UTF-8: "\u00d5" (bytes C3 95) then a backslash that escapes the quote
// after it, so all that follows is a string. In SJIS, C3 is a one-byte
// katakana and 95 5C one character, so the backslash is gone, the quote
// ends the string and the read and the drop run.
func smuggleSJIS(v victims) string {
	return fmt.Sprintf("SELECT pgmq.send('%s', '{}'), E'\u00d5\\' AS x; SELECT * FROM pgmq.read($$%s$$, 0, 1); SELECT pgmq.drop_queue($$%s$$); SELECT E' AS y --'",
		v.orders, v.payments, v.payments)
}

// The original exploit: a send:orders* token hides a read and a drop of
// payments in what the router reads as a string literal. Refusing the
// setting (at login or SET) means the smuggled statements never run. The
// pool has one backend, warmed by another client, so that a session that
// got through would run on a backend that has pgmq's functions compiled.
func TestParserDifferentialSmuggle(t *testing.T) {
	type attack struct {
		name string
		run  func(t *testing.T, e *env, tok string, v victims)
	}
	rawSmuggle := func(params map[string]string, set, smuggle func(victims) string) func(*testing.T, *env, string, victims) {
		return func(t *testing.T, e *env, tok string, v victims) {
			r, err := e.rawConnect(t, tok, params)
			if set == nil {
				wantError(t, "login", err, "FATAL", "42501")
				if err != nil {
					return
				}
			} else if err != nil {
				t.Fatalf("login: %v", err)
			} else {
				_, err := r.query(set(v))
				wantError(t, set(v), err, "ERROR", "42501")
			}
			res, err := r.query(smuggle(v))
			t.Logf("the smuggle afterwards: %v (%d rows)", err, res.Rows)
		}
	}
	setSQL := func(s string) func(victims) string { return func(victims) string { return s } }
	attacks := []attack{
		{"startup_scs_off", rawSmuggle(map[string]string{"standard_conforming_strings": "off"}, nil, smuggleSCS)},
		{"options_scs_off", rawSmuggle(map[string]string{"options": "-c standard_conforming_strings=off"}, nil, smuggleSCS)},
		{"SET_scs_off", rawSmuggle(nil, setSQL("SET standard_conforming_strings = off"), smuggleSCS)},
		{"set_config_scs_off", rawSmuggle(nil, setSQL("SELECT set_config('standard_conforming_strings', 'off', false)"), smuggleSCS)},
		{"psql_PGOPTIONS_scs_off", func(t *testing.T, e *env, tok string, v victims) {
			r := e.psql(t, tok, []string{"PGOPTIONS=-c standard_conforming_strings=off"}, "postgres", smuggleSCS(v))
			wantPsqlLoginRefused(t, "psql with PGOPTIONS", r, "standard_conforming_strings")
		}},
		{"startup_SJIS", rawSmuggle(map[string]string{"client_encoding": "SJIS"}, nil, smuggleSJIS)},
		{"SET_client_encoding_SJIS", rawSmuggle(nil, setSQL("SET client_encoding = 'SJIS'"), smuggleSJIS)},
		{"SET_NAMES_SJIS", rawSmuggle(nil, setSQL("SET NAMES 'SJIS'"), smuggleSJIS)},
	}
	v := newVictims(t)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			refill(t, v.payments)
			e := newEnv(t, func(c *configs.Config) { c.Pool.Size = 1 })
			tok := limitedToken(t, "send:"+v.orders+"*")
			by := e.newBystander(t, v.orders)
			before := stateOf(t, v.payments)
			a.run(t, e, tok, v)
			untouched(t, v.payments, before)
			e.serves(t, nil, tok, sendSQL(v.orders), by)
		})
	}
}
