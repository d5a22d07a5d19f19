package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

const (
	minBackoff   = 50 * time.Millisecond
	maxBackoff   = 2 * time.Second
	dialTimeout  = 10 * time.Second
	execTimeout  = 10 * time.Second // a LISTEN batch slower than this means a stuck backend
	closeTimeout = 2 * time.Second
)

// errStopped ends a session whose listener stopped for want of subscribers.
var errStopped = errors.New("notify: listener stopped")

// phase is where a listener is in its life; it decides whether Subscribe
// waits for the LISTEN.
type phase int

const (
	phaseDialing      phase = iota // never connected: Subscribe waits for the first connection
	phaseUp                        // connected, channels LISTENed: Subscribe waits for its LISTEN
	phaseReconnecting              // lost after being up: Subscribe returns at once, Lost follows
	phaseStopped                   // out of the hub's map: takes no subscriber
)

// listener is one key's connection and the goroutine (run) that owns it.
type listener struct {
	hub *Hub
	key Key

	mu         sync.Mutex // guards the fields below; taken after hub.mu
	phase      phase
	channels   map[string]*channel
	dirty      map[string]struct{}
	subCount   int // (channel, subscriber) pairs
	wake       context.Context
	wakeCancel context.CancelFunc

	batch []change // owned by the goroutine
}

func newListener(h *Hub, key Key) *listener {
	return &listener{
		hub:      h,
		key:      key,
		channels: make(map[string]*channel),
		dirty:    make(map[string]struct{}),
	}
}

// run connects, serves and reconnects until the listener stops or the hub
// closes.
func (l *listener) run() {
	defer l.hub.wg.Done()
	defer l.stop(true)
	delay := minBackoff
	for {
		up, err := l.session()
		if errors.Is(err, errStopped) || l.hub.ctx.Err() != nil {
			return
		}
		if up {
			delay = minBackoff
		}
		l.lose(up, err)
		if !l.sleep(delay) {
			return
		}
		delay = min(2*delay, maxBackoff)
	}
}

// lose logs a connection that failed and resets the table for the next one.
func (l *listener) lose(wasUp bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fields := []zap.Field{zap.String("backend", l.key.Backend), zap.String("database", l.key.Database), zap.Error(err)}
	switch {
	case wasUp:
		l.hub.log.Warn("notify: listener connection lost; notifications sent until it is back are missed", fields...)
	case l.phase == phaseDialing:
		l.hub.log.Warn("notify: cannot connect the listener", fields...)
	default:
		l.hub.log.Debug("notify: listener reconnect attempt failed", fields...)
	}
	l.disconnected(err)
}

// sleep waits d before the next attempt, and says whether to make one: not
// when the hub closes or nobody is left.
func (l *listener) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		l.mu.Lock()
		wake := l.wakeCtx()
		l.mu.Unlock()
		if l.stop(false) {
			return false
		}
		select {
		case <-t.C:
			return true
		case <-l.hub.ctx.Done():
			return false
		case <-wake.Done(): // the table changed: look again whether anyone is left
		}
	}
}

// stop takes the listener out of the hub when nobody is subscribed, or
// unconditionally with force (the goroutine is ending). It releases every
// Subscribe still waiting and takes the listener's share off the gauges.
func (l *listener) stop(force bool) bool {
	h := l.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !force && l.subCount > 0 {
		return false
	}
	if h.listeners[l.key] == l {
		delete(h.listeners, l.key)
	}
	if !force {
		l.phase = phaseStopped
		return true
	}
	for name, ch := range l.channels {
		if ch.listened {
			h.metrics.channels.Dec()
		}
		l.forget(name, ch, ErrClosed)
	}
	h.metrics.subscriptions.Sub(float64(l.subCount))
	l.subCount = 0
	clear(l.dirty)
	l.kick() // releases the wake context from the hub's
	l.phase = phaseStopped
	return true
}

// session makes one connection and serves it until it fails (the error) or
// the listener stops (errStopped). up says whether it got in sync.
func (l *listener) session() (up bool, err error) {
	pc, err := l.dial()
	if err != nil {
		return false, err
	}
	l.hub.metrics.connections.Inc()
	defer l.hangUp(pc)
	if err := l.sync(pc); err != nil {
		return false, err
	}
	return true, l.serve(pc)
}

func (l *listener) dial() (*pgconn.PgConn, error) {
	if l.hub.connString == nil {
		return nil, errors.New("notify: Options.ConnString is not set")
	}
	conn, password, err := l.hub.connString(l.key)
	if err != nil {
		return nil, fmt.Errorf("notify: connection string for backend %q database %q: %w", l.key.Backend, l.key.Database, err)
	}
	cfg, err := pgconn.ParseConfig(conn)
	if err != nil {
		return nil, fmt.Errorf("notify: connection string for backend %q database %q: %w", l.key.Backend, l.key.Database, err)
	}
	if password != "" {
		cfg.Password = password
	}
	cfg.RuntimeParams["application_name"] = ApplicationName
	cfg.OnNotification = l.fanOut
	ctx, cancel := context.WithTimeout(l.hub.ctx, dialTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("notify: connecting the listener for backend %q database %q: %w", l.key.Backend, l.key.Database, err)
	}
	return pc, nil
}

// hangUp closes pc and waits for pgconn's own cleanup of it, so that no
// goroutine outlives the listener. For a connection pgconn found broken that
// cleanup (a cancel request, then draining) runs in its own goroutine,
// bounded by pgconn at 15s; against a backend that is merely gone it ends at
// once.
func (l *listener) hangUp(pc *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	pc.Close(ctx)
	cancel()
	<-pc.CleanupDone()
	l.hub.metrics.connections.Dec()
}

// sync LISTENs every subscribed channel on a new connection (one statement
// for all of them, then whatever changed meanwhile) and then declares the
// listener up. After a reconnect it tells every subscriber what it may have
// missed.
func (l *listener) sync(pc *pgconn.PgConn) error {
	l.mu.Lock()
	for name := range l.channels {
		l.dirty[name] = struct{}{}
	}
	l.mu.Unlock()
	for {
		if err := l.hub.ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		if len(l.dirty) == 0 {
			l.goUp()
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		if err := l.apply(pc); err != nil {
			return err
		}
	}
}

// goUp marks the listener up; runs with mu held.
func (l *listener) goUp() {
	reconnect := l.phase == phaseReconnecting
	l.phase = phaseUp
	if !reconnect {
		return
	}
	l.hub.metrics.reconnects.Inc()
	lost := l.lostBySubscriber()
	l.hub.log.Info("notify: listener reconnected; telling subscribers what they may have missed",
		zap.String("backend", l.key.Backend), zap.String("database", l.key.Database),
		zap.Int("channels", len(l.channels)), zap.Int("subscribers", len(lost)))
	for sub, names := range lost {
		sub.Lost(l.key, names)
	}
}

// serve runs the statements the table asks for and otherwise waits for
// notifications, until the connection fails or nobody is left.
func (l *listener) serve(pc *pgconn.PgConn) error {
	for {
		if err := l.hub.ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		wake := l.wakeCtx()
		pending, idle := len(l.dirty) > 0, l.subCount == 0
		l.mu.Unlock()
		if idle && l.stop(false) {
			return errStopped
		}
		if pending {
			if err := l.apply(pc); err != nil {
				return err
			}
			continue
		}
		if err := pc.WaitForNotification(wake); err != nil && !interrupted(pc, err) {
			return err
		}
	}
}

// interrupted says whether WaitForNotification ended because its context did
// (a change is pending or the hub closed) with the connection still usable:
// pgconn's default context handler ends the wait by setting a deadline, and
// a timeout does not close the connection. Anything else means it is dead.
func interrupted(pc *pgconn.PgConn, err error) bool {
	if pc.IsClosed() {
		return false
	}
	return pgconn.Timeout(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fanOut hands a notification to the channel's subscribers; pgconn calls it
// on the listener's goroutine, during a wait or a statement.
func (l *listener) fanOut(_ *pgconn.PgConn, n *pgconn.Notification) {
	l.hub.metrics.received.Inc()
	msg := Notification{Channel: n.Channel, Payload: n.Payload, PID: n.PID}
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := l.channels[n.Channel]
	if ch == nil {
		return
	}
	for sub := range ch.subs {
		sub.Notify(msg)
	}
}
