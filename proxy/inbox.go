package proxy

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/notify"
)

// inbox holds the notifications on their way to one client. The hub adds
// to it from its own goroutine and never waits (Notify, Lost); they are
// written to the client only between its transactions, as Postgres does:
// by the reader before the ReadyForQuery that ends a transaction, or by a
// short delivery goroutine while the session is idle.
type inbox struct {
	s     *session
	mu    sync.Mutex
	items []pgproto3.BackendMessage
	// n is len(items), read without mu at each ReadyForQuery.
	n atomic.Int32
	// warned: the client was told it falls behind (until it catches up);
	// over: it went past the bound and is being closed; scheduled: a
	// delivery goroutine is on its way.
	warned, over, scheduled bool
	closed                  bool // the session has ended
}

var _ notify.Subscriber = (*inbox)(nil)

// Drop reasons (mqstack_proxy_notifications_dropped_total).
const (
	dropBehind = "client_behind"
	dropGone   = "client_gone"
)

// Notify queues a notification for the client.
func (in *inbox) Notify(n notify.Notification) {
	in.add(&pgproto3.NotificationResponse{PID: in.s.clientPID(n.PID), Channel: n.Channel, Payload: n.Payload})
}

// Lost queues a warning that notifications on channels may be missing.
func (in *inbox) Lost(_ notify.Key, channels []string) {
	quoted := make([]string, len(channels))
	for i, ch := range channels {
		quoted[i] = strconv.Quote(ch)
	}
	in.add(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: pgerrcode.Warning,
		Message: "notifications on " + strings.Join(quoted, ", ") + " may have been lost: mqstack's listener connection to Postgres was re-established",
		Hint:    "check for what the notifications announce (read the queue) once; later notifications arrive as before"})
}

// add queues msg, or closes the client when it is over its bound.
func (in *inbox) add(msg pgproto3.BackendMessage) {
	s := in.s
	max := s.srv.config().MaxPendingNotifications
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	if in.over {
		in.mu.Unlock()
		s.srv.metrics.dropped.WithLabelValues(dropBehind).Inc()
		return
	}
	if len(in.items) >= max {
		in.over = true
		in.mu.Unlock()
		s.srv.metrics.dropped.WithLabelValues(dropBehind).Inc()
		go s.killWith(fatalf(pgerrcode.ConfigurationLimitExceeded,
			"the client did not keep up with its notifications: %d were waiting (proxy.max_pending_notifications)", max),
			closeNotifyBehind)
		return
	}
	in.items = append(in.items, msg)
	in.n.Store(int32(len(in.items)))
	warn := !in.warned && len(in.items) >= (max+1)/2
	in.warned = in.warned || warn
	schedule := !in.scheduled
	in.scheduled = true
	in.mu.Unlock()
	if warn {
		go s.client.write(true, &pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING",
			Code: pgerrcode.Warning, Message: "this client is falling behind on its notifications: " + strconv.Itoa((max+1)/2) +
				" are waiting; over " + strconv.Itoa(max) + " the connection is closed",
			Hint: "end transactions sooner and read the connection while listening"})
	}
	if schedule {
		go in.deliverIdle()
	}
}

// take removes the queued messages (all of them when idle, none
// otherwise) and ends the scheduled delivery.
func (in *inbox) take(idle bool) []pgproto3.BackendMessage {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.scheduled = false
	if !idle {
		return nil
	}
	return in.popLocked()
}

// popLocked removes and returns what is queued; the client has caught up.
// in.mu is held.
func (in *inbox) popLocked() []pgproto3.BackendMessage {
	batch := in.items
	in.items = nil
	in.n.Store(0)
	in.warned = false
	return batch
}

// deliverIdle writes what is queued when the session is between
// transactions; otherwise the reader writes it at the transaction's end.
// It holds the client's write lock while it checks, so no answer of a
// transaction that starts meanwhile is written before it.
func (in *inbox) deliverIdle() {
	s := in.s
	s.client.wmu.Lock()
	defer s.client.wmu.Unlock()
	s.mu.Lock()
	idle := s.phase == phaseReady && s.backend.betweenTransactions()
	s.mu.Unlock()
	batch := in.take(idle)
	if len(batch) == 0 {
		return
	}
	for _, m := range batch {
		s.client.out.Send(m)
	}
	s.client.out.Flush()
	s.srv.metrics.delivered.Add(float64(len(batch)))
}

// kick schedules a delivery when something waits (the session just became
// idle; what came while it was not has waited for this).
func (in *inbox) kick() {
	if in.n.Load() == 0 {
		return
	}
	in.mu.Lock()
	schedule := !in.scheduled && len(in.items) > 0
	in.scheduled = in.scheduled || schedule
	in.mu.Unlock()
	if schedule {
		go in.deliverIdle()
	}
}

// beforeReady writes what is queued ahead of a ReadyForQuery 'I' the
// reader relays. Reader only.
func (in *inbox) beforeReady() {
	if in.n.Load() == 0 {
		return
	}
	in.mu.Lock()
	batch := in.popLocked()
	in.mu.Unlock()
	if len(batch) > 0 {
		in.s.client.write(false, batch...)
		in.s.srv.metrics.delivered.Add(float64(len(batch)))
	}
}

// close drops what is still queued when the session ends.
func (in *inbox) close() {
	in.mu.Lock()
	n := len(in.popLocked())
	in.closed = true
	in.mu.Unlock()
	if n > 0 {
		in.s.srv.metrics.dropped.WithLabelValues(dropGone).Add(float64(n))
	}
}
