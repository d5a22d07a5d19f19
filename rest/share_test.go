package rest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/backend"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

// One token holds at most pool.max_share of a backend pool over REST too:
// with 4 backends and a share of 0.5, its third concurrent call gets 503
// (53300) after the checkout timeout while another token's call runs; once
// its calls end, its next one runs.
func TestBackendPoolsTokenShare(t *testing.T) {
	c := cluster(t)
	pool := configs.Default().Pool
	pool.Size = 4
	pool.MaxShare = 0.5
	pool.CheckoutTimeout = 2 * time.Second // long enough for a login on a loaded machine
	m := testBackends(t, c, pool, nil)
	defer m.Close()
	v := testVerifier(t)
	srv, err := New(Options{Config: configs.Default().REST, Verifier: v,
		Pools: BackendPools{Manager: m, Backend: "main", Database: "postgres"}, ReadyRole: "mq", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	e := &testEnv{t: t, cluster: c, srv: srv, ts: ts, token: testenv.Token(t, testSecret, auth.MintOptions{})}
	dropQueues(t, c, "share_q")
	defer dropQueues(t, c, "share_q")
	e.must("create", `{"queue_name":"share_q"}`, 204, ``)

	// A transaction elsewhere locks the queue's table: the token's sends
	// wait there, each holding a backend connection.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lock, err := pgx.Connect(ctx, c.ConnString(pgembed.Superuser, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE pgmq.q_share_q IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	tok := testenv.Token(t, testSecret, auth.MintOptions{})
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	send := func() (int, error) {
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/pgmq/v1/send", strings.NewReader(`{"queue_name":"share_q","msg":1}`))
		hr.Header.Set("Authorization", "Bearer "+tok)
		hr.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(hr)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	type result struct {
		status int
		err    error
	}
	blocked := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() {
			s, err := send()
			blocked <- result{s, err}
		}()
	}
	key := backend.Key{Backend: "main", Database: "postgres", Role: "mq"}
	testenv.WaitFor(t, 10*time.Second, "the token to hold 2 backends", func() bool { return m.Held(key, id.Holder()) >= 2 })
	checkResp(t, "the token's third call", e.do(req{path: "send", body: `{"queue_name":"share_q","msg":1}`, token: tok,
		contentType: "application/json"}), 503, `{"code":"53300","message":"token ANY holds 2 backend connectionsANYpool.max_share 0.5ANY",ANY}`)
	// Another token gets one of the free backends.
	e.must("list_queues", `{}`, 200, `ANY"queue_name":"share_q"ANY`)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if r := <-blocked; r.err != nil || r.status != 200 {
			t.Fatalf("a blocked send: %d %v", r.status, r.err)
		}
	}
	if s, err := send(); err != nil || s != 200 {
		t.Fatalf("the token's call afterwards: %d %v", s, err)
	}
}
