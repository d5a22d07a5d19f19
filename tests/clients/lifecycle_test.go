package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

func proxyConnect(t *testing.T, addr, tok string) (*pgx.Conn, error) {
	t.Helper()
	host, port := hostPort(t, addr)
	return pgx.Connect(ctxFor(t, 15*time.Second),
		fmt.Sprintf("host=%s port=%s user=mq dbname=postgres sslmode=disable password=%s", host, port, tok))
}

// A session whose token expires keeps its transaction, and is closed at the
// next transaction boundary with FATAL 28P01.
func TestTokenExpiryAtTransactionBoundary(t *testing.T) {
	st := startStack(t, func(c *configs.Config) { c.Auth.Leeway = 0 })
	// exp is minted to the second, so it is at most issued+ttl.
	issued, ttl := time.Now(), 3*time.Second
	conn, err := proxyConnect(t, st.ProxyAddr(), testenv.Token(t, testSecret, auth.MintOptions{TTL: ttl, Now: issued}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctxFor(t, time.Second))
	ctx := ctxFor(t, 30*time.Second)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(issued.Add(ttl)) // the clock passing exp is what is tested
	var n int
	if err := tx.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("a statement inside the open transaction failed: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit of the open transaction failed: %v", err)
	}
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&n)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" || !strings.Contains(pe.Message, "expired") {
		t.Fatalf("after the transaction: err = %v, want FATAL 28P01 token expired", err)
	}
}

// SIGHUP (Stack.Reload) rotates the token key and resizes pools without
// dropping open connections.
func TestReloadKeysAndPoolLimits(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	secretA := []byte("first-secret-0123456789abcdefghijklmnop")
	secretB := []byte("second-secret-0123456789abcdefghijklmno")
	if err := os.WriteFile(secretFile, secretA, 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg configs.Config
	st := startStack(t, func(c *configs.Config) {
		c.Auth.HMACSecret = ""
		c.Auth.HMACSecretFile = secretFile
		cfg = *c
	})
	tokA := testenv.Token(t, secretA, auth.MintOptions{})
	tokB := testenv.Token(t, secretB, auth.MintOptions{})
	open, err := proxyConnect(t, st.ProxyAddr(), tokA)
	if err != nil {
		t.Fatalf("token A before the reload: %v", err)
	}
	defer open.Close(ctxFor(t, time.Second))

	if err := os.WriteFile(secretFile, secretB, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Pool.Size = 3
	v, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	st.Reload(v)

	if c, err := proxyConnect(t, st.ProxyAddr(), tokA); err == nil {
		c.Close(ctxFor(t, time.Second))
		t.Fatal("token A still accepted after the key rotation")
	}
	c, err := proxyConnect(t, st.ProxyAddr(), tokB)
	if err != nil {
		t.Fatalf("token B refused after the reload: %v", err)
	}
	c.Close(ctxFor(t, time.Second))
	var n int
	if err := open.QueryRow(ctxFor(t, 10*time.Second), "SELECT 42").Scan(&n); err != nil || n != 42 {
		t.Fatalf("the connection opened before the reload was dropped: %v", err)
	}
	want := "# HELP mqstack_pool_max_backends Configured size of each pool.\n# TYPE mqstack_pool_max_backends gauge\n" +
		"mqstack_pool_max_backends{backend=\"embedded\",database=\"postgres\",role=\"mq\"} 3\n"
	if err := testutil.GatherAndCompare(st.Registry, strings.NewReader(want), "mqstack_pool_max_backends"); err != nil {
		t.Fatalf("pool size after reload: %v", err)
	}
}

func restCall(t *testing.T, addr, tok, fn string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+addr+"/pgmq/v1/"+fn, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// queueOverProxy connects through the proxy and creates queue; both are
// cleaned up when the test ends.
func queueOverProxy(t *testing.T, addr, tok, queue string) (*pgx.Conn, context.Context) {
	t.Helper()
	conn, err := proxyConnect(t, addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 60*time.Second)
	if _, err := conn.Exec(ctx, "SELECT pgmq.create($1)", queue); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "SELECT pgmq.drop_queue($1)", queue)
		conn.Close(context.Background())
	})
	return conn, ctx
}

// REST and SQL see the same queues: a message sent over REST is read over
// the proxy, and one sent over the proxy is read and deleted over REST.
func TestRESTAndProxySeeTheSameQueues(t *testing.T) {
	st := startStack(t, nil)
	tok := testenv.Token(t, testSecret, auth.MintOptions{})
	conn, ctx := queueOverProxy(t, st.ProxyAddr(), tok, "both_ways")

	code, body := restCall(t, st.RESTAddr(), tok, "send", map[string]any{"queue_name": "both_ways", "msg": map[string]any{"via": "rest"}})
	if code != 200 || string(body) != "[1]" {
		t.Fatalf("REST send: %d %s", code, body)
	}
	var id int64
	var msg map[string]any
	if err := conn.QueryRow(ctx, "SELECT msg_id, message FROM pgmq.read('both_ways', 30, 1)").Scan(&id, &msg); err != nil {
		t.Fatal(err)
	}
	if id != 1 || msg["via"] != "rest" {
		t.Fatalf("read over the proxy: id %d message %v", id, msg)
	}
	if _, err := conn.Exec(ctx, `SELECT pgmq.send('both_ways', '{"via":"sql"}')`); err != nil {
		t.Fatal(err)
	}
	code, body = restCall(t, st.RESTAddr(), tok, "read", map[string]any{"queue_name": "both_ways", "vt": 30, "qty": 5})
	if code != 200 || !strings.Contains(string(body), `"msg_id":2`) || !strings.Contains(string(body), `"message":{"via":"sql"}`) {
		t.Fatalf("REST read: %d %s", code, body)
	}
	code, body = restCall(t, st.RESTAddr(), tok, "delete", map[string]any{"queue_name": "both_ways", "msg_ids": []int{1, 2}})
	if code != 200 || string(body) != "[1,2]" {
		t.Fatalf("REST delete: %d %s", code, body)
	}
	var left int64
	if err := conn.QueryRow(ctx, "SELECT queue_length FROM pgmq.metrics('both_ways')").Scan(&left); err != nil || left != 0 {
		t.Fatalf("queue length over the proxy: %d %v", left, err)
	}
}

// A REST long poll wakes at once when a send commits through the proxy,
// long before its poll interval.
func TestLongPollWokenByProxySend(t *testing.T) {
	st := startStack(t, nil)
	tok := testenv.Token(t, testSecret, auth.MintOptions{})
	conn, ctx := queueOverProxy(t, st.ProxyAddr(), tok, "woken")
	for _, mode := range []string{"autocommit", "transaction"} {
		type result struct {
			code int
			body []byte
			took time.Duration
		}
		// The poll has read once (a checkout) and waits (holds no backend):
		// it needs a wake-up to answer before its 10s poll interval.
		checkouts := testenv.Metric(t, st.Registry, "mqstack_pool_checkouts_total", map[string]string{"outcome": "ok"})
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			code, body := restCall(t, st.RESTAddr(), tok, "read_with_poll", map[string]any{"queue_name": "woken", "vt": 30, "qty": 1,
				"max_poll_seconds": 15, "poll_interval_ms": 10000})
			done <- result{code, body, time.Since(start)}
		}()
		testenv.WaitFor(t, 10*time.Second, "the poll to have read once and wait", func() bool {
			return testenv.Metric(t, st.Registry, "mqstack_pool_checkouts_total", map[string]string{"outcome": "ok"}) > checkouts &&
				testenv.Metric(t, st.Registry, "mqstack_pool_backends", map[string]string{"state": "active"}) == 0
		})
		if mode == "autocommit" {
			if _, err := conn.Exec(ctx, `SELECT pgmq.send('woken', '{"m":1}')`); err != nil {
				t.Fatal(err)
			}
		} else {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SELECT pgmq.send('woken', '{"m":2}')`); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case r := <-done:
			if r.code != 200 || !strings.Contains(string(r.body), `"msg_id"`) {
				t.Fatalf("%s: long poll answered %d %s", mode, r.code, r.body)
			}
			if r.took > 5*time.Second {
				t.Fatalf("%s: long poll took %s: not woken by the proxy send (poll interval 10s)", mode, r.took)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: long poll never answered", mode)
		}
	}
}

// REST refusals are counted like the proxy's: auth refusals by reason and
// grant denials by reason.
func TestRESTRefusalMetrics(t *testing.T) {
	st := startStack(t, nil)
	if code, _ := restCall(t, st.RESTAddr(), "garbage", "list_queues", map[string]any{}); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	limited := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{{Queues: []string{"mine"}, Ops: []string{"send"}}}})
	if code, body := restCall(t, st.RESTAddr(), limited, "send", map[string]any{"queue_name": "theirs", "msg": map[string]any{}}); code != 403 {
		t.Fatalf("missing grant: %d %s", code, body)
	}
	want := `# HELP mqstack_auth_attempts_total Token verifications by outcome (ok, refused), reason and source (proxy, rest).
# TYPE mqstack_auth_attempts_total counter
mqstack_auth_attempts_total{outcome="refused",reason="malformed",source="rest"} 1
# HELP mqstack_statements_denied_total Statements refused by the grant check, by reason and source.
# TYPE mqstack_statements_denied_total counter
mqstack_statements_denied_total{reason="missing_grant",source="rest"} 1
`
	if err := testutil.GatherAndCompare(st.Registry, strings.NewReader(want), "mqstack_auth_attempts_total", "mqstack_statements_denied_total"); err != nil {
		t.Fatal(err)
	}
}
