package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/configs"
	"mqstack/internal/notify"
	"mqstack/internal/testenv"
	"mqstack/router"
)

// listener is a client whose notifications are collected as pgconn reads
// them, so a test can tell whether one arrived before a statement returned.
type listener struct {
	*pgx.Conn
	notes chan *pgconn.Notification
}

// listener connects a listener; tweak, when given, adjusts its
// configuration (after notifications are routed to notes).
func (h *harness) listener(t *testing.T, tweak ...func(*pgx.ConnConfig, *listener)) *listener {
	t.Helper()
	cfg, err := pgx.ParseConfig(h.connString())
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{notes: make(chan *pgconn.Notification, 1000)}
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) { l.notes <- n }
	for _, fn := range tweak {
		fn(cfg, l)
	}
	if l.Conn, err = pgx.ConnectConfig(ctxT(t, 15*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

func (l *listener) exec(t *testing.T, sql string) {
	t.Helper()
	if _, err := l.Exec(ctxT(t, 15*time.Second), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// next waits for the next notification kept in notes, reading the
// connection while idle.
func (l *listener) next(t *testing.T) *pgconn.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		select {
		case n := <-l.notes:
			return n
		default:
		}
		if err := l.PgConn().WaitForNotification(ctx); err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
	}
}

// none requires that no notification has arrived.
func (l *listener) none(t *testing.T, when string) {
	t.Helper()
	select {
	case n := <-l.notes:
		t.Fatalf("%s: unexpected notification %q %q", when, n.Channel, n.Payload)
	default:
	}
}

func notifyOn(t *testing.T, c *pgx.Conn, channel, payload string) {
	t.Helper()
	if _, err := c.Exec(ctxT(t, 10*time.Second), "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		t.Fatal(err)
	}
}

// LISTEN does not pin: with a pool of one backend, listeners leave it free
// for everyone, and receive what others send, with the sender's process id
// or, for their own notifications, the one their BackendKeyData gave them.
func TestListenDoesNotPin(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 1 })
	var ls []*listener
	for range 3 {
		l := h.listener(t)
		l.exec(t, "LISTEN no_pin")
		ls = append(ls, l)
	}
	sender := h.connect(t)
	notifyOn(t, sender, "no_pin", "hello")
	for i, l := range ls {
		n := l.next(t)
		if n.Channel != "no_pin" || n.Payload != "hello" || n.PID == l.PgConn().PID() {
			t.Fatalf("listener %d got %q %q from pid %d (own pid %d)", i, n.Channel, n.Payload, n.PID, l.PgConn().PID())
		}
	}
	// A listener's own notification carries its own process id.
	notifyOn(t, ls[0].Conn, "no_pin", "self")
	if n := ls[0].next(t); n.Payload != "self" || n.PID != ls[0].PgConn().PID() {
		t.Fatalf("own notification: %q from pid %d, want pid %d", n.Payload, n.PID, ls[0].PgConn().PID())
	}
	if got := counterValue(t, h, "mqstack_pins_total", "cause", string(router.PinListen)); got != 0 {
		t.Fatalf("pins{cause=listen} = %v, want 0", got)
	}
	if got := testenv.Metric(t, h.reg, "mqstack_proxy_listening_clients", nil); got != 3 {
		t.Fatalf("listening clients = %v, want 3", got)
	}
}

// LISTEN and UNLISTEN inside a transaction block take effect at COMMIT; a
// rollback or a failed transaction forgets them; UNLISTEN * drops all.
func TestListenTransactions(t *testing.T) {
	h := newHarness(t, nil)
	l := h.listener(t)
	sender := h.connect(t)
	l.exec(t, "LISTEN barrier")
	barrier := func(when string) {
		t.Helper()
		notifyOn(t, sender, "barrier", when)
		if n := l.next(t); n.Channel != "barrier" || n.Payload != when {
			t.Fatalf("%s: got %q %q before the barrier", when, n.Channel, n.Payload)
		}
	}

	l.exec(t, "BEGIN")
	l.exec(t, "LISTEN rolled")
	l.exec(t, "ROLLBACK")
	notifyOn(t, sender, "rolled", "x")
	barrier("after rollback")

	l.exec(t, "BEGIN")
	l.exec(t, "LISTEN committed")
	notifyOn(t, sender, "committed", "early") // before COMMIT: not listening yet
	l.exec(t, "COMMIT")
	notifyOn(t, sender, "committed", "late")
	if n := l.next(t); n.Channel != "committed" || n.Payload != "late" {
		t.Fatalf("after commit: got %q %q, want committed late", n.Channel, n.Payload)
	}

	l.exec(t, "BEGIN")
	if _, err := l.Exec(ctxT(t, 10*time.Second), "SELECT 1/0"); err == nil {
		t.Fatal("1/0 succeeded")
	}
	_, err := l.Exec(ctxT(t, 10*time.Second), "LISTEN failed_tx")
	if sqlState(err) != "25P02" {
		t.Fatalf("LISTEN in a failed transaction: %v, want 25P02", err)
	}
	l.exec(t, "COMMIT") // rolls back
	notifyOn(t, sender, "failed_tx", "x")
	barrier("after failed transaction")

	l.exec(t, "BEGIN")
	l.exec(t, "UNLISTEN committed")
	l.exec(t, "ROLLBACK")
	notifyOn(t, sender, "committed", "still")
	if n := l.next(t); n.Channel != "committed" || n.Payload != "still" {
		t.Fatalf("after a rolled-back UNLISTEN: got %q %q", n.Channel, n.Payload)
	}

	l.exec(t, "UNLISTEN *")
	notifyOn(t, sender, "committed", "gone")
	notifyOn(t, sender, "barrier", "gone")
	l.exec(t, "LISTEN barrier")
	barrier("after UNLISTEN *")
	l.none(t, "after UNLISTEN *")
}

// Notifications wait while the client is inside a transaction and arrive,
// in order, before the ReadyForQuery that ends it.
func TestListenDeliveredBetweenTransactions(t *testing.T) {
	h := newHarness(t, nil)
	l := h.listener(t)
	sender := h.connect(t)
	l.exec(t, "LISTEN between")
	l.exec(t, "BEGIN")
	for i := range 3 {
		notifyOn(t, sender, "between", fmt.Sprint(i))
	}
	testenvWaitReceived(t, h, 3)
	l.exec(t, "SELECT 1")
	l.none(t, "inside the transaction")
	l.exec(t, "COMMIT")
	for i := range 3 {
		select {
		case n := <-l.notes:
			if n.Payload != fmt.Sprint(i) {
				t.Fatalf("notification %d: payload %q", i, n.Payload)
			}
		default:
			t.Fatalf("notification %d had not arrived when COMMIT returned", i)
		}
	}
}

// testenvWaitReceived waits until the shared listener has received n
// notifications in all.
func testenvWaitReceived(t *testing.T, h *harness, n float64) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "the listener to receive the notifications", func() bool {
		return testenv.Metric(t, h.reg, "mqstack_notify_received_total", nil) >= n
	})
}

// Channel names fold and quote as in Postgres.
func TestListenChannelNames(t *testing.T) {
	h := newHarness(t, nil)
	quoted, folded := h.listener(t), h.listener(t)
	quoted.exec(t, `LISTEN "Mixed.Case"`)
	folded.exec(t, `LISTEN Mixed_Case`)
	sender := h.connect(t)
	notifyOn(t, sender, "Mixed.Case", "q")
	notifyOn(t, sender, "mixed_case", "f")
	if n := quoted.next(t); n.Channel != "Mixed.Case" || n.Payload != "q" {
		t.Fatalf("quoted listener got %q %q", n.Channel, n.Payload)
	}
	if n := folded.next(t); n.Channel != "mixed_case" || n.Payload != "f" {
		t.Fatalf("folded listener got %q %q", n.Channel, n.Payload)
	}
	quoted.none(t, "quoted")
	folded.none(t, "folded")
}

// LISTEN mixed with other statements in one query is refused, and the
// session goes on.
func TestListenMixedRefused(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t)
	_, err := c.Exec(ctxT(t, 10*time.Second), "SELECT 1; LISTEN mixed")
	if sqlState(err) != "0A000" {
		t.Fatalf("mixed LISTEN: %v, want 0A000", err)
	}
	if _, err := c.Exec(ctxT(t, 10*time.Second), "LISTEN a_chan; LISTEN b_chan"); err != nil {
		t.Fatalf("LISTEN a; LISTEN b: %v", err)
	}
	var n int
	if err := c.QueryRow(ctxT(t, 10*time.Second), "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after: %v", err)
	}
}

// A client that does not take its notifications is warned at half of
// proxy.max_pending_notifications and closed over it; the others go on.
func TestListenClientFallsBehind(t *testing.T) {
	h := newHarness(t, func(p *configs.ProxyConfig, _ *configs.PoolConfig) { p.MaxPendingNotifications = 4 })
	slow, ok := h.listener(t), h.listener(t)
	slow.exec(t, "LISTEN behind")
	ok.exec(t, "LISTEN behind")
	slow.exec(t, "BEGIN") // notifications wait for its transaction's end
	sender := h.connect(t)
	for i := range 6 {
		notifyOn(t, sender, "behind", fmt.Sprint(i))
	}
	for i := range 6 {
		if n := ok.next(t); n.Payload != fmt.Sprint(i) {
			t.Fatalf("the other listener: notification %d is %q", i, n.Payload)
		}
	}
	_, err := slow.Exec(ctxT(t, 10*time.Second), "SELECT 1")
	var pe *pgconn.PgError
	for err == nil { // the FATAL may come after a statement's answer
		_, err = slow.Exec(ctxT(t, 10*time.Second), "SELECT 1")
	}
	if errors.As(err, &pe) && pe.Code != "53400" {
		t.Fatalf("slow listener: %v, want 53400", err)
	}
	waitCounter(t, h, "mqstack_connections_closed_total", "reason", closeNotifyBehind, 1)
	notifyOn(t, sender, "behind", "after")
	if n := ok.next(t); n.Payload != "after" {
		t.Fatalf("after the slow client left: %q", n.Payload)
	}
}

// waitCounter waits for a labelled counter to reach want.
func waitCounter(t *testing.T, h *harness, name, label, value string, want float64) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%s{%s=%s} to reach %v", name, label, value, want), func() bool {
		return counterValue(t, h, name, label, value) >= want
	})
}

// When the shared listener connection is lost under load, the proxy
// reconnects and listens again; each listening client is told that
// notifications from the gap may be lost, and later ones arrive.
func TestListenListenerReconnects(t *testing.T) {
	h := newHarness(t, nil)
	notices := make(chan *pgconn.Notice, 10)
	var loads atomic.Int64
	l := h.listener(t, func(cfg *pgx.ConnConfig, l *listener) {
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n }
		cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
			if n.Payload == "load" {
				loads.Add(1) // counted, not kept: the test does not read them all
				return
			}
			l.notes <- n
		}
	})
	l.exec(t, `LISTEN "gap.Chan"`)
	d := h.direct(t)
	// Load: a sender notifies without pause until the test ends.
	load := h.direct(t)
	stop := make(chan struct{})
	sent := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				sent <- n
				return
			default:
			}
			if _, err := load.Exec(context.Background(), `SELECT pg_notify('gap.Chan', 'load')`); err == nil {
				n++
			}
		}
	}()
	testenv.WaitFor(t, 10*time.Second, "notifications under load", func() bool {
		return testenv.Metric(t, h.reg, "mqstack_notify_received_total", nil) >= 20
	})
	var killed int
	if err := d.QueryRow(ctxT(t, 10*time.Second), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, notify.ApplicationName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminating the listener connection: %d terminated, %v", killed, err)
	}
	testenv.WaitFor(t, 10*time.Second, "the listener to reconnect", func() bool {
		return testenv.Metric(t, h.reg, "mqstack_notify_listener_reconnects_total", nil) >= 1
	})
	// The gap warning is delivered while the client is idle: wait for it by
	// reading the connection.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(notices) == 0 && ctx.Err() == nil {
		wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		l.PgConn().WaitForNotification(wctx)
		wcancel()
	}
	select {
	case n := <-notices:
		if n.Severity != "WARNING" || !strings.Contains(n.Message, `"gap.Chan"`) || !strings.Contains(n.Message, "may have been lost") {
			t.Fatalf("gap notice: %s %q", n.Severity, n.Message)
		}
	default:
		t.Fatal("no gap notice")
	}
	close(stop)
	if n := <-sent; n < 20 {
		t.Fatalf("only %d notifications sent under load", n)
	}
	notifyOn(t, h.connect(t), "gap.Chan", "after")
	if n := l.next(t); n.Channel != "gap.Chan" || n.Payload != "after" {
		t.Fatalf("after the reconnect: %q %q", n.Channel, n.Payload)
	}
	if loads.Load() == 0 {
		t.Fatal("the client received none of the notifications sent under load")
	}
}

// pg_listening_channels() answers the client's own channels (the backends
// listen for nobody); other forms of it are refused.
func TestListenListeningChannels(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t)
	other := h.connect(t)
	other.Exec(ctxT(t, 10*time.Second), "LISTEN not_mine")
	for _, sql := range []string{`LISTEN "B.chan"`, "LISTEN a_chan"} {
		if _, err := c.Exec(ctxT(t, 10*time.Second), sql); err != nil {
			t.Fatal(err)
		}
	}
	channels := func() []string {
		t.Helper()
		rows, err := c.Query(ctxT(t, 10*time.Second), "SELECT pg_listening_channels()", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := fmt.Sprint(channels()); got != "[B.chan a_chan]" {
		t.Fatalf("channels %s, want [B.chan a_chan]", got)
	}
	c.Exec(ctxT(t, 10*time.Second), "BEGIN")
	c.Exec(ctxT(t, 10*time.Second), "UNLISTEN a_chan")
	if got := fmt.Sprint(channels()); got != "[B.chan a_chan]" {
		t.Fatalf("inside the transaction: %s, want both until COMMIT", got)
	}
	c.Exec(ctxT(t, 10*time.Second), "COMMIT")
	if got := fmt.Sprint(channels()); got != "[B.chan]" {
		t.Fatalf("after COMMIT: %s, want [B.chan]", got)
	}
	// Prepared (named and unnamed) with the extended protocol, with a
	// column alias and in a transaction block.
	c.Exec(ctxT(t, 10*time.Second), `LISTEN "x""y"`)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		for _, inTx := range []bool{false, true} {
			if inTx {
				c.Exec(ctxT(t, 10*time.Second), "BEGIN")
			}
			rows, err := c.Query(ctxT(t, 10*time.Second), `SELECT pg_listening_channels() AS "My Col"`, mode)
			if err != nil {
				t.Fatal(err)
			}
			if f := rows.FieldDescriptions(); len(f) != 1 || f[0].Name != "My Col" || f[0].DataTypeOID != 25 {
				t.Fatalf("mode %v: fields %+v", mode, f)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || fmt.Sprint(got) != `[B.chan x"y]` {
				t.Fatalf("mode %v, in a transaction %v: %v %v", mode, inTx, got, err)
			}
			if inTx {
				c.Exec(ctxT(t, 10*time.Second), "COMMIT")
			}
		}
	}
	c.Exec(ctxT(t, 10*time.Second), `UNLISTEN "x""y"`)
	// Other forms are refused; the session goes on.
	if _, err := c.Exec(ctxT(t, 10*time.Second), "SELECT count(*) FROM pg_listening_channels()"); sqlState(err) != "0A000" {
		t.Fatalf("other form: %v, want 0A000", err)
	}
	if got := fmt.Sprint(channels()); got != "[B.chan]" {
		t.Fatalf("after the refusals: %s", got)
	}
}

// One client may listen on at most maxListenChannels channels: all of them
// go to the one shared connection.
func TestListenChannelCap(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t)
	var b strings.Builder
	for i := range maxListenChannels {
		fmt.Fprintf(&b, "LISTEN cap_%d;", i)
	}
	if _, err := c.Exec(ctxT(t, 60*time.Second), b.String()); err != nil {
		t.Fatalf("%d LISTENs: %v", maxListenChannels, err)
	}
	if _, err := c.Exec(ctxT(t, 10*time.Second), "LISTEN one_more"); sqlState(err) != "54000" {
		t.Fatalf("LISTEN over the cap: %v, want 54000", err)
	}
	c.Exec(ctxT(t, 10*time.Second), "BEGIN")
	if _, err := c.Exec(ctxT(t, 10*time.Second), "LISTEN one_more"); sqlState(err) != "54000" {
		t.Fatalf("LISTEN over the cap in a transaction: %v, want 54000", err)
	}
	c.Exec(ctxT(t, 10*time.Second), "ROLLBACK")
	for _, sql := range []string{"LISTEN cap_7", "UNLISTEN cap_7", "LISTEN one_more"} {
		if _, err := c.Exec(ctxT(t, 10*time.Second), sql); err != nil {
			t.Fatalf("%s at the cap: %v", sql, err)
		}
	}
}

// LISTEN prepared with the extended protocol (as JDBC sends it), named and
// unnamed, inside and outside a transaction block: answered by the proxy,
// never pinning, with Postgres' semantics; the client's own empty
// statements still get EmptyQueryResponse in order.
func TestListenExtendedProtocol(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 1 })
	l := h.listener(t)
	pc := l.PgConn()
	ctx := ctxT(t, 30*time.Second)
	if _, err := pc.Prepare(ctx, "l1", "LISTEN ext_named", nil); err != nil {
		t.Fatal(err)
	}
	if res := pc.ExecPrepared(ctx, "l1", nil, nil, nil).Read(); res.Err != nil || res.CommandTag.String() != "LISTEN" {
		t.Fatalf("named LISTEN: %v %q", res.Err, res.CommandTag)
	}
	if res := pc.ExecParams(ctx, `LISTEN "Ext.Unnamed"`, nil, nil, nil, nil).Read(); res.Err != nil || res.CommandTag.String() != "LISTEN" {
		t.Fatalf("unnamed LISTEN: %v %q", res.Err, res.CommandTag)
	}
	l.exec(t, "BEGIN")
	if res := pc.ExecParams(ctx, "LISTEN ext_rolled", nil, nil, nil, nil).Read(); res.Err != nil {
		t.Fatal(res.Err)
	}
	l.exec(t, "ROLLBACK")
	// The client's own empty statement, around a LISTEN in one cycle.
	results, err := pc.ExecBatch(ctx, func() *pgconn.Batch {
		b := &pgconn.Batch{}
		b.ExecParams("", nil, nil, nil, nil)
		b.ExecParams("UNLISTEN ext_named", nil, nil, nil, nil)
		b.ExecParams("", nil, nil, nil, nil)
		return b
	}()).ReadAll()
	if err != nil || len(results) != 3 || results[1].CommandTag.String() != "UNLISTEN" {
		t.Fatalf("batch: %v %d results", err, len(results))
	}
	// Another client has the pool's only backend: nothing is pinned.
	other := h.connect(t)
	notifyOn(t, other, "ext_named", "no")
	notifyOn(t, other, "ext_rolled", "no")
	notifyOn(t, other, "Ext.Unnamed", "yes")
	if n := l.next(t); n.Channel != "Ext.Unnamed" || n.Payload != "yes" {
		t.Fatalf("got %q %q, want Ext.Unnamed yes", n.Channel, n.Payload)
	}
	if got := counterValue(t, h, "mqstack_pins_total", "cause", string(router.PinListen)); got != 0 {
		t.Fatalf("pins{cause=listen} = %v, want 0", got)
	}
}
