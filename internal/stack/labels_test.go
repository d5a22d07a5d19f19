package stack

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

// Denied calls on junk queue names do not use up metrics.max_queues: they
// count under _other, and a real queue's first successful send afterwards
// still gets a series of its own.
func TestQueueLabelsOnlyForExistingQueues(t *testing.T) {
	c := testenv.Cluster(t)
	cfg := testenv.FrontEndConfig(t.TempDir(), testSecret)
	cfg.Metrics.MaxQueues = 2
	v, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	st, err := Start(Options{Config: v, Backends: []configs.BackendConfig{c.Backend()}, Auth: cfg.Auth, DefaultRole: "mq"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Shutdown(10 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The queue is made outside mqstack, so no call through it has named it.
	direct, err := pgx.Connect(ctx, c.ConnString("mq", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	const real = "lbl_real"
	direct.Exec(ctx, "SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = $1", real)
	if _, err := direct.Exec(ctx, "SELECT pgmq.create($1)", real); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "SELECT pgmq.drop_queue($1)", real) })

	tok := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{{Queues: []string{real}, Ops: []string{"send"}}}})
	limited := connect(t, st, tok, pgx.QueryExecModeCacheStatement)
	for i := 0; i < 50; i++ {
		if _, err := limited.Exec(ctx, "SELECT pgmq.send($1, '{}')", fmt.Sprintf("junk_%d", i)); err == nil || !strings.Contains(err.Error(), "42501") {
			t.Fatalf("send to junk_%d: %v, want 42501", i, err)
		}
	}
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("POST", "http://"+st.RESTAddr()+"/pgmq/v1/send",
			strings.NewReader(fmt.Sprintf(`{"queue_name":"rjunk_%d","msg":{}}`, i)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 403 {
			t.Fatalf("REST send to rjunk_%d: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}
	if _, err := limited.Exec(ctx, "SELECT pgmq.send($1, '{}')", real); err != nil {
		t.Fatal(err)
	}

	got, body := scrape(t, st)
	want := map[string]float64{
		`mqstack_queue_operations_total{op="send",outcome="ok",queue="lbl_real",source="proxy"}`:   1,
		`mqstack_queue_messages_total{event="sent",queue="lbl_real"}`:                              1,
		`mqstack_queue_operations_total{op="send",outcome="denied",queue="_other",source="proxy"}`: 50,
		`mqstack_queue_operations_total{op="send",outcome="denied",queue="_other",source="rest"}`:  5,
		`mqstack_queue_operations_total{op="send",outcome="denied",queue="junk_0",source="proxy"}`: -1,
		`mqstack_queue_operations_total{op="send",outcome="ok",queue="_other",source="proxy"}`:     -1,
	}
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v < 0 && ok:
			t.Errorf("%s = %v, want absent", k, g)
		case v >= 0 && g != v:
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if t.Failed() {
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "mqstack_queue_operations_total") || strings.HasPrefix(l, "mqstack_queue_messages_total") {
				lines = append(lines, l)
			}
		}
		t.Logf("/metrics excerpt:\n%s", strings.Join(lines, "\n"))
	}
}
