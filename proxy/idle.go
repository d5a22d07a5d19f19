package proxy

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/jackc/pgerrcode"
)

// The idle-in-transaction clock (proxy.idle_in_transaction_timeout). A
// session is idle in a transaction when it holds a backend inside a
// transaction and nothing is in flight: the proxy waits for the client.
// Only the backend reader enters that state (at a ReadyForQuery 'T' or 'E');
// it then arms a read deadline on the client connection. The client
// goroutine disarms it when a message arrives and re-arms it when the
// message left the session idle (a Parse without Sync). Outside
// transactions nothing is armed, and the client goroutine pays one atomic
// load per message.

// idleClock runs while the idle-in-transaction read deadline is armed:
// since since, for limit. Written with s.mu held; armed is read without it.
type idleClock struct {
	armed atomic.Bool
	since time.Time
	limit time.Duration
}

// armIdleLocked starts the clock when the session is idle in a transaction
// and the clock is not running. s.mu is held.
func (s *session) armIdleLocked() {
	d := s.srv.config().IdleInTransactionTimeout
	if d <= 0 || s.idle.armed.Load() || s.phase == phaseClosed || !s.backend.idleInTransaction() {
		return
	}
	s.idle.since, s.idle.limit = time.Now(), d
	s.idle.armed.Store(true)
	s.client.raw.SetReadDeadline(s.idle.since.Add(d))
}

// disarmIdle stops the clock; it reports whether it was running.
func (s *session) disarmIdle() bool {
	if !s.idle.armed.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.idle.armed.Load() {
		return false
	}
	s.idle.armed.Store(false)
	s.client.raw.SetReadDeadline(time.Time{})
	s.parkArmed.Store(false) // the park deadline, if any, was replaced
	return true
}

// rearmIdle restarts the clock after a client message that left the
// session idle in its transaction.
func (s *session) rearmIdle() {
	s.mu.Lock()
	s.armIdleLocked()
	s.mu.Unlock()
}

// idleExpired is asked about a failed client read: it returns the FATAL
// error that ends the session when the idle-in-transaction clock ran out,
// or retry when the read is to go on (a deadline that no longer applies).
func (s *session) idleExpired(err error) (fatal *Error, retry bool) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.idle.armed.Load() {
		// Not our deadline (the park's, which did not apply): read on.
		s.client.raw.SetReadDeadline(time.Time{})
		s.parkArmed.Store(false)
		return nil, true
	}
	if !s.backend.idleInTransaction() {
		s.idle.armed.Store(false)
		s.client.raw.SetReadDeadline(time.Time{})
		return nil, true
	}
	if left := s.idle.limit - time.Since(s.idle.since); left > 0 {
		s.client.raw.SetReadDeadline(time.Now().Add(left))
		return nil, true
	}
	return &Error{Severity: "FATAL", Code: pgerrcode.IdleInTransactionSessionTimeout,
		Message: "terminating connection due to idle-in-transaction timeout (proxy.idle_in_transaction_timeout " + s.idle.limit.String() + ")",
		Hint:    "commit or roll back transactions promptly: an open transaction holds a shared backend connection"}, false
}
