package proxy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"mqstack/internal/backend"
)

// The attached backend: checked out at a client's first statement, kept
// until ReadyForQuery says idle (or for the rest of a pinned session),
// then reset when needed and released.

// attachment is the backend connection attached to the session and the
// relay's accounting of it. Guarded by s.mu, except pending and bw.
type attachment struct {
	conn       *backend.Conn // nil when none is attached
	inflight   int           // sync points (Sync, Query, FunctionCall) sent, ReadyForQuery not yet seen
	open       bool          // messages sent since the last sync point
	cycle      uint64        // sync points sent on conn
	doneCycles uint64        // ReadyForQuery seen on conn
	parseq     []pqEntry     // how to relay each ParseComplete/CloseComplete to come (prepared.go)
	copyIn     bool          // the backend is in COPY FROM STDIN
	pinned     string        // pin cause; "" while the session is pooled
	// tainted: the attached backend ran something the router cannot vouch
	// for (or settings the proxy replays changed on it): it is reset
	// before it goes back to the pool.
	tainted    bool
	readerDone chan struct{} // closed when the reader of conn has ended
	// pending counts bytes sent to the backend since its last flush
	// (client goroutine only).
	pending int
	// bw is held while the client goroutine flushes to the backend; the
	// reader takes it before releasing the connection, so a flush that
	// delivered its last byte has also finished with the buffer.
	bw sync.Mutex
}

// flushThreshold bounds what is buffered toward a backend between sync
// points (large COPY or Bind streams).
const flushThreshold = 64 << 10

// msgKind says how a client message moves the relay state.
type msgKind int

const (
	kindExtended msgKind = iota // Parse, Bind, Describe, Execute, Close: opens a cycle
	kindSync                    // Sync, FunctionCall: ends a cycle, one ReadyForQuery
	kindQuery                   // simple Query: one ReadyForQuery
	kindCopy                    // CopyData, CopyDone, CopyFail: inside a COPY
	kindFlush                   // Flush: push what is buffered
)

// betweenTransactions reports whether the session is between transactions.
func (a *attachment) betweenTransactions() bool {
	return a.conn == nil || (a.inflight == 0 && !a.open && a.conn.TxStatus == 'I')
}

// busy reports whether the backend runs something of the client's.
func (a *attachment) busy() bool { return a.inflight > 0 || a.open }

// idleInTransaction reports whether the session holds a backend inside a
// transaction with nothing in flight. TxStatus is read only then, when the
// reader does not write it.
func (a *attachment) idleInTransaction() bool {
	return a.conn != nil && a.inflight == 0 && a.conn.TxStatus != 'I'
}

// attach starts the accounting of a newly attached connection.
func (a *attachment) attach(c *backend.Conn, readerDone chan struct{}) {
	a.conn = c
	a.inflight, a.open, a.copyIn = 0, false, false
	a.cycle, a.doneCycles = 0, 0
	a.parseq = a.parseq[:0]
	a.tainted = false
	a.readerDone = readerDone
}

// syncSent counts a sync point sent: one more ReadyForQuery to come.
func (a *attachment) syncSent() {
	a.inflight++
	a.cycle++
	a.open = false
}

// waitFlush waits for a flush in progress to return.
func (a *attachment) waitFlush() {
	a.bw.Lock()
	a.bw.Unlock()
}

// attached reports whether a backend connection is attached.
func (s *session) attached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backend.conn != nil
}

// withConn runs fn with s.mu held and a backend connection attached
// (checking one out if needed), then updates the relay state for kind and
// flushes at sync points.
func (s *session) withConn(kind msgKind, pin string, fn func(c *backend.Conn)) error {
	c, err := s.lockAttached()
	if err != nil {
		return s.attachFailed(err, kind)
	}
	if pin != "" {
		s.pinLocked(pin)
	}
	if kind == kindExtended {
		s.startCycleLocked(c)
	}
	fn(c)
	switch kind {
	case kindSync, kindQuery:
		s.backend.syncSent()
		s.obs.execSeq = 0
	case kindExtended:
		s.backend.open = true
	}
	s.mu.Unlock()
	if kind != kindExtended || s.backend.pending >= flushThreshold {
		return s.flushBackend(c)
	}
	return nil
}

func (s *session) flushBackend(c *backend.Conn) error {
	s.backend.pending = 0
	s.backend.bw.Lock()
	err := c.Flush()
	s.backend.bw.Unlock()
	if err != nil {
		c.MarkBroken()
		s.log.Warn("backend write failed", zap.Stringer("pool", c.Key), zap.Error(err))
		return errBackendLost
	}
	return nil
}

// lockAttached returns the attached backend connection with s.mu held,
// checking one out (and replaying the client's settings onto it) when none
// is attached. At a transaction boundary it also ends sessions whose token
// expired or whose server is draining.
func (s *session) lockAttached() (*backend.Conn, error) {
	s.mu.Lock()
	if s.backend.conn != nil && !s.backend.betweenTransactions() {
		return s.backend.conn, nil
	}
	if err := s.boundaryCheck(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if s.backend.conn != nil {
		return s.backend.conn, nil
	}
	s.mu.Unlock()
	c, err := s.srv.backends.Acquire(s.ctx, s.login.pool, s.login.id.Holder())
	if err != nil {
		return nil, err
	}
	if s.settings.differ(c) {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		err := s.settings.apply(ctx, c)
		cancel()
		if err != nil {
			c.Release()
			return nil, err
		}
	}
	s.mu.Lock()
	s.attachLocked(c)
	return c, nil
}

// boundaryCheck ends the session between transactions when its token has
// expired or the server drains. s.mu is held.
func (s *session) boundaryCheck() error {
	if !s.srv.verifier.StillValid(s.login.id, time.Now()) {
		return closeWith(closeTokenExpired, &Error{Severity: "FATAL", Code: pgerrcode.InvalidPassword,
			Message: "token expired: session closed", Hint: "reconnect with a fresh token"})
	}
	if s.srv.isDraining() {
		return closeWith(closeShutdown, errShuttingDown())
	}
	return nil
}

// attachLocked makes c the session's backend connection and starts the
// reader that relays its messages.
func (s *session) attachLocked(c *backend.Conn) {
	done := make(chan struct{})
	s.backend.attach(c, done)
	s.deny.queue.reset()
	s.obs.reset()
	s.listen.marks.reset()
	go s.relayBackend(c, done)
}

// attachFailed reports a checkout failure as Postgres would report an
// error at that point, or returns the error when it ends the session.
func (s *session) attachFailed(err error, kind msgKind) error {
	var ce *closeError
	if errors.As(err, &ce) || s.ctx.Err() != nil {
		return err
	}
	s.log.Info("no backend connection for client", zap.Stringer("pool", s.login.pool), zap.Error(err))
	er := errorResponse(err, "ERROR", s.log)
	switch kind {
	case kindQuery, kindSync:
		return s.client.write(true, er, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	case kindExtended, kindFlush:
		s.skipUntilSync = true
		return s.client.write(true, er)
	}
	return nil
}

// readyForQuery ends a cycle (the reader calls it); it reports true when c
// was detached (and released), which ends the reader.
func (s *session) readyForQuery(c *backend.Conn, m *pgproto3.ReadyForQuery) bool {
	status := m.TxStatus // m is c's, reused once c is released
	s.mu.Lock()
	gone := s.phase == phaseClosed
	s.mu.Unlock()
	if m.TxStatus == 'I' {
		s.betweenTransactionsReader(gone)
	}
	if !gone {
		s.client.relay(m, true)
	}
	s.mu.Lock()
	s.backend.inflight--
	if s.backend.inflight < 0 {
		s.mu.Unlock()
		panic("BUG: ReadyForQuery without a sync point in flight")
	}
	s.backend.doneCycles++
	s.settleLocked(c)
	s.backend.copyIn = false
	s.settings.discarding = false
	if m.TxStatus != 'I' {
		s.armIdleLocked()
	}
	quiet := s.backend.inflight == 0 && !s.backend.open
	gone = s.phase == phaseClosed
	pinned, tainted := s.backend.pinned != "", s.backend.tainted
	detach := quiet && (gone || !pinned && m.TxStatus == 'I')
	drain := quiet && m.TxStatus == 'I' && !gone && s.srv.isDraining()
	if detach {
		s.backend.conn = nil
		c.ForgetUnnamedOf(s)
	}
	s.mu.Unlock()
	if detach {
		s.backend.waitFlush() // the flush that sent the last Sync
		if gone || tainted {
			s.resetForReuse(c, pinned || tainted)
		}
		c.Release()
		if !gone {
			s.armParkDeadline()
		}
	}
	if drain {
		s.killWith(errShuttingDown(), closeShutdown)
	}
	if status == 'I' {
		s.inbox.kick() // what came since beforeReady took the queue
	}
	return detach
}

// resetForReuse cleans a connection whose client left: the transaction is
// rolled back, and a pinned session's state is discarded.
func (s *session) resetForReuse(c *backend.Conn, pinned bool) {
	if c.Broken() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if pinned {
		err = c.Discard(ctx)
	} else if c.TxStatus != 'I' {
		err = c.Exec(ctx, "ROLLBACK")
	}
	if err != nil {
		s.log.Warn("backend reset failed; connection discarded", zap.Stringer("pool", c.Key), zap.Error(err))
		c.MarkBroken()
	}
}

// backendLost handles a backend connection that failed under a session:
// the connection is discarded and the client, whose transaction is lost,
// disconnected.
func (s *session) backendLost(c *backend.Conn, err error) {
	c.MarkBroken()
	s.mu.Lock()
	if s.backend.conn == c {
		s.backend.conn = nil
	}
	gone := s.phase == phaseClosed
	s.mu.Unlock()
	s.backend.waitFlush()
	c.Release()
	if !gone {
		s.log.Warn("backend connection lost", zap.Stringer("pool", c.Key), zap.Error(err))
		s.killWith(fatalf(pgerrcode.ConnectionFailure, "the backend connection was lost"), closeBackendError)
	}
}

// cleanupReadTimeout bounds how long a backend whose client left is waited
// for after the Sync (and cancel) that cleanup sends.
const cleanupReadTimeout = 5 * time.Second

// cleanup runs when the client goroutine ends: an attached connection is
// brought back to a known state by the reader (a Sync, after failing a COPY
// and cancelling a running statement), then released.
func (s *session) cleanup() {
	s.mu.Lock()
	s.phase = phaseClosed
	c, done := s.backend.conn, s.backend.readerDone
	var running bool
	if c != nil {
		running = s.backend.busy()
		if running || s.backend.copyIn {
			// Sent whenever a statement may still be starting a COPY FROM
			// STDIN whose CopyInResponse the reader has not seen yet: in copy
			// mode the backend ignores a Sync, and outside it ignores a
			// CopyFail.
			c.Send(&pgproto3.CopyFail{Message: "client disconnected"})
		}
		c.Send(&pgproto3.Sync{})
		s.backend.syncSent()
	}
	s.mu.Unlock()
	if c != nil {
		if running {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.Cancel(ctx)
			cancel()
		}
		// Bounded: a backend that has not come back to ReadyForQuery by
		// then (a protocol state the proxy lost track of) is closed.
		c.NetConn().SetReadDeadline(time.Now().Add(cleanupReadTimeout))
		s.backend.bw.Lock()
		err := c.Flush()
		s.backend.bw.Unlock()
		if err != nil {
			c.MarkBroken()
			c.NetConn().Close()
		}
	}
	if done != nil {
		<-done
	}
}
