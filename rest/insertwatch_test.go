package rest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"mqstack/internal/notify"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

// newTestHub makes a real notify.Hub on cluster c, logged in as mq (as
// internal/stack logs in its listener as the default role); reg holds its
// metrics. It is closed when the test ends, after the env made later.
func newTestHub(t *testing.T, c *pgembed.Cluster) (*notify.Hub, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := notify.New(notify.Options{Log: zap.NewNop(), Registerer: reg,
		ConnString: func(k notify.Key) (string, string, error) { return c.ConnString("mq", k.Database), "", nil }})
	t.Cleanup(h.Close)
	return h, reg
}

func withHub(h Hub) envOption { return func(o *Options) { o.Hub = h } }

// pollWatch looks at the env's backends from a direct superuser connection.
type pollWatch struct {
	t     *testing.T
	conn  *pgx.Conn
	since time.Time // the server's clock when the watch began
}

func newPollWatch(t *testing.T, c *pgembed.Cluster) *pollWatch {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.ConnString("postgres", "postgres"))
	if err != nil {
		t.Fatalf("watcher: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	w := &pollWatch{t: t, conn: conn}
	if err := conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&w.since); err != nil {
		t.Fatal(err)
	}
	return w
}

// readDone reports whether a pool backend of role mq has finished a
// pgmq.read since the watch began and none is running one: the poll's
// first read found nothing and it waits.
func (w *pollWatch) readDone() bool {
	var done bool
	err := w.conn.QueryRow(context.Background(), `
SELECT count(*) FILTER (WHERE state = 'idle' AND state_change >= $1) > 0
   AND count(*) FILTER (WHERE state <> 'idle') = 0
  FROM pg_stat_activity
 WHERE usename = 'mq' AND backend_type = 'client backend' AND application_name <> $2
   AND query LIKE '%pgmq.read(%'`, w.since, notify.ApplicationName).Scan(&done)
	if err != nil {
		w.t.Errorf("pg_stat_activity: %v", err)
	}
	return done
}

// sendDirect sends to queue over a connection straight to Postgres, neither
// REST nor the proxy; setup runs first on the same connection.
func sendDirect(t *testing.T, c *pgembed.Cluster, queue string, setup ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.ConnString("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range setup {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if _, err := conn.Exec(ctx, `SELECT pgmq.send($1, '{"from":"direct"}')`, queue); err != nil {
		t.Fatalf("direct send: %v", err)
	}
}

// startPoll runs a read_with_poll and returns where its answer arrives.
func startPoll(e *testEnv, body string) <-chan resp {
	done := make(chan resp, 1)
	go func() { done <- e.call("read_with_poll", body) }()
	return done
}

// hubGauge is one of the hub's gauges.
func hubGauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return testenv.Metric(t, reg, "mqstack_notify_"+name, nil)
}

// waitUnsubscribed waits until the hub has no subscription, channel or
// connection left.
func waitUnsubscribed(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, "the hub to drop the poll's subscription", func() bool {
		return hubGauge(t, reg, "subscriptions") == 0 && hubGauge(t, reg, "channels") == 0 &&
			hubGauge(t, reg, "listener_connections") == 0
	})
}

// pollSetup is a REST server with a real hub on the test cluster and a
// fresh queue q, with pgmq's insert notifications when notifying is set.
func pollSetup(t *testing.T, q string, notifying bool) (*pgembed.Cluster, *testEnv, *prometheus.Registry) {
	t.Helper()
	c := cluster(t)
	hub, reg := newTestHub(t, c)
	e := newEnv(t, 1, withHub(hub))
	dropQueues(t, c, q)
	t.Cleanup(func() { dropQueues(t, c, q) })
	sqlExec(t, c, `SELECT pgmq.create($1)`, q)
	if notifying {
		sqlExec(t, c, `SELECT pgmq.enable_notify_insert($1)`, q)
	}
	return c, e, reg
}

// A poll on a queue with insert notifications wakes on the notification of
// a send made straight to Postgres, long before its interval. The queue was
// created and enabled as "LP_Notify" and is polled as "lp_notify": pgmq
// notifies under the stored name, which the poll must find.
func TestLongPollWokenByDirectSend(t *testing.T) {
	const stored = "LP_Notify"
	c, e, reg := pollSetup(t, stored, true)

	w := newPollWatch(t, c)
	done := startPoll(e, `{"queue_name":"lp_notify","vt":30,"qty":1,"max_poll_seconds":10,"poll_interval_ms":5000}`)
	testenv.WaitFor(t, 10*time.Second, "the poll to LISTEN and wait after its first read", func() bool {
		return hubGauge(t, reg, "channels") == 1 && w.readDone()
	})
	sent := time.Now()
	sendDirect(t, c, "lp_notify")
	r := <-done
	took := time.Since(sent)
	checkResp(t, "poll", r, 200, `[{"msg_id":1,"read_ct":1,ANY,"message":{"from":"direct"},"headers":null}]`)
	t.Logf("the poll answered %s after the direct send (poll_interval_ms 5000)", took)
	if took > 2*time.Second {
		t.Fatalf("the poll answered %s after the send: not woken by the notification", took)
	}
	if n := hubGauge(t, reg, "received_total"); n < 1 {
		t.Fatalf("the listener received %v notifications", n)
	}
	waitUnsubscribed(t, reg)
}

// The control: without insert notifications the poll does not subscribe,
// and the same direct send is found only at the interval's tick.
func TestLongPollWithoutNotifyWaitsForInterval(t *testing.T) {
	const q = "lp_nonotify"
	c, e, reg := pollSetup(t, q, false)

	const interval = 1500 * time.Millisecond
	w := newPollWatch(t, c)
	started := time.Now()
	done := startPoll(e, `{"queue_name":"lp_nonotify","vt":30,"qty":1,"max_poll_seconds":10,"poll_interval_ms":1500}`)
	testenv.WaitFor(t, 10*time.Second, "the poll to wait after its first read", func() bool {
		return e.srv.waiters.waiting(q) > 0 && w.readDone()
	})
	if n := hubGauge(t, reg, "subscriptions"); n != 0 {
		t.Fatalf("a poll on a queue without insert notifications made %v subscriptions", n)
	}
	sent := time.Now()
	sendDirect(t, c, q)
	r := <-done
	took := time.Since(sent)
	checkResp(t, "poll", r, 200, `[{"msg_id":1,ANY,"message":{"from":"direct"},"headers":null}]`)
	t.Logf("the poll answered %s after the direct send, %s after it began (poll_interval_ms 1500)", took, time.Since(started))
	// The tick comes one interval after the first read; the send came a
	// little after that read, hence the slack.
	if since := time.Since(started); since < interval || took < interval-500*time.Millisecond {
		t.Fatalf("the poll answered %s after the send (%s after it began): woken before its interval", took, since)
	}
	if took > interval+2*time.Second {
		t.Fatalf("the poll answered %s after the send, long after its interval", took)
	}
	waitUnsubscribed(t, reg)
}

// A poll re-reads when the listener connection was lost and re-established
// (Lost): a message inserted without a notification (triggers off) is found
// then, not at the interval.
func TestLongPollRereadsAfterListenerLoss(t *testing.T) {
	const q = "lp_lost"
	c, e, reg := pollSetup(t, q, true)

	w := newPollWatch(t, c)
	done := startPoll(e, `{"queue_name":"lp_lost","vt":30,"qty":1,"max_poll_seconds":10,"poll_interval_ms":5000}`)
	testenv.WaitFor(t, 10*time.Second, "the poll to LISTEN and wait after its first read", func() bool {
		return hubGauge(t, reg, "channels") == 1 && w.readDone()
	})
	// In replica mode no ordinary trigger fires, pgmq's notify trigger
	// included: the message lands silently.
	sendDirect(t, c, q, `SET session_replication_role = replica`)
	select {
	case r := <-done:
		t.Fatalf("the poll answered before the listener was lost: %d %s", r.status, r.body)
	case <-time.After(300 * time.Millisecond):
	}
	killed := time.Now()
	sqlExec(t, c, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, notify.ApplicationName)
	r := <-done
	took := time.Since(killed)
	checkResp(t, "poll", r, 200, `[{"msg_id":1,ANY,"message":{"from":"direct"},"headers":null}]`)
	t.Logf("the poll answered %s after the listener was terminated (poll_interval_ms 5000)", took)
	if took > 2500*time.Millisecond {
		t.Fatalf("the poll answered %s after the listener was lost: not woken by Lost", took)
	}
	if n := hubGauge(t, reg, "listener_reconnects_total"); n < 1 {
		t.Fatalf("the hub counted %v reconnects", n)
	}
	waitUnsubscribed(t, reg)
}
