package security

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/configs"
)

// Prepared statement isolation: clients share backends, and the proxy
// shares prepared statements between them, so DEALLOCATE, DISCARD and a
// protocol Close act on the client's own statements only (answered by the
// proxy); none reaches a shared backend as sent. The victim is a pgx
// client in QueryExecModeCacheStatement whose send is prepared on the one
// backend of the pool; after every attack its next send must work (no
// 26000).

// pgxStatementName is the name pgx's statement cache gives sql (the
// victim's client-side name).
func pgxStatementName(sql string) string {
	d := sha256.Sum256([]byte(sql))
	return "stmtcache_" + hex.EncodeToString(d[:24])
}

// proxyStatementName is the name the proxy gives sql (no parameter types)
// on backends: any attacker can compute it from the statement text.
func proxyStatementName(sql string) string {
	d := sha256.Sum256([]byte(sql))
	return "mqs_" + hex.EncodeToString(d[:12])
}

// backendStatementNames are the names a full token reads from
// pg_prepared_statements on the pool's one backend, plus the computed one
// for victimSQL (whatever the proxy names it now, the attacker never
// prepared any of them).
func (e *env) backendStatementNames(t testing.TB, victimSQL string) []string {
	t.Helper()
	names := []string{proxyStatementName(victimSQL)}
	conn := e.mustConnect(t, fullToken(t), pgx.QueryExecModeSimpleProtocol)
	rows, err := conn.Query(ctxFor(t, 10*time.Second), "SELECT name FROM pg_prepared_statements", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Logf("pg_prepared_statements: %v", err)
		return names
	}
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil && n != names[0] && n != "" {
			names = append(names, n)
		}
	}
	rows.Close()
	conn.Close(ctxFor(t, 5*time.Second))
	return names
}

type stmtAttack struct {
	name string
	// sql builds the statements from the victim's backend and pgx names.
	sql func(backend []string, pgxName string) []string
	// code is the SQLSTATE wanted ("" for success); extended is also
	// accepted when pgx sends the statement with the extended protocol
	// (Postgres refuses a multi-statement Parse with 42601 by itself).
	code, extended string
	// ownCopy: the attacker first prepares the victim's statement text
	// under its own name "mine" (the proxy shares one backend statement
	// between clients that prepare the same text).
	ownCopy bool
}

var stmtAttacks = []stmtAttack{
	{name: "DEALLOCATE_ALL", sql: fixed("DEALLOCATE ALL")},
	{name: "deallocate_all_lower", sql: fixed("deallocate all")},
	{name: "DEALLOCATE_PREPARE_ALL", sql: fixed("DEALLOCATE PREPARE ALL")},
	{name: "DISCARD_ALL", sql: fixed("DISCARD ALL")},
	{name: "DISCARD_PLANS", sql: fixed("DISCARD PLANS")},
	{name: "SELECT_1_then_DEALLOCATE_ALL", sql: fixed("SELECT 1; DEALLOCATE ALL"), code: "42501", extended: "42601"},
	{name: "DEALLOCATE_backend_name", code: "26000", sql: func(b []string, _ string) []string {
		var out []string
		for _, n := range b {
			out = append(out, "DEALLOCATE "+n)
		}
		return out
	}},
	{name: "DEALLOCATE_PREPARE_backend_name", code: "26000", sql: func(b []string, _ string) []string {
		return []string{"DEALLOCATE PREPARE " + b[0]}
	}},
	{name: "DEALLOCATE_victims_pgx_name", code: "26000", sql: func(_ []string, p string) []string {
		return []string{"DEALLOCATE " + p}
	}},
	{name: "DEALLOCATE_mqs_anything", code: "26000", sql: fixed("DEALLOCATE mqs_0123456789abcdef01234567")},
	{name: "DEALLOCATE_own_copy_of_victims_statement", ownCopy: true, sql: fixed("DEALLOCATE mine")},
	{name: "DEALLOCATE_ALL_holding_a_copy", ownCopy: true, sql: fixed("DEALLOCATE ALL")},
	{name: "DISCARD_ALL_holding_a_copy", ownCopy: true, sql: fixed("DISCARD ALL")},
}

func fixed(sql string) func([]string, string) []string {
	return func([]string, string) []string { return []string{sql} }
}

func TestPreparedStatementIsolationSQL(t *testing.T) {
	v := newVictims(t)
	for _, tk := range sendTokens {
		tok := tk.mint(t, v)
		for _, a := range stmtAttacks {
			t.Run(tk.name+"/"+a.name, func(t *testing.T) {
				e := newEnv(t, func(c *configs.Config) { c.Pool.Size = 1 })
				for _, mode := range execModes {
					t.Run(modeName(mode), func(t *testing.T) {
						// A statement of its own per mode, so that the
						// cases do not share one.
						victimSQL := fmt.Sprintf("%s /* %s %s */", bystanderSQL, a.name, modeName(mode))
						victim := e.newBystanderSQL(t, v.orders, victimSQL)
						names := e.backendStatementNames(t, victimSQL)
						attacker := e.mustConnect(t, tok, mode)
						if a.ownCopy {
							if _, err := attacker.Prepare(ctxFor(t, 10*time.Second), "mine", victimSQL); err != nil {
								t.Fatalf("the attacker's Parse of the victim's statement text: %v", err)
							}
						}
						for _, sql := range a.sql(names, pgxStatementName(victimSQL)) {
							_, err := run(attacker, mode, sql)
							switch {
							case a.code == "" && err != nil:
								t.Errorf("%s: %v, want it answered (it acts on the client's own statements)", sql, err)
							case a.code != "" && mode != pgx.QueryExecModeSimpleProtocol && a.extended != "":
								wantError(t, sql, err, "ERROR", a.code, a.extended)
							case a.code != "":
								wantError(t, sql, err, "ERROR", a.code)
							}
						}
						for i := 0; i < 2; i++ {
							if err := victim.send(); err != nil {
								t.Errorf("the victim's cached-statement send %d after the attack: %v", i+1, err)
							}
						}
						e.serves(t, attacker, tok, sendSQL(v.orders), nil)
					})
				}
			})
		}
	}
}

// A protocol Close of a statement the client never prepared is answered
// CloseComplete and changes nothing.
func TestPreparedStatementIsolationProtocolClose(t *testing.T) {
	v := newVictims(t)
	for _, tk := range sendTokens {
		tok := tk.mint(t, v)
		for _, target := range []string{"backend_name", "victims_pgx_name", "both_and_unnamed", "own_copy_of_victims_statement"} {
			t.Run(tk.name+"/"+target, func(t *testing.T) {
				e := newEnv(t, func(c *configs.Config) { c.Pool.Size = 1 })
				victimSQL := fmt.Sprintf("%s /* close %s */", bystanderSQL, target)
				victim := e.newBystanderSQL(t, v.orders, victimSQL)
				var names []string
				switch target {
				case "backend_name":
					names = e.backendStatementNames(t, victimSQL)
				case "victims_pgx_name":
					names = []string{pgxStatementName(victimSQL)}
				default:
					names = append(e.backendStatementNames(t, victimSQL), pgxStatementName(victimSQL), "")
				}
				r := e.mustRaw(t, tok, nil)
				if target == "own_copy_of_victims_statement" {
					// The attacker's own statement, with the victim's text:
					// closing it must not close the backend statement the
					// victim shares.
					names = []string{"mine"}
					res, err := r.roundTrip(&pgproto3.Parse{Name: "mine", Query: victimSQL}, &pgproto3.Sync{})
					if err != nil || res.err() != nil {
						t.Fatalf("Parse of the victim's statement text: %v %v", err, res.err())
					}
				}
				var msgs []pgproto3.FrontendMessage
				for _, n := range names {
					msgs = append(msgs, &pgproto3.Close{ObjectType: 'S', Name: n})
				}
				msgs = append(msgs, &pgproto3.Sync{})
				res, err := r.roundTrip(msgs...)
				if err != nil || res.err() != nil {
					t.Errorf("Close of %v: %v %v", names, err, res.err())
				}
				closes := strings.Count(strings.Join(res.Kinds, " "), "CloseComplete")
				if closes != len(names) {
					t.Errorf("Close of %d names: %d CloseComplete (%v)", len(names), closes, res.Kinds)
				}
				for i := 0; i < 2; i++ {
					if err := victim.send(); err != nil {
						t.Errorf("the victim's cached-statement send %d after the Close: %v", i+1, err)
					}
				}
				if _, err := r.query(sendSQL(v.orders)); err != nil {
					t.Errorf("granted call on the same connection: %v", err)
				}
				e.serves(t, nil, tok, sendSQL(v.orders), nil)
			})
		}
	}
}

// The client's own statements: DEALLOCATE name, DEALLOCATE ALL and a
// protocol Close forget them, so a Bind of the name gets 26000.
func TestPreparedStatementIsolationOwnStatements(t *testing.T) {
	v := newVictims(t)
	for _, tk := range sendTokens {
		tok := tk.mint(t, v)
		t.Run(tk.name, func(t *testing.T) {
			e := newEnv(t, func(c *configs.Config) { c.Pool.Size = 1 })
			victim := e.newBystanderSQL(t, v.orders, bystanderSQL+" /* own */")
			bind := func(name string) []pgproto3.FrontendMessage {
				return []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: name}, &pgproto3.Execute{}, &pgproto3.Sync{}}
			}
			forget := map[string]func(r *rawConn, name string) error{
				"DEALLOCATE_name": func(r *rawConn, name string) error { _, err := r.query("DEALLOCATE " + name); return err },
				"DEALLOCATE_ALL":  func(r *rawConn, name string) error { _, err := r.query("DEALLOCATE ALL"); return err },
				"DISCARD_ALL":     func(r *rawConn, name string) error { _, err := r.query("DISCARD ALL"); return err },
				"Close": func(r *rawConn, name string) error {
					res, err := r.roundTrip(&pgproto3.Close{ObjectType: 'S', Name: name}, &pgproto3.Sync{})
					if err == nil {
						err = res.err()
					}
					if err == nil && !res.has("CloseComplete") {
						err = fmt.Errorf("no CloseComplete: %v", res.Kinds)
					}
					return err
				},
			}
			for how, f := range forget {
				t.Run(how, func(t *testing.T) {
					r := e.mustRaw(t, tok, nil)
					name := "mine_" + strings.ToLower(how)
					res, err := r.roundTrip(&pgproto3.Parse{Name: name, Query: "SELECT 1"}, &pgproto3.Sync{})
					if err != nil || res.err() != nil || !res.has("ParseComplete") {
						t.Fatalf("Parse %s: %v %v %v", name, err, res.err(), res.Kinds)
					}
					res, err = r.roundTrip(bind(name)...)
					if err != nil || res.err() != nil || res.Rows != 1 {
						t.Fatalf("Bind %s before forgetting it: %v %v %v", name, err, res.err(), res.Kinds)
					}
					if err := f(r, name); err != nil {
						t.Fatalf("%s: %v", how, err)
					}
					res, err = r.roundTrip(bind(name)...)
					if err != nil {
						t.Fatalf("Bind after %s: %v", how, err)
					}
					wantError(t, "Bind of "+name+" after "+how, res.err(), "ERROR", "26000")
					if _, err := r.query(sendSQL(v.orders)); err != nil {
						t.Errorf("granted call on the same connection: %v", err)
					}
					if err := victim.send(); err != nil {
						t.Errorf("the victim's send: %v", err)
					}
				})
			}
			t.Run("pgx_Prepare_then_DEALLOCATE", func(t *testing.T) {
				conn := e.mustConnect(t, tok, pgx.QueryExecModeCacheStatement)
				ctx := ctxFor(t, 15*time.Second)
				if _, err := conn.Prepare(ctx, "mine_pgx", "SELECT 1"); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Exec(ctx, "DEALLOCATE mine_pgx"); err != nil {
					t.Fatalf("DEALLOCATE mine_pgx: %v", err)
				}
				_, err := conn.Exec(ctx, "mine_pgx") // pgx still holds it: a Bind of the name
				wantError(t, "Bind of mine_pgx after DEALLOCATE", err, "ERROR", "26000")
				if err := victim.send(); err != nil {
					t.Errorf("the victim's send: %v", err)
				}
			})
		})
	}
}
