package security

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/configs"
)

// Denied calls name whatever queue the client likes; only queues that
// exist take one of metrics.max_queues label slots, so junk names cannot
// push a real new queue into "_other".
func TestMinorMetricsLabelCap(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, func(c *configs.Config) { c.Metrics.MaxQueues = 5 })
	tok := limitedToken(t, "send:"+v.orders+"*")
	junk := func(i int) string { return fmt.Sprintf("junk_%s_%02d", v.orders, i) }
	conn := e.mustConnect(t, tok, pgx.QueryExecModeSimpleProtocol)
	for i := 0; i < 50; i++ {
		_, err := run(conn, pgx.QueryExecModeSimpleProtocol, sendSQL(junk(i)))
		if pe := pgError(err); pe == nil || pe.Code != "42501" {
			t.Fatalf("send to %s: %v, want 42501", junk(i), err)
		}
	}
	for i := 50; i < 60; i++ {
		if code, _ := e.rest(t, tok, "send", map[string]any{"queue_name": junk(i), "msg": map[string]any{}}); code != http.StatusForbidden {
			t.Fatalf("REST send to %s: HTTP %d, want 403", junk(i), code)
		}
	}
	wire, rest := v.orders+"_new", v.orders+"_rest"
	createQueue(t, wire, 0)
	createQueue(t, rest, 0)
	if _, err := run(conn, pgx.QueryExecModeSimpleProtocol, sendSQL(wire)); err != nil {
		t.Fatalf("send to a new queue: %v", err)
	}
	e.restSends(t, tok, rest)
	labelled := func(body, q string) bool { return strings.Contains(body, fmt.Sprintf(`queue=%q`, q)) }
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		body = e.scrape(t)
		if labelled(body, wire) && labelled(body, rest) || time.Now().After(deadline) {
			break
		}
	}
	for _, q := range []string{wire, rest} {
		if !labelled(body, q) {
			t.Errorf("queue %s has no label of its own in /metrics after 60 denied calls to junk names (metrics.max_queues 5)", q)
		}
	}
	if strings.Contains(body, `queue="junk_`) {
		t.Errorf("denied calls to queues that do not exist took label slots")
	}
}

func (e *env) scrape(t testing.TB) string {
	t.Helper()
	resp, err := http.Get("http://" + e.st.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// bind_topic(pattern, queue) makes every message sent under matching keys
// readable from queue: it needs create on the queue and read on topics
// covering the pattern (scope mq.read:topic:<glob>, or a grant entry with
// "topics" and op read).
func TestMinorBindTopic(t *testing.T) {
	v := newVictims(t)
	q := v.orders
	e := newEnv(t, nil)
	onlyCreate := limitedToken(t, "create:"+q)
	readOrders := signClaims(t, jwt.MapClaims{"sub": "read-orders-topics", "scope": "mq.create:" + q + " mq.read:topic:orders.*"})
	readAllScope := signClaims(t, jwt.MapClaims{"sub": "read-all-topics", "scope": "mq.create:" + q + " mq.read:topic:*"})
	readAllClaim := signClaims(t, jwt.MapClaims{"sub": "read-all-topics-claim", "mq": map[string]any{"grants": []any{
		map[string]any{"queues": []string{q}, "ops": []string{"create"}},
		map[string]any{"topics": []string{"*"}, "ops": []string{"read"}},
	}}})
	refused := []struct{ name, tok, pattern string }{
		{"only_create/#", onlyCreate, "#"},
		{"only_create/orders.#", onlyCreate, "orders.#"},
		{"only_create/*.payments", onlyCreate, "*.payments"},
		{"read_orders_topics/#", readOrders, "#"},
		{"read_orders_topics/payments.#", readOrders, "payments.#"},
	}
	for _, c := range refused {
		for _, mode := range execModes {
			t.Run("wire/"+c.name+"/"+modeName(mode), func(t *testing.T) {
				before := stateOf(t, q)
				conn := e.mustConnect(t, c.tok, mode)
				_, err := run(conn, mode, fmt.Sprintf("SELECT pgmq.bind_topic('%s', '%s')", c.pattern, q))
				wantError(t, "bind_topic "+c.pattern, err, "ERROR", "42501")
				untouched(t, q, before)
			})
		}
		t.Run("rest/"+c.name, func(t *testing.T) {
			before := stateOf(t, q)
			code, body := e.rest(t, c.tok, "bind_topic", map[string]any{"pattern": c.pattern, "queue_name": q})
			if code != http.StatusForbidden {
				t.Errorf("REST bind_topic %s: HTTP %d %s, want 403", c.pattern, code, oneLine(string(body)))
			}
			untouched(t, q, before)
		})
	}
	allowed := []struct{ name, tok, pattern string }{
		{"read_all_scope/#", readAllScope, "#"},
		{"read_all_scope/orders.#", readAllScope, "orders.#"},
		{"read_all_claim/#", readAllClaim, "#"},
	}
	unbind := func(t *testing.T, pattern string) {
		sqlDirect(t, "mq", fmt.Sprintf("SELECT pgmq.unbind_topic('%s', '%s')", pattern, q))
	}
	for _, c := range allowed {
		t.Run("wire/"+c.name, func(t *testing.T) {
			conn, err := e.connect(t, c.tok, pgx.QueryExecModeCacheStatement, nil)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			defer unbind(t, c.pattern)
			if _, err := run(conn, pgx.QueryExecModeCacheStatement, fmt.Sprintf("SELECT pgmq.bind_topic('%s', '%s')", c.pattern, q)); err != nil {
				t.Errorf("bind_topic %s with read on topics covering it: %v", c.pattern, err)
			}
		})
		t.Run("rest/"+c.name, func(t *testing.T) {
			defer unbind(t, c.pattern)
			code, body := e.rest(t, c.tok, "bind_topic", map[string]any{"pattern": c.pattern, "queue_name": q})
			if code != http.StatusNoContent && code != http.StatusOK {
				t.Errorf("REST bind_topic %s with read on topics covering it: HTTP %d %s", c.pattern, code, oneLine(string(body)))
			}
		})
	}
}

// Clients may name only the configured database (proxy.databases is empty
// by default).
func TestMinorDatabaseTemplate1(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, nil)
	for _, tk := range sendTokens {
		tok := tk.mint(t, v)
		t.Run(tk.name+"/pgx", func(t *testing.T) {
			cs := strings.Replace(e.connString(t, tok), "dbname=postgres", "dbname=template1", 1)
			conn, err := pgx.Connect(ctxFor(t, 15*time.Second), cs)
			if err == nil {
				conn.Close(ctxFor(t, time.Second))
			}
			wantError(t, "dbname=template1", err, "FATAL", "3D000")
		})
		t.Run(tk.name+"/raw", func(t *testing.T) {
			_, err := e.rawConnect(t, tok, map[string]string{"database": "template1"})
			wantError(t, "database template1", err, "FATAL", "3D000")
		})
		t.Run(tk.name+"/psql", func(t *testing.T) {
			r := e.psql(t, tok, nil, "template1", "SELECT 1")
			wantPsqlLoginRefused(t, "psql -d template1", r, "template1")
		})
		t.Run(tk.name+"/configured_database", func(t *testing.T) {
			e.serves(t, nil, tok, sendSQL(v.orders), nil)
		})
	}
}

// A token with 10,000 grants is longer than the 16 KiB password cap: the
// proxy reads the message and answers FATAL 28P01 before it closes, so the
// client reads the error every time (never "connection reset by peer").
func TestMinorOversizedTokenRefusedReliably(t *testing.T) {
	e := newEnv(t, nil)
	grants := make([]any, 10000)
	for i := range grants {
		grants[i] = map[string]any{"queues": []string{fmt.Sprintf("queue_%05d_*", i)}, "ops": []string{"send", "read"}}
	}
	tok := signClaims(t, jwt.MapClaims{"sub": "huge", "mq": map[string]any{"grants": grants}})
	t.Logf("token of %d bytes", len(tok))
	for i := 0; i < 20; i++ {
		nc, err := net.DialTimeout("tcp", e.st.ProxyAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// A small send buffer: the client is still writing the password
		// when the proxy decides, so a proxy that closes without reading
		// the rest resets the connection, and the FATAL is lost.
		nc.(*net.TCPConn).SetWriteBuffer(8 << 10)
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		fe := pgproto3.NewFrontend(nc, nc)
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": "mq", "database": "postgres"}})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		var fatal *pgconn.PgError
		var failure error
	login:
		for {
			msg, err := fe.Receive()
			if err != nil {
				failure = fmt.Errorf("reading: %w", err)
				break
			}
			switch m := msg.(type) {
			case *pgproto3.AuthenticationCleartextPassword:
				fe.Send(&pgproto3.PasswordMessage{Password: tok})
				if err := fe.Flush(); err != nil {
					failure = fmt.Errorf("writing the password: %w", err)
					break login
				}
			case *pgproto3.ErrorResponse:
				fatal = pgconn.ErrorResponseToPgError(m)
				break login
			case *pgproto3.ReadyForQuery:
				failure = errors.New("logged in")
				break login
			}
		}
		nc.Close()
		if failure != nil {
			t.Errorf("attempt %d: %v (want FATAL 28P01)", i+1, failure)
			continue
		}
		wantError(t, fmt.Sprintf("attempt %d", i+1), fatal, "FATAL", "28P01")
	}
	for i := 0; i < 5; i++ {
		conn, err := pgx.Connect(ctxFor(t, 15*time.Second), e.connString(t, tok))
		if err == nil {
			conn.Close(ctxFor(t, time.Second))
		}
		wantError(t, fmt.Sprintf("pgx attempt %d", i+1), err, "FATAL", "28P01")
	}
	code, body := e.rest(t, tok, "list_queues", map[string]any{})
	if !slices.Contains([]int{http.StatusUnauthorized, http.StatusRequestHeaderFieldsTooLarge}, code) {
		t.Errorf("REST: HTTP %d %s, want 401 or 431", code, oneLine(string(body)))
	}
	// And the proxy still serves.
	v := newVictims(t)
	e.serves(t, nil, limitedToken(t, "send:"+v.orders), sendSQL(v.orders), nil)
}
