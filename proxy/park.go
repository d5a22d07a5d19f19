package proxy

import (
	"errors"
	"net"
	"time"
)

// Parking. A goroutine keeps the stack it grew (the login verifies a token,
// a statement runs deep), and the garbage collector only halves a stack
// down to what its blocked read needs: an idle client would hold 4 KiB or
// more of stack for as long as it stays connected. A session that waits
// between transactions for parkAfter moves its command loop to a fresh
// goroutine, whose starting stack (2 KiB) is all the wait needs, and the
// old goroutine ends. The park deadline is armed once per idle stretch (a
// read deadline, which the idle-in-transaction clock replaces while it
// runs) and not again until a message comes, so a busy session parks at
// most once per parkAfter, an idle one once, and no message waits for it.

// parkAfter is how long a session waits between transactions before it
// parks.
const parkAfter = time.Second

// armPark sets the park deadline when the session waits between
// transactions, has not parked since its last message, and has none set.
// Client goroutine.
func (s *session) armPark() {
	if s.parked || s.parkArmed.Load() || s.idle.armed.Load() || !s.parkable() {
		return
	}
	s.armParkDeadline()
}

// armParkDeadline sets the park deadline unless it is set. The reader calls
// it when it releases the backend at the end of a transaction: the client
// goroutine is usually waiting for the client's next message by then.
func (s *session) armParkDeadline() {
	if s.client.isTLS || s.parkArmed.Swap(true) {
		return
	}
	s.client.raw.SetReadDeadline(time.Now().Add(parkAfter))
}

// parkNow reports whether a failed read is the park deadline of a session
// that can park, and then clears the deadline for the goroutine to come.
func (s *session) parkNow(err error) bool {
	var ne net.Error
	if !s.parkArmed.Load() || s.idle.armed.Load() || !errors.As(err, &ne) || !ne.Timeout() || !s.parkable() {
		return false // receiveFailed clears a deadline that did not apply
	}
	s.parkArmed.Store(false)
	s.parked = true
	s.client.raw.SetReadDeadline(time.Time{})
	s.srv.parks.Add(1)
	return true
}

// parkable reports whether the session is between transactions with
// nothing of the client's unread or in flight.
func (s *session) parkable() bool {
	if s.skipUntilSync || s.client.in.Unread() > 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase == phaseReady && s.backend.conn == nil
}
