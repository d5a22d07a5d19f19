package rest

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

// The same calls on mqstack's own backend pools (internal/backend), as
// `mqstack up` will wire them.
func TestBackendPools(t *testing.T) {
	c := cluster(t)
	pool := configs.Default().Pool
	pool.Size = 2
	m := testBackends(t, c, pool, nil)
	defer m.Close()
	srv, err := New(Options{Config: configs.Default().REST, Verifier: testVerifier(t),
		Pools: BackendPools{Manager: m, Backend: "main", Database: "postgres"}, ReadyRole: "mq", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	e := &testEnv{t: t, cluster: c, srv: srv, ts: ts, token: testenv.Token(t, testSecret, auth.MintOptions{})}
	dropQueues(t, c, "be_q")
	defer dropQueues(t, c, "be_q")

	e.must("create", `{"queue_name":"be_q"}`, 204, ``)
	e.must("send", `{"queue_name":"be_q","msg":{"hello":"world-0"}}`, 200, `[1]`)
	e.must("send_batch", `{"queue_name":"be_q","msgs":[1,2]}`, 200, `[2,3]`)
	e.must("read", `{"queue_name":"be_q","vt":30,"qty":1}`, 200,
		`[{"msg_id":1,"read_ct":1,"enqueued_at":TS,"last_read_at":TS,"vt":TS,"message":{"hello":"world-0"},"headers":null}]`)
	e.must("archive", `{"queue_name":"be_q","msg_id":1}`, 200, `true`)
	e.must("delete", `{"queue_name":"be_q","msg_ids":[2,3,4]}`, 200, `[2,3]`)
	e.must("send", `{"queue_name":"nope_q","msg":1}`, 404, `{"code":"42P01",ANY}`)
	e.must("read", `{"queue_name":"be_q","vt":1.5,"qty":1}`, 400, `{"code":"22P02",ANY}`)
	checkResp(t, "superuser", e.do(req{path: "list_queues", token: testenv.Token(t, testSecret, auth.MintOptions{Role: "postgres"})}), 403, `{"code":"28000",ANY}`)
	checkResp(t, "readyz", e.do(req{method: "GET", path: "/readyz", token: "-"}), 200, `{"status":"ok"}`)

	// Long polls on a pool of 2.
	var wg sync.WaitGroup
	got := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got <- e.call("read_with_poll", `{"queue_name":"be_q","vt":30,"qty":1,"max_poll_seconds":10,"poll_interval_ms":10000}`).body
		}()
	}
	testenv.WaitFor(t, 10*time.Second, "the 20 polls to wait", func() bool { return srv.waiters.waiting("be_q") >= 20 })
	e.must("send_batch", `{"queue_name":"be_q","msgs":[`+strings.TrimSuffix(strings.Repeat(`{},`, 20), ",")+`]}`, 200, `[4,ANY,23]`)
	wg.Wait()
	close(got)
	for body := range got {
		if !strings.HasPrefix(body, `[{"msg_id":`) {
			t.Fatalf("poll answered %s", body)
		}
	}
}
