package stack

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var testSecret = []byte("stack-test-secret-0123456789abcdef")

func startStack(t *testing.T) *Stack {
	t.Helper()
	c := testenv.Cluster(t)
	cfg := testenv.FrontEndConfig(t.TempDir(), testSecret)
	v, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	st, err := Start(Options{
		Config:      v,
		Backends:    []configs.BackendConfig{c.Backend()},
		Auth:        cfg.Auth,
		DefaultRole: "mq",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Shutdown(10 * time.Second) })
	return st
}

func connect(t *testing.T, st *Stack, tok string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	host, port, _ := net.SplitHostPort(st.ProxyAddr())
	cfg, err := pgx.ParseConfig("host=" + host + " port=" + port + " user=mq dbname=postgres sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = tok
	cfg.DefaultQueryExecMode = mode
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// scrape reads /metrics into "name{k="v",...}" -> value, labels sorted as
// Prometheus writes them.
func scrape(t *testing.T, st *Stack) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get("http://" + st.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, string(body)
}

// A scripted workload through the proxy (pgx, extended and simple
// protocol) and REST, then /metrics shows exactly what it did, per queue.
func TestQueueMetricsAfterWorkload(t *testing.T) {
	st := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := connect(t, st, testenv.Token(t, testSecret, auth.MintOptions{}), pgx.QueryExecModeCacheStatement)
	queues := []string{"wm_a", "wm_b", "wm_c"}
	for _, q := range queues {
		admin.Exec(ctx, "SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = $1", q)
		if _, err := admin.Exec(ctx, "SELECT pgmq.create($1)", q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range queues {
			admin.Exec(context.Background(), "SELECT pgmq.drop_queue($1)", q)
		}
	})
	tok := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{{Queues: []string{"wm_a", "wm_c"}, Ops: []string{"send", "read", "delete", "archive", "pop"}}}})
	ext := connect(t, st, tok, pgx.QueryExecModeCacheStatement)
	simple := connect(t, st, tok, pgx.QueryExecModeSimpleProtocol)
	exec := func(c *pgx.Conn, sql string, args ...any) int {
		t.Helper()
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	denied := func(c *pgx.Conn, sql string, args ...any) {
		t.Helper()
		if _, err := c.Exec(ctx, sql, args...); err == nil || !strings.Contains(err.Error(), "42501") {
			t.Fatalf("%s: %v, want 42501", sql, err)
		}
	}
	// 7 sent through the proxy, 1 through REST.
	exec(ext, `SELECT pgmq.send('wm_a', '{"n":1}')`)
	exec(ext, `SELECT pgmq.send('wm_a', '{"n":2}')`)
	exec(ext, `SELECT * FROM pgmq.send($1, $2::jsonb)`, "wm_a", `{"n":3}`)
	exec(ext, `SELECT * FROM pgmq.send_batch($1, ARRAY['{"n":4}', '{"n":5}']::jsonb[])`, "wm_a")
	exec(simple, `SELECT pgmq.send('wm_a', '{"n":6}')`)
	exec(simple, `SELECT pgmq.send('WM_A', '{"n":7}')`)
	req, _ := http.NewRequest("POST", "http://"+st.RESTAddr()+"/pgmq/v1/send", strings.NewReader(`{"queue_name":"wm_a","msg":{"n":8}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("REST send: %v %v", err, resp)
	}
	resp.Body.Close()
	// 5 received (3 + 2), 2 deleted (one delete finds nothing), 1 archived, 1 popped.
	var ids []int64
	rows, _ := ext.Query(ctx, `SELECT msg_id FROM pgmq.read('wm_a', 30, 3)`)
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != 3 {
		t.Fatalf("read: %v %v", rows.Err(), ids)
	}
	if n := exec(simple, `SELECT * FROM pgmq.read('wm_a', 30, 2)`); n != 2 {
		t.Fatalf("simple read: %d rows", n)
	}
	exec(ext, `SELECT pgmq.delete('wm_a', $1::bigint)`, ids[0])
	exec(ext, `SELECT pgmq.delete('wm_a', $1::bigint)`, int64(987654321))
	exec(ext, `SELECT * FROM pgmq.delete('wm_a', $1::bigint[])`, []int64{ids[1]})
	exec(simple, `SELECT pgmq.archive('wm_a', `+strconv.FormatInt(ids[2], 10)+`)`)
	if n := exec(ext, `SELECT * FROM pgmq.pop('wm_a')`); n != 1 {
		t.Fatalf("pop: %d rows", n)
	}
	// An empty receive on wm_c.
	exec(ext, `SELECT * FROM pgmq.read('wm_c', 30, 1)`)
	// Denied: 2 sends and a read on wm_b, and a DO block.
	denied(ext, `SELECT pgmq.send('wm_b', '{}')`)
	denied(ext, `SELECT * FROM pgmq.send($1, '{}')`, "wm_b")
	denied(simple, `SELECT * FROM pgmq.read('wm_b', 30, 1)`)
	denied(simple, `DO $$BEGIN PERFORM pgmq.send('wm_b', '{}'); END$$`)

	got, body := scrape(t, st)
	want := map[string]float64{
		`mqstack_queue_messages_total{event="sent",queue="wm_a"}`:                                  8,
		`mqstack_queue_messages_total{event="received",queue="wm_a"}`:                              5,
		`mqstack_queue_messages_total{event="deleted",queue="wm_a"}`:                               2,
		`mqstack_queue_messages_total{event="archived",queue="wm_a"}`:                              1,
		`mqstack_queue_messages_total{event="popped",queue="wm_a"}`:                                1,
		`mqstack_queue_empty_receives_total{queue="wm_c"}`:                                         1,
		`mqstack_queue_operations_total{op="send",outcome="ok",queue="wm_a",source="proxy"}`:       5,
		`mqstack_queue_operations_total{op="send_batch",outcome="ok",queue="wm_a",source="proxy"}`: 1,
		`mqstack_queue_operations_total{op="send",outcome="ok",queue="wm_a",source="rest"}`:        1,
		`mqstack_queue_operations_total{op="read",outcome="ok",queue="wm_a",source="proxy"}`:       2,
		`mqstack_queue_operations_total{op="delete",outcome="ok",queue="wm_a",source="proxy"}`:     3,
		`mqstack_queue_operations_total{op="archive",outcome="ok",queue="wm_a",source="proxy"}`:    1,
		`mqstack_queue_operations_total{op="pop",outcome="ok",queue="wm_a",source="proxy"}`:        1,
		`mqstack_queue_operations_total{op="send",outcome="denied",queue="wm_b",source="proxy"}`:   2,
		`mqstack_queue_operations_total{op="read",outcome="denied",queue="wm_b",source="proxy"}`:   1,
		`mqstack_statements_denied_total{reason="missing_grant",source="proxy"}`:                   3,
		`mqstack_statements_denied_total{reason="uncertain",source="proxy"}`:                       1,
		`mqstack_queue_operation_duration_seconds_count{op="send",queue="wm_a"}`:                   6,
		// Sizes of the six single sends whose message is a literal or a
		// bound value ({"n":1} is 7 bytes); the ARRAY[...] batch is an
		// expression, so its size is not known.
		`mqstack_queue_message_size_bytes_count{queue="wm_a"}`:                                   6,
		`mqstack_queue_message_size_bytes_sum{queue="wm_a"}`:                                     42,
		`mqstack_auth_attempts_total{outcome="ok",reason="ok",source="proxy"}`:                   3,
		`mqstack_queue_operations_total{op="read",outcome="ok",queue="wm_c",source="proxy"}`:     1,
		`mqstack_queue_operations_total{op="send",outcome="denied",queue="wm_a",source="proxy"}`: -1, // absent
		`mqstack_queue_messages_total{event="sent",queue="wm_b"}`:                                -1,
		`mqstack_queue_operations_total{op="create",outcome="ok",queue="wm_a",source="proxy"}`:   1,
		`mqstack_queue_operations_total{op="send",outcome="error",queue="wm_a",source="proxy"}`:  -1,
		`mqstack_queue_empty_receives_total{queue="wm_a"}`:                                       -1,
	}
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v < 0 && ok:
			t.Errorf("%s = %v, want absent", k, g)
		case v >= 0 && !ok && v != 0:
			t.Errorf("%s absent, want %v", k, v)
		case v >= 0 && g != v:
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	if t.Failed() || testing.Verbose() {
		re := regexp.MustCompile(`^mqstack_(queue_(operations|messages|empty)|statements_denied|auth_attempts|pins|connections_closed)`)
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			if re.MatchString(l) && !strings.HasSuffix(l, " 0") {
				lines = append(lines, l)
			}
		}
		t.Logf("/metrics excerpt:\n%s", strings.Join(lines, "\n"))
	}
}
