package proxy

import (
	"errors"
	"net"
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

// idleInTxLocked reports whether the session is idle in a transaction.
// s.mu is held; TxStatus is read only with nothing in flight, when the
// reader does not write it.
func (s *session) idleInTxLocked() bool {
	return s.conn != nil && s.inflight == 0 && s.conn.TxStatus != 'I'
}

// armIdleLocked starts the clock when the session is idle in a transaction
// and the clock is not running. s.mu is held.
func (s *session) armIdleLocked() {
	d := s.srv.config().IdleInTransactionTimeout
	if d <= 0 || s.idleArmed.Load() || s.clientGone || !s.idleInTxLocked() {
		return
	}
	s.idleSince, s.idleFor = time.Now(), d
	s.idleArmed.Store(true)
	s.raw.SetReadDeadline(s.idleSince.Add(d))
}

// disarmIdle stops the clock; it reports whether it was running.
func (s *session) disarmIdle() bool {
	if !s.idleArmed.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.idleArmed.Load() {
		return false
	}
	s.idleArmed.Store(false)
	s.raw.SetReadDeadline(time.Time{})
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
	if !s.idleArmed.Load() {
		// Not our deadline (none other is set after login): read on.
		s.raw.SetReadDeadline(time.Time{})
		return nil, true
	}
	if !s.idleInTxLocked() {
		s.idleArmed.Store(false)
		s.raw.SetReadDeadline(time.Time{})
		return nil, true
	}
	if left := s.idleFor - time.Since(s.idleSince); left > 0 {
		s.raw.SetReadDeadline(time.Now().Add(left))
		return nil, true
	}
	return &Error{Severity: "FATAL", Code: pgerrcode.IdleInTransactionSessionTimeout,
		Message: "terminating connection due to idle-in-transaction timeout (proxy.idle_in_transaction_timeout " + s.idleFor.String() + ")",
		Hint:    "commit or roll back transactions promptly: an open transaction holds a shared backend connection"}, false
}
