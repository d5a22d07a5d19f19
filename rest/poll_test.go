package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/configs"
	"mqstack/internal/testenv"
)

// waiting counts the long polls waiting on queue.
func (n *notifier) waiting(queue string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if wl := n.queues[strings.ToLower(queue)]; wl != nil {
		return wl.n
	}
	return 0
}

// poolBackends is how many backend connections role's pool has (active,
// idle or being made), from the pools' metrics.
func (e *testEnv) poolBackends(role string) int64 {
	mfs, err := e.metrics.Gather()
	if err != nil {
		e.t.Errorf("pool metrics: %v", err)
		return 0
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "mqstack_pool_backends" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "role" && l.GetValue() == role {
					n += m.GetGauge().GetValue()
				}
			}
		}
	}
	return int64(n)
}

// 500 concurrent read_with_poll calls on a pool of 4 backend connections all
// return as soon as messages arrive through this process, and the role never
// has more than 4 backend connections.
func TestLongPollManyWaitersFewBackends(t *testing.T) {
	const waiters, poolSize = 500, 4
	e := newEnv(t, poolSize)
	const q = "lp_many"
	dropQueues(t, e.cluster, q)
	t.Cleanup(func() { dropQueues(t, e.cluster, q) })
	e.must("create", `{"queue_name":"lp_many"}`, 204, ``)

	// Watch the role's backend connections from outside. Once the test's
	// own connections of role mq have ended, all of the role's are the
	// pool's.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := pgx.Connect(ctx, e.cluster.ConnString("postgres", "postgres"))
	if err != nil {
		t.Fatalf("watcher: %v", err)
	}
	defer watch.Close(context.Background())
	roleBackends := func() int64 {
		var n int64
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = 'mq' AND backend_type = 'client backend'`).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	testenv.WaitFor(t, 10*time.Second, "no backend of role mq but the pool's", func() bool {
		return roleBackends() <= e.poolBackends("mq")
	})
	var maxBackends, maxPool atomic.Int64
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ctx.Err() == nil {
			if n := roleBackends(); n > maxBackends.Load() {
				maxBackends.Store(n)
			}
			if total := e.poolBackends("mq"); total > maxPool.Load() {
				maxPool.Store(total)
			}
			time.Sleep(5 * time.Millisecond) // the sampling period
		}
	}()
	defer func() { cancel(); <-watchDone }() // before watch.Close

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: waiters, MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()
	type answer struct {
		status int
		ids    []int64
		err    error
	}
	answers := make(chan answer, waiters)
	// A long poll_interval_ms: only the in-process wake-up can answer fast.
	body := `{"queue_name":"lp_many","vt":30,"qty":1,"max_poll_seconds":20,"poll_interval_ms":15000}`
	for i := 0; i < waiters; i++ {
		go func() {
			hr, _ := http.NewRequest("POST", e.ts.URL+"/pgmq/v1/read_with_poll", strings.NewReader(body))
			hr.Header.Set("Authorization", "Bearer "+e.token)
			res, err := client.Do(hr)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer res.Body.Close()
			var msgs []struct {
				MsgID int64 `json:"msg_id"`
			}
			err = json.NewDecoder(res.Body).Decode(&msgs)
			a := answer{status: res.StatusCode, err: err}
			for _, m := range msgs {
				a.ids = append(a.ids, m.MsgID)
			}
			answers <- a
		}()
	}
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("all %d polls to have read once and wait", waiters), func() bool {
		return e.srv.waiters.waiting(q) >= waiters
	})
	start := time.Now()
	msgs := make([]string, waiters)
	for i := range msgs {
		msgs[i] = fmt.Sprintf(`{"i":%d}`, i)
	}
	e.must("send_batch", `{"queue_name":"lp_many","msgs":[`+strings.Join(msgs, ",")+`]}`, 200, `[1,ANY,500]`)
	seen := map[int64]bool{}
	for i := 0; i < waiters; i++ {
		select {
		case a := <-answers:
			if a.err != nil || a.status != 200 || len(a.ids) != 1 {
				t.Fatalf("poll answered %d %v (err %v)", a.status, a.ids, a.err)
			}
			if seen[a.ids[0]] {
				t.Fatalf("message %d delivered twice", a.ids[0])
			}
			seen[a.ids[0]] = true
		case <-time.After(14 * time.Second):
			t.Fatalf("only %d of %d polls answered", i, waiters)
		}
	}
	took := time.Since(start)
	cancel()
	<-watchDone
	t.Logf("%d polls answered %s after the send; at most %d backends (pool %d)", waiters, took, maxBackends.Load(), maxPool.Load())
	if maxBackends.Load() > poolSize || maxPool.Load() > poolSize {
		t.Fatalf("the role used %d backend connections (pool %d), more than %d", maxBackends.Load(), maxPool.Load(), poolSize)
	}
	if maxBackends.Load() == 0 {
		t.Fatal("the watcher saw no backend connection at all")
	}
}

// A send made elsewhere (plain SQL) is found within poll_interval_ms; a poll
// with nothing to find returns [] at max_poll_seconds, capped by
// rest.max_poll_seconds; Shutdown ends waiting polls at once.
func TestLongPollTiming(t *testing.T) {
	e := newEnv(t, 2, withConfig(func(c *configs.RESTConfig) { c.MaxPollSeconds = 1 }))
	const q = "lp_timing"
	dropQueues(t, e.cluster, q)
	t.Cleanup(func() { dropQueues(t, e.cluster, q) })
	e.must("create", `{"queue_name":"lp_timing"}`, 204, ``)

	t.Run("capped by rest.max_poll_seconds", func(t *testing.T) {
		start := time.Now()
		e.must("read_with_poll", `{"queue_name":"lp_timing","vt":30,"qty":1,"max_poll_seconds":30}`, 200, `[]`)
		if took := time.Since(start); took < 900*time.Millisecond || took > 3*time.Second {
			t.Fatalf("poll took %s, want about 1s", took)
		}
	})
	t.Run("send elsewhere within poll_interval_ms", func(t *testing.T) {
		done := make(chan resp, 1)
		go func() {
			done <- e.call("read_with_poll", `{"queue_name":"lp_timing","vt":30,"qty":5,"max_poll_seconds":1,"poll_interval_ms":50}`)
		}()
		testenv.WaitFor(t, 10*time.Second, "the poll to wait", func() bool { return e.srv.waiters.waiting(q) > 0 })
		sqlExec(t, e.cluster, `SELECT pgmq.send('lp_timing', '{"from":"sql"}')`)
		r := <-done
		checkResp(t, "poll", r, 200, `[{"msg_id":1,"read_ct":1,ANY,"message":{"from":"sql"},"headers":null}]`)
	})
	t.Run("grouped poll woken by send", func(t *testing.T) {
		done := make(chan resp, 1)
		go func() {
			done <- e.call("read_grouped_with_poll", `{"queue_name":"lp_timing","vt":30,"qty":5,"max_poll_seconds":1,"poll_interval_ms":5000}`)
		}()
		testenv.WaitFor(t, 10*time.Second, "the grouped poll to wait", func() bool { return e.srv.waiters.waiting(q) > 0 })
		start := time.Now()
		e.must("send", `{"queue_name":"LP_TIMING","msg":2,"headers":{"x-pgmq-group":"g2"}}`, 200, `[2]`)
		checkResp(t, "grouped poll", <-done, 200, `[{"msg_id":2,ANY}]`)
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Fatalf("the send woke the poll only after %s", took)
		}
	})
	t.Run("shutdown ends polls", func(t *testing.T) {
		e2 := newEnv(t, 1)
		var wg sync.WaitGroup
		wg.Add(1)
		var r resp
		go func() {
			defer wg.Done()
			r = e2.call("read_with_poll", `{"queue_name":"lp_timing","vt":30,"qty":1,"max_poll_seconds":20,"poll_interval_ms":10000}`)
		}()
		testenv.WaitFor(t, 10*time.Second, "the poll to wait", func() bool { return e2.srv.waiters.waiting(q) > 0 })
		start := time.Now()
		e2.srv.stopOnce.Do(func() { close(e2.srv.stopping) })
		wg.Wait()
		checkResp(t, "poll at shutdown", r, 200, `[]`)
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("shutdown took %s to end the poll", took)
		}
	})
}
