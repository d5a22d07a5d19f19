package notify

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Key names one listener connection: a backend and a database.
type Key struct{ Backend, Database string }

// Notification is one NotificationResponse as the listener received it.
type Notification struct {
	Channel string
	Payload string
	PID     uint32 // process id of the backend that sent it
}

// Subscriber receives the notifications of the channels it subscribed to.
// The hub calls both methods from its own goroutine, in the order received;
// they must not block, and must not call the Hub (the hub holds the key's
// lock while it calls them, which is what guarantees that no call arrives
// after Unsubscribe returns). Subscribers are map keys, so a Subscriber must
// be comparable: use a pointer.
type Subscriber interface {
	Notify(n Notification)
	// Lost says notifications on these channels (the subscriber's own, on
	// that key) may have been missed: the listener connection was lost and
	// has been re-established (re-LISTENed).
	Lost(key Key, channels []string)
}

// Options configure a Hub.
type Options struct {
	// ConnString returns how to log in for key: a libpq connection string
	// and the password ("" if none). The stack wires it to
	// backend.Manager.ConnString with the configured listener role.
	ConnString func(Key) (conn, password string, err error)
	Log        *zap.Logger           // nil: zap.NewNop()
	Registerer prometheus.Registerer // nil: no metrics
}

// ApplicationName is the application_name every listener connection logs in
// with, whatever the connection string says, so that it can be found in
// pg_stat_activity.
const ApplicationName = "mqstack-listener"

// maxChannelLen is NAMEDATALEN-1 of a stock Postgres build. LISTEN truncates
// a longer identifier and pg_notify refuses one, so a longer name could never
// match a notification.
const maxChannelLen = 63

var (
	// ErrClosed is returned by Subscribe once Close has been called.
	ErrClosed = errors.New("notify: hub closed")
	// ErrChannelName is returned by Subscribe for a name no LISTEN can
	// carry: empty, longer than 63 bytes, or holding a NUL byte.
	ErrChannelName = errors.New("notify: invalid channel name")
)

// Hub owns the listeners, one per Key, each started by its first Subscribe
// and stopped when its last subscriber leaves.
type Hub struct {
	connString func(Key) (string, string, error)
	log        *zap.Logger
	metrics    *metrics
	ctx        context.Context // ended by Close; all listener work derives from it
	cancel     context.CancelFunc
	wg         sync.WaitGroup // one per running listener goroutine

	mu        sync.Mutex // guards listeners and closed; taken before a listener's mu
	listeners map[Key]*listener
	closed    bool
}

// New makes a Hub. It registers the hub's metrics with opts.Registerer and
// panics if they are already registered there (a wiring bug).
func New(opts Options) *Hub {
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		connString: opts.ConnString,
		log:        log,
		metrics:    newMetrics(opts.Registerer),
		ctx:        ctx,
		cancel:     cancel,
		listeners:  make(map[Key]*listener),
	}
}

// Subscribe adds sub to channel's subscribers on key's listener (starting
// the listener on first use). The channel is the exact name as Postgres
// folded it (case-sensitive; any byte but NUL, at most 63 bytes).
//
// When the listener connection is up, Subscribe returns only after that
// connection's LISTEN on the channel has completed, so a NOTIFY committed
// after Subscribe returns is delivered. A listener that has never been
// connected counts as up: Subscribe waits for its first connection and
// returns the error if that connection cannot be made. When the connection
// is down after having been up (reconnecting) Subscribe returns at once; the
// channel is LISTENed when the connection comes back and Lost follows.
//
// Subscribing twice to the same channel is a no-op. Errors: ctx ended, hub
// closed, the first connection failed, or the backend refused the LISTEN;
// after an error sub is not subscribed (unless an earlier call had already
// subscribed it).
func (h *Hub) Subscribe(ctx context.Context, key Key, channel string, sub Subscriber) error {
	if channel == "" || len(channel) > maxChannelLen || strings.IndexByte(channel, 0) >= 0 {
		return ErrChannelName
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l, err := h.lockedListener(key)
	if err != nil {
		return err
	}
	added, ready := l.subscribe(channel, sub)
	l.mu.Unlock()
	if ready == nil {
		return nil
	}
	select {
	case <-ready.done:
		return ready.err // on error the listener has already removed sub
	case <-ctx.Done():
		if added {
			h.Unsubscribe(key, channel, sub)
		}
		return ctx.Err()
	case <-h.ctx.Done():
		return ErrClosed
	}
}

// lockedListener returns key's listener with its mu held, starting one when
// there is none. A listener found stopped has just left the map, so the next
// look finds another or none.
func (h *Hub) lockedListener(key Key) (*listener, error) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrClosed
		}
		l := h.listeners[key]
		if l == nil {
			l = newListener(h, key)
			h.listeners[key] = l
			h.wg.Add(1)
			go l.run()
		}
		h.mu.Unlock()
		l.mu.Lock()
		if l.phase != phaseStopped {
			return l, nil
		}
		l.mu.Unlock()
	}
}

// running returns key's listener, or nil.
func (h *Hub) running(key Key) *listener {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.listeners[key]
}

// Unsubscribe removes sub from channel (no-op if not subscribed); it never
// blocks on the connection. When a channel has no subscriber left, the
// listener UNLISTENs it (asynchronously); when the key has none left, the
// listener closes its connection and stops.
func (h *Hub) Unsubscribe(key Key, channel string, sub Subscriber) {
	l := h.running(key)
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unsubscribe(channel, sub)
}

// UnsubscribeAll removes sub from every channel on key.
func (h *Hub) UnsubscribeAll(key Key, sub Subscriber) {
	l := h.running(key)
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, ch := range l.channels {
		if _, ok := ch.subs[sub]; ok {
			l.unsubscribe(name, sub)
		}
	}
}

// Close stops every listener and closes its connection, waiting for them;
// after it, Subscribe returns ErrClosed. Safe to call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}
