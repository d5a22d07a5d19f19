package clients

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/notify"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

const (
	scaleListeners = 1000
	scaleQueues    = 20 // scaleListeners/scaleQueues listen on each queue
	scaleSends     = 3  // messages sent to each queue
	scalePool      = 4  // pool.size
	scaleDials     = 50 // connections opened at once
	// scaleRole is the tokens' role: the pool's backends and the listener
	// connection (proxy.listener_role defaults to it) log in as it.
	scaleRole = "mq"
	// endPayload marks the last notification of a queue's channel: the
	// proxy keeps a channel's notifications in order, so a listener has
	// all it will get once this one arrives.
	endPayload = "end"
)

// 1,000 pgx clients listen on 20 queues' insert channels through a pool of
// 4 backends: each gets exactly the 3 notifications of its own queue's
// sends, a client that does not listen sends and reads meanwhile, and
// Postgres never sees more than the 4 pooled backends of the role plus the
// one listener connection.
func TestThousandListenersPoolOfFour(t *testing.T) {
	super := superuserConn(t)
	waitNoRoleBackends(t, super)
	st := startStack(t, func(c *configs.Config) {
		c.Pool.Size = scalePool
		c.Proxy.MaxClients = scaleListeners + 10
		// The console's sampling scrapes the registry, and a scrape runs the
		// depth query on a connection of its own as the same role, which
		// would be counted with the pool's backends.
		c.REST.Console = false
	})
	tok := testenv.Token(t, testSecret, auth.MintOptions{})
	admin, _ := queueOverProxy(t, st.ProxyAddr(), tok, "scale_work")
	queues := notifyingQueues(t, admin)
	sampler := sampleBackends(t, super)
	start := time.Now()
	ls := openScaleListeners(t, st.ProxyAddr(), tok, queues)
	t.Logf("%d listeners connected and listening in %s", len(ls), time.Since(start).Round(time.Millisecond))

	worker := startWorker(t, st.ProxyAddr(), tok, "scale_work")
	received := awaitEnds(ctxFor(t, 60*time.Second), ls)
	for _, q := range queues {
		for i := range scaleSends {
			mustExec(t, admin, "SELECT pgmq.send($1, $2::jsonb)", q, fmt.Sprintf(`{"n":%d}`, i))
		}
		mustExec(t, admin, "SELECT pg_notify($1, $2)", insertChannel(q), endPayload)
	}
	if err := <-received; err != nil {
		t.Fatalf("a listener: %v", err)
	}
	cycles, werr := worker.stop()
	pooled, listeners, samples, serr := sampler.stop()
	t.Logf("all notifications received %s after the first dial; %d worker cycles; %d samples of pg_stat_activity: at most %d pooled backends, %d listener connections",
		time.Since(start).Round(time.Millisecond), cycles, samples, pooled, listeners)

	checkScaleListeners(t, ls)
	if werr != nil || cycles == 0 {
		t.Errorf("the non-listening client: %d send/read cycles, error %v", cycles, werr)
	}
	if serr != nil {
		t.Errorf("sampling pg_stat_activity: %v", serr)
	}
	// The worker keeps at least one pooled backend busy: none seen would
	// mean the count misses them.
	if samples == 0 || pooled == 0 || pooled > scalePool || listeners != 1 {
		t.Errorf("pg_stat_activity over %d samples: at most %d pooled backends of role %s (want 1 to %d) and %d listener connections (want 1)",
			samples, pooled, scaleRole, scalePool, listeners)
	}
	for name, want := range map[string]float64{listeningGauge: scaleListeners, channelsGauge: scaleQueues,
		"mqstack_notify_subscriptions": scaleListeners, "mqstack_notify_listener_connections": 1} {
		if got := metric(t, st, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	closeScaleListeners(ls)
}

// waitNoRoleBackends waits until no backend of scaleRole is left: one of an
// earlier test's stack may still be exiting.
func waitNoRoleBackends(t *testing.T, super *pgx.Conn) {
	t.Helper()
	testenv.WaitFor(t, 15*time.Second, "no backend of role "+scaleRole+" left from earlier tests", func() bool {
		pooled, listeners, err := queryRoleBackends(ctxFor(t, 10*time.Second), super)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		return pooled+listeners == 0
	})
}

// notifyingQueues creates scaleQueues queues (names with capitals) whose
// every send notifies (throttle 0); they are dropped when the test ends.
func notifyingQueues(t *testing.T, admin *pgx.Conn) []string {
	t.Helper()
	queues := make([]string, scaleQueues)
	for i := range queues {
		queues[i] = fmt.Sprintf("Scale_%02d", i)
		mustExec(t, admin, "SELECT pgmq.create($1)", queues[i])
		mustExec(t, admin, "SELECT pgmq.enable_notify_insert($1, 0)", queues[i])
		t.Cleanup(func() { admin.Exec(context.Background(), "SELECT pgmq.drop_queue($1)", queues[i]) })
	}
	return queues
}

// awaitEnds reads every listener's connection until its end marker has
// arrived; the channel gets the first error, or nil once all have ended.
func awaitEnds(ctx context.Context, ls []*scaleListener) <-chan error {
	errs := make(chan error, len(ls))
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() { errs <- l.awaitEnd(ctx) })
	}
	out := make(chan error, 1)
	go func() {
		wg.Wait()
		close(errs)
		var first error
		for err := range errs {
			first = cmp.Or(first, err)
		}
		out <- first
	}()
	return out
}

// checkScaleListeners requires that every listener got exactly scaleSends
// notifications of its own channel, and nothing else.
func checkScaleListeners(t *testing.T, ls []*scaleListener) {
	t.Helper()
	bad := 0
	for i, l := range ls {
		if l.inserts == scaleSends && l.foreign == 0 {
			continue
		}
		if bad++; bad <= 10 {
			t.Errorf("listener %d on %s: %d insert notifications (want %d), %d of other channels or payloads",
				i, l.channel, l.inserts, scaleSends, l.foreign)
		}
	}
	if bad > 10 {
		t.Errorf("... %d listeners in all did not get exactly their notifications", bad)
	}
}

func insertChannel(queue string) string { return "pgmq.q_" + queue + ".INSERT" }

// scaleListener is one listening client; its counts are written by the
// goroutine that reads its connection (OnNotification runs there).
type scaleListener struct {
	conn    *pgx.Conn
	channel string
	inserts int  // pgmq's notifications on channel
	foreign int  // anything else but the end marker
	ended   bool // the end marker arrived
}

func (l *scaleListener) note(_ *pgconn.PgConn, n *pgconn.Notification) {
	switch {
	case n.Channel == l.channel && n.Payload == endPayload:
		l.ended = true
	case n.Channel == l.channel && n.Payload == "":
		l.inserts++
	default:
		l.foreign++
	}
}

// awaitEnd reads the connection until the end marker has arrived.
func (l *scaleListener) awaitEnd(ctx context.Context) error {
	for !l.ended {
		if err := l.conn.PgConn().WaitForNotification(ctx); err != nil {
			return fmt.Errorf("on %s after %d notifications: %w", l.channel, l.inserts, err)
		}
	}
	return nil
}

// openScaleListeners connects scaleListeners clients, scaleDials at a time,
// each LISTENing on one queue's insert channel, round robin.
func openScaleListeners(t *testing.T, addr, tok string, queues []string) []*scaleListener {
	t.Helper()
	host, port := hostPort(t, addr)
	base, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s dbname=postgres sslmode=disable password=%s", host, port, scaleRole, tok))
	if err != nil {
		t.Fatal(err)
	}
	ls := make([]*scaleListener, scaleListeners)
	errs := make([]error, scaleListeners)
	sem := make(chan struct{}, scaleDials)
	var wg sync.WaitGroup
	for i := range ls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ls[i], errs[i] = openScaleListener(base, insertChannel(queues[i%len(queues)]))
		})
	}
	wg.Wait()
	t.Cleanup(func() { closeScaleListeners(ls) })
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("opening the listeners: %v", err)
	}
	return ls
}

func openScaleListener(base *pgx.ConnConfig, channel string) (*scaleListener, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := &scaleListener{channel: channel}
	cfg := base.Copy()
	cfg.OnNotification = l.note
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("LISTEN %s: %w", channel, err)
	}
	l.conn = c
	return l, nil
}

// closeScaleListeners closes every connection still open, at once.
func closeScaleListeners(ls []*scaleListener) {
	var wg sync.WaitGroup
	for _, l := range ls {
		if l == nil || l.conn == nil || l.conn.IsClosed() {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			l.conn.Close(ctx)
		})
	}
	wg.Wait()
}

// superuserConn connects straight to the test cluster as its superuser
// (not through the proxy, and not as the role counted).
func superuserConn(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctxFor(t, 15*time.Second), testenv.Cluster(t).ConnString(pgembed.Superuser, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// queryRoleBackends counts the client backends of scaleRole: the listener
// connection (by its application_name) and the others, the pool's.
func queryRoleBackends(ctx context.Context, c *pgx.Conn) (pooled, listeners int, err error) {
	err = c.QueryRow(ctx, `SELECT count(*) FILTER (WHERE application_name IS DISTINCT FROM $2),
		count(*) FILTER (WHERE application_name = $2)
		FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = $1`,
		scaleRole, notify.ApplicationName).Scan(&pooled, &listeners)
	return pooled, listeners, err
}
