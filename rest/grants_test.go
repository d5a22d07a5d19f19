package rest

import (
	"sync"
	"testing"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// Grant-limited tokens: the op on the queue, publish on the routing key,
// listings filtered to the queues the token may list (auth.md).
func TestGrants(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, 2, func(o *Options) { o.Metrics = rec })
	queues := []string{"g_orders", "g_orders_eu", "g_dlq", "g_admin"}
	dropQueues(t, e.cluster, queues...)
	t.Cleanup(func() { dropQueues(t, e.cluster, queues...) })
	for _, q := range queues {
		e.must("create", `{"queue_name":"`+q+`"}`, 204, ``)
	}
	e.must("bind_topic", `{"pattern":"g.*","queue_name":"g_dlq"}`, 204, ``)
	tok := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{
		{Queues: []string{"g_orders*"}, Ops: []string{"send"}},
		{Queues: []string{"g_dlq"}, Ops: []string{"read", "delete", "list"}},
		{Topics: []string{"g.allowed"}, Ops: []string{"publish"}},
	}})
	limited := func(fn, body string, status int, want string) {
		t.Helper()
		r := e.do(req{path: fn, body: body, token: tok})
		checkResp(t, fn+" "+body, r, status, want)
	}
	limited("send", `{"queue_name":"g_orders","msg":1}`, 200, `[1]`)
	limited("send", `{"queue_name":"G_ORDERS_EU","msg":1}`, 200, `[1]`) // pgmq folds case
	limited("send", `{"queue_name":"g_dlq","msg":1}`, 403,
		`{"code":"42501","message":"permission denied by queue grants: pgmq call on \"g_dlq\" needs the \"send\" grant","details":null,"hint":null}`)
	limited("read", `{"queue_name":"g_orders","vt":30,"qty":1}`, 403, `{"code":"42501","message":"permission denied by queue grants: pgmq call on \"g_orders\" needs the \"read\" grant",ANY}`)
	limited("read_with_poll", `{"queue_name":"g_orders","vt":30,"qty":1}`, 403, `{"code":"42501",ANY}`)
	limited("read", `{"queue_name":"g_dlq","vt":30,"qty":1}`, 200, `[]`)
	limited("pop", `{"queue_name":"g_dlq"}`, 200, `[]`) // read + delete allow pop
	limited("archive", `{"queue_name":"g_dlq","msg_id":1}`, 403, `{"code":"42501",ANYneeds the \"archive\" grant"ANY}`)
	limited("drop_queue", `{"queue_name":"g_orders"}`, 403, `{"code":"42501",ANY}`)
	limited("create_fifo_indexes_all", ``, 403, `{"code":"42501",ANY(pgmq.create_fifo_indexes_all acts on every queue)"ANY}`)
	limited("send_topic", `{"routing_key":"g.allowed","msg":1}`, 200, `1`)
	limited("send_topic", `{"routing_key":"g.other","msg":1}`, 403, `{"code":"42501","message":"permission denied by queue grants: pgmq call on \"g.other\" needs the \"publish\" grant (routing key)",ANY}`)
	// Listings show only the queues the token may list.
	limited("list_queues", ``, 200, `[{"queue_name":"g_dlq","is_partitioned":false,"is_unlogged":false,"created_at":TS}]`)
	limited("metrics_all", ``, 200, `[{"queue_name":"g_dlq",ANY}]`)
	limited("test_routing", `{"routing_key":"g.x"}`, 200, `[{"pattern":"g.*","queue_name":"g_dlq","compiled_regex":"^g\\.[^.]+$"}]`)
	limited("metrics", `{"queue_name":"g_dlq"}`, 200, `{"queue_name":"g_dlq",ANY}`)
	limited("metrics", `{"queue_name":"g_orders"}`, 403, `{"code":"42501",ANY}`)
	// A token that may list nothing may not list.
	sendOnly := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{{Queues: []string{"g_orders"}, Ops: []string{"send"}}}})
	r := e.do(req{path: "list_queues", token: sendOnly})
	checkResp(t, "list without list grant", r, 403, `{"code":"42501",ANY}`)

	// The metrics hook saw each call with its op, queue and outcome.
	found := false
	for _, o := range rec.all() {
		if o.Function == "send" && o.Queue == "g_dlq" && o.Outcome == "denied" && o.Op == "send" && o.Status == 403 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no denied send on g_dlq recorded: %+v", rec.all())
	}
}

type recorder struct {
	mu  sync.Mutex
	obs []Observation
}

func (r *recorder) ObserveCall(o Observation) {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
}

func (r *recorder) all() []Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Observation(nil), r.obs...)
}
