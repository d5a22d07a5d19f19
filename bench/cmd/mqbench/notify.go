package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The notification fan-out rows: -listeners connections LISTEN on one
// channel, one connection straight to Postgres sends, and each listener
// records when each notification reached it. Only the delivery path
// differs between targets: Postgres's own backends, or the proxy's one
// shared listener connection fanning out to its clients.
const (
	notifyWorkload = "notify fan-out"
	notifyChannel  = "fanout"
	// notifyGrace is how long after the last send the cell waits for
	// notifications still on their way; what has not come by then is
	// counted missing.
	notifyGrace = 20 * time.Second
)

// notifyMode is how the sender sends one cell's notifications.
type notifyMode struct {
	name  string
	count int           // notifications sent per cell
	every time.Duration // between sends; 0: back to back
}

// note is the CSV note of m's rows.
func (m notifyMode) note(listeners int) string {
	how, ops := "back to back", "ops/s = deliveries/s"
	if m.every > 0 {
		how, ops = fmt.Sprintf("one every %s", m.every), "ops/s is about the pace; latency is the figure"
	}
	return fmt.Sprintf("%d listeners; %d notifications %s from one direct connection; %s", listeners, m.count, how, ops)
}

// burst measures how fast the target can deliver. paced measures what
// delivery alone adds to latency, slow enough that direct Postgres (where
// every listening backend wakes and reads the notification queue for each
// notification: about 0.4 s until 1,000 listeners on 2 CPUs have one) is
// not still delivering one notification when the next is sent.
var notifyModes = []notifyMode{
	{name: "burst", count: 200},
	{name: "paced", count: 10, every: 500 * time.Millisecond},
}

// errNoListen is why PgBouncer has no fan-out row.
const errNoListen = "not run: PgBouncer in transaction pooling mode does not support LISTEN"

// notifyCells runs the fan-out rows of one round. Each target's listeners
// are opened before its cells and closed after them: idle listeners of
// one target would be woken by the other's notifications (Postgres signals
// every listening backend of the database, whatever its channel).
func (b *bench) notifyCells(ctx context.Context) error {
	if !b.o.want("notify") || b.o.listeners <= 0 {
		return nil
	}
	for _, target := range []string{"direct", "pgbouncer", "mqstack"} {
		if target == "pgbouncer" {
			b.res.note(key{notifyWorkload, b.o.listeners, target, ""}, errNoListen)
			continue
		}
		if err := b.notifyTarget(ctx, target); err != nil {
			return err
		}
	}
	return nil
}

// notifyTarget runs every mode's cell against one target's listeners. A
// sender or listeners that cannot connect fail the cells, not the run.
func (b *bench) notifyTarget(ctx context.Context, target string) error {
	n := b.o.listeners
	sender, ls, openErr := b.openFanOut(ctx, target)
	defer func() {
		if ls != nil {
			ls.close()
		}
		if sender != nil {
			sender.Close(context.Background())
		}
	}()
	for _, m := range notifyModes {
		k := key{notifyWorkload, n, target, m.name}
		b.res.note(k, m.note(n))
		err := b.measure(ctx, k, func() (sample, error) {
			if openErr != nil {
				return sample{}, openErr
			}
			return ls.fanOut(ctx, sender, m, b.env.pid(target))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// openFanOut connects the sender, straight to Postgres, and target's
// listeners. What it opened it returns, even with an error.
func (b *bench) openFanOut(ctx context.Context, target string) (*pgconn.PgConn, *listeners, error) {
	sender, err := pgconn.Connect(ctx, b.env.dsn("direct"))
	if err != nil {
		return nil, nil, fmt.Errorf("sender: %w", err)
	}
	ls, took, err := openListeners(ctx, b.env.dsn(target), b.o.listeners)
	if err != nil {
		return sender, ls, err
	}
	fmt.Printf("  %s: %d listeners of %s logged in and listening in %s\n", notifyWorkload, b.o.listeners, target, took.Round(time.Millisecond))
	return sender, ls, nil
}

// listener is what one listening connection received in the current cell.
type listener struct {
	mu   sync.Mutex
	lat  []time.Duration // arrival minus send time
	last int64           // the payload (send time) of the latest accepted notification
	at   int64           // when that one arrived, Unix ns
	bad  int64           // notifications repeated or out of order
}

// listeners are the listening connections of one target.
type listeners struct {
	conns []*pgconn.PgConn
	each  []listener
	// since: payloads older than it were sent in an earlier cell and
	// arrived too late to count; want and got count this cell's accepted
	// deliveries; all is signalled when got reaches want.
	since     atomic.Int64
	want, got atomic.Int64
	all       chan struct{}
	notices   atomic.Int64
	notice    atomic.Value // the first notice's text
	dead      atomic.Int64 // connections whose wait failed
	deadErr   atomic.Value
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// openListeners logs n clients in to dsn, has each LISTEN, and starts a
// goroutine per connection that waits for notifications. It returns the
// listeners (to close) even when some failed to open, and how long opening
// them took.
func openListeners(ctx context.Context, dsn string, n int) (ls *listeners, took time.Duration, err error) {
	ls = &listeners{each: make([]listener, n), all: make(chan struct{}, 1)}
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return ls, 0, err
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if ls.notices.Add(1) == 1 {
			ls.notice.Store(n.Severity + ": " + n.Message)
		}
	}
	ls.conns, took, err = openEach(ctx, n, func(i int) (*pgconn.PgConn, error) {
		c := cfg.Copy()
		c.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) { ls.arrived(i, n) }
		conn, err := pgconn.ConnectConfig(ctx, c)
		if err != nil {
			return nil, err
		}
		if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel).ReadAll(); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("LISTEN: %w", err)
		}
		return conn, nil
	})
	if err != nil {
		return ls, 0, fmt.Errorf("listeners: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ls.cancel = cancel
	for _, c := range ls.conns {
		ls.wg.Add(1)
		go ls.wait(wctx, c)
	}
	return ls, took, nil
}

// wait reads one connection until ctx ends; notifications go to arrived
// through the connection's OnNotification.
func (ls *listeners) wait(ctx context.Context, c *pgconn.PgConn) {
	defer ls.wg.Done()
	for {
		err := c.WaitForNotification(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if ls.dead.Add(1) == 1 {
				ls.deadErr.Store(err.Error())
			}
			return
		}
	}
}

// arrived records one notification for listener i.
func (ls *listeners) arrived(i int, n *pgconn.Notification) {
	now := time.Now().UnixNano()
	sent, err := strconv.ParseInt(n.Payload, 10, 64)
	if err == nil && sent < ls.since.Load() {
		return
	}
	l := &ls.each[i]
	l.mu.Lock()
	ok := err == nil && n.Channel == notifyChannel && sent > l.last
	if ok {
		l.last, l.at = sent, now
		l.lat = append(l.lat, time.Duration(now-sent))
	} else {
		l.bad++
	}
	l.mu.Unlock()
	if ok && ls.got.Add(1) == ls.want.Load() {
		select {
		case ls.all <- struct{}{}:
		default:
		}
	}
}

// close stops the waiting goroutines, then closes the connections.
func (ls *listeners) close() {
	if ls.cancel != nil {
		ls.cancel()
		ls.wg.Wait()
	}
	closeAll(context.Background(), ls.conns)
}

// reset starts a cell in which each listener expects count notifications
// with payloads of at least since. since is set first, so a late arrival of
// the cell before is dropped rather than counted in this one.
func (ls *listeners) reset(since int64, count int) {
	ls.since.Store(since)
	for i := range ls.each {
		l := &ls.each[i]
		l.mu.Lock()
		l.lat = make([]time.Duration, 0, count)
		l.last, l.at, l.bad = 0, 0, 0
		l.mu.Unlock()
	}
	select {
	case <-ls.all:
	default:
	}
	ls.got.Store(0)
	ls.notices.Store(0)
	ls.want.Store(int64(len(ls.each) * count))
}

// fanOut is one cell: the sender sends m.count notifications, each
// carrying its send time (Unix ns), and the cell ends when every listener
// has every one, or notifyGrace after the last send. ops/s is deliveries
// per second from the first send to the last arrival; errors are the
// deliveries missing plus any repeated or out of order; CPU is pid's per
// delivery.
func (ls *listeners) fanOut(ctx context.Context, sender *pgconn.PgConn, m notifyMode, pid int) (sample, error) {
	t0 := time.Now()
	ls.reset(t0.UnixNano(), m.count)
	cpu := startCPU(pid)
	for i := range m.count {
		if m.every > 0 {
			time.Sleep(time.Until(t0.Add(time.Duration(i) * m.every)))
		}
		sql := "SELECT pg_notify('" + notifyChannel + "', '" + strconv.FormatInt(time.Now().UnixNano(), 10) + "')"
		if _, err := sender.Exec(ctx, sql).ReadAll(); err != nil {
			return sample{}, fmt.Errorf("pg_notify: %w", err)
		}
	}
	select {
	case <-ls.all:
	case <-time.After(notifyGrace):
	case <-ctx.Done():
		return sample{}, ctx.Err()
	}
	lat, last, bad := ls.collect(t0)
	missing := int64(len(ls.each)*m.count - len(lat))
	s := cpu.measured(summarize(lat, last.Sub(t0), missing+bad))
	if missing+bad > 0 || ls.notices.Load() > 0 || ls.dead.Load() > 0 {
		fmt.Printf("  %s %s: %d of %d deliveries missing, %d repeated or out of order; %s\n",
			notifyWorkload, m.name, missing, len(ls.each)*m.count, bad, ls.trouble())
	}
	return s, nil
}

// collect gathers the cell's latencies, the time of the last arrival and
// the count of bad deliveries.
func (ls *listeners) collect(t0 time.Time) (lat []time.Duration, last time.Time, bad int64) {
	lat = make([]time.Duration, 0, ls.got.Load())
	last = t0
	for i := range ls.each {
		l := &ls.each[i]
		l.mu.Lock()
		lat = append(lat, l.lat...)
		if at := time.Unix(0, l.at); at.After(last) {
			last = at
		}
		bad += l.bad
		l.mu.Unlock()
	}
	return lat, last, bad
}

// trouble says what went wrong on the listening connections, if anything.
func (ls *listeners) trouble() string {
	s := fmt.Sprintf("%d notices", ls.notices.Load())
	if v, ok := ls.notice.Load().(string); ok {
		s += fmt.Sprintf(" (first: %s)", v)
	}
	s += fmt.Sprintf(", %d connections lost", ls.dead.Load())
	if v, ok := ls.deadErr.Load().(string); ok {
		s += fmt.Sprintf(" (first: %s)", v)
	}
	return s
}
