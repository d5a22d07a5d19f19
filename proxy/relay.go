package proxy

import (
	"context"
	"errors"
	"io"
	"maps"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"mqstack/internal/backend"
	"mqstack/router"
)

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

// commandLoop relays client messages until the client leaves and returns
// why the session ends.
func (s *session) commandLoop() closeReason {
	for {
		msg, err := s.client.proto.Receive()
		if err != nil {
			if fatal, retry := s.idleExpired(err); retry {
				continue
			} else if fatal != nil {
				s.killWith(fatal, closeIdleInTx)
				return closeIdleInTx
			}
			var tooLong *pgproto3.ExceededMaxBodyLenErr
			switch {
			case s.ctx.Err() != nil:
				return closeShutdown
			case errors.As(err, &tooLong):
				s.killWith(fatalf(pgerrcode.ProgramLimitExceeded,
					"message of %d bytes is over proxy.max_message_bytes (%d)", tooLong.ActualBodyLen, tooLong.MaxExpectedBodyLen), closeClientError)
				return closeClientError
			case errors.Is(err, errClientGone) || isNetErr(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				// pgproto3 reports a closed socket as unexpected EOF: the
				// client left, it did not break the protocol.
				return closeClientGone
			}
			s.killWith(fatalf(pgerrcode.ProtocolViolation, "invalid message: %v", err), closeClientError)
			return closeClientError
		}
		wasIdle := s.disarmIdle()
		if s.skipUntilSync {
			if _, ok := msg.(*pgproto3.Sync); ok {
				s.skipUntilSync = false
				if err := s.handleSync(); err != nil {
					return s.loopError(err)
				}
			}
		} else if err := s.handle(msg); err != nil {
			return s.loopError(err)
		}
		if wasIdle {
			s.rearmIdle()
		}
	}
}

// loopError ends the command loop on err and returns the close reason:
// the one err carries (an internal error when it carries none), after
// telling the client unless the session ends quietly.
func (s *session) loopError(err error) closeReason {
	var ce *closeError
	isClose := errors.As(err, &ce)
	switch {
	case isClose && !ce.report:
		return ce.reason
	case s.ctx.Err() != nil:
		return closeShutdown
	}
	var reason closeReason = closeInternalError
	if isClose {
		reason = ce.reason
	}
	s.killWith(err, reason)
	return reason
}

func (s *session) handle(msg pgproto3.FrontendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.Query:
		return s.handleQuery(m)
	case *pgproto3.Parse:
		return s.handleParse(m)
	case *pgproto3.Bind:
		return s.handleBind(m)
	case *pgproto3.Describe:
		return s.withConn(kindExtended, "", func(c *backend.Conn) {
			if m.ObjectType == 'S' {
				m.Name = s.backendStatementLocked(c, m.Name)
			}
			c.Frontend().Send(m)
		})
	case *pgproto3.Execute:
		p := s.portalFor(m.Portal)
		var start time.Time
		if p.st != nil {
			start = time.Now()
		}
		return s.withConn(kindExtended, "", func(c *backend.Conn) {
			if p.st != nil {
				s.pushObsLocked(obsEntry{cycle: s.backend.cycle, seq: s.obs.execSeq, portal: p, start: start})
			}
			s.obs.execSeq++
			c.Frontend().Send(m)
		})
	case *pgproto3.Close:
		s.mu.Lock()
		if s.backend.conn == nil {
			// Outside a transaction a Close needs no backend: the proxy
			// forgets the client's statement (the backend one stays in the
			// LRU) and portals do not outlive a transaction. Answering it
			// here keeps pgx's Deallocate, which stops reading at an
			// ErrorResponse, in step when no backend can be had.
			if m.ObjectType == 'S' {
				if m.Name == "" {
					s.stmts.unnamed = nil
				} else {
					delete(s.stmts.named, m.Name)
				}
			}
			s.mu.Unlock()
			return s.writeClient(false, &pgproto3.CloseComplete{})
		}
		s.mu.Unlock()
		return s.withConn(kindExtended, "", func(c *backend.Conn) {
			if m.ObjectType == 'S' {
				switch {
				case m.Name == "":
					s.stmts.unnamed = nil
					c.UnnamedOwner = nil
				case s.backend.pinned != "" && s.stmts.sqlPrepared[m.Name]:
					delete(s.stmts.sqlPrepared, m.Name) // its own SQL PREPARE
				default:
					// The backend statement stays (shared, in the LRU); a
					// Close of nothing answers CloseComplete in order, and
					// a name the client never prepared closes nothing.
					delete(s.stmts.named, m.Name)
					m.Name = noSuchStatement
				}
			}
			s.pushLocked(pqEntry{action: pqPass})
			c.Frontend().Send(m)
		})
	case *pgproto3.Sync:
		return s.handleSync()
	case *pgproto3.Flush:
		s.mu.Lock()
		c := s.backend.conn
		s.mu.Unlock()
		if c == nil {
			return s.writeClient(true)
		}
		return s.withConn(kindFlush, "", func(c *backend.Conn) { c.Frontend().Send(&pgproto3.Flush{}) })
	case *pgproto3.FunctionCall:
		if s.login.id.Grants.Limited() {
			d := &router.Denial{Kind: router.KindOther, Reason: "kind_not_allowed",
				Detail: "the fast-path function call interface is not available to grant-limited tokens"}
			s.countDenial(nil, d, nil)
			return s.denyQuery(errorResponse(d, "ERROR", s.log))
		}
		return s.withConn(kindSync, "", func(c *backend.Conn) {
			s.backend.tainted = true // a function by OID: the router cannot say what it did
			c.Frontend().Send(m)
		})
	case *pgproto3.CopyData:
		return s.withCopy(m, len(m.Data))
	case *pgproto3.CopyDone, *pgproto3.CopyFail:
		return s.withCopy(m, flushThreshold)
	case *pgproto3.Terminate:
		return errTerminate
	}
	return closeWith(closeClientError, fatalf(pgerrcode.ProtocolViolation, "unexpected message type %T", msg))
}

func (s *session) handleSync() error {
	s.mu.Lock()
	c := s.backend.conn
	s.mu.Unlock()
	if c == nil {
		return s.writeClient(true, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	}
	return s.withConn(kindSync, "", func(c *backend.Conn) { c.Frontend().Send(&pgproto3.Sync{}) })
}

func (s *session) withCopy(m pgproto3.FrontendMessage, size int) error {
	s.mu.Lock()
	c := s.backend.conn
	if c == nil {
		s.mu.Unlock()
		return nil // Postgres ignores COPY messages outside COPY too
	}
	c.Frontend().Send(m)
	s.backend.pending += size
	s.mu.Unlock()
	if s.backend.pending >= flushThreshold {
		return s.flushBackend(c)
	}
	return nil
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
		s.backend.inflight++
		s.backend.cycle++
		s.backend.open = false
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
	err := c.Frontend().Flush()
	s.backend.bw.Unlock()
	if err != nil {
		c.MarkBroken()
		s.log.Warn("backend write failed", zap.Stringer("pool", c.Key), zap.Error(err))
		return errBackendLost
	}
	return nil
}

func (s *session) pinLocked(cause string) {
	if s.backend.pinned == "" {
		s.backend.pinned = cause
		s.srv.rec.Pinned(cause)
	}
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
	if s.settingsDiffer(c) {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		err := s.applySettings(ctx, c)
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
		return closeWith(closeShutdown, fatalf(pgerrcode.AdminShutdown, "terminating connection because the proxy is shutting down"))
	}
	return nil
}

// attachLocked makes c the session's backend connection and starts the
// reader that relays its messages.
func (s *session) attachLocked(c *backend.Conn) {
	s.backend.conn = c
	s.backend.inflight, s.backend.open, s.backend.copyIn = 0, false, false
	s.backend.cycle, s.backend.doneCycles = 0, 0
	s.backend.parseq = s.backend.parseq[:0]
	s.deny.queue = s.deny.queue[:0]
	s.obs.queue = s.obs.queue[:0]
	s.obs.n.Store(0)
	s.obs.execSeq = 0
	s.backend.tainted = false
	done := make(chan struct{})
	s.backend.readerDone = done
	go s.relayBackend(c, done)
}

// attachFailed reports a checkout failure as Postgres would report an
// error at that point, or returns a FATAL error that ends the session.
func (s *session) attachFailed(err error, kind msgKind) error {
	var ce *closeError
	if errors.As(err, &ce) || s.ctx.Err() != nil {
		return err
	}
	s.log.Info("no backend connection for client", zap.Stringer("pool", s.login.pool), zap.Error(err))
	er := errorResponse(err, "ERROR", s.log)
	switch kind {
	case kindQuery, kindSync:
		return s.writeClient(true, er, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	case kindExtended, kindFlush:
		s.skipUntilSync = true
		return s.writeClient(true, er)
	}
	return nil
}

// relayBackend is the reader goroutine of one attachment: it relays c's
// messages to the client until c is detached, then releases c.
func (s *session) relayBackend(c *backend.Conn, done chan struct{}) {
	defer close(done)
	fe := c.Frontend()
	var ro relayObs
	for {
		msg, err := fe.Receive()
		if err != nil {
			s.backendLost(c, err)
			return
		}
		c.Observe(msg)
		out := msg
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			if !ro.dataRow(s, m) {
				out = nil
			}
		case *pgproto3.CommandComplete:
			if string(m.CommandTag) == "DISCARD ALL" {
				s.mu.Lock()
				s.discardedLocked(c)
				s.mu.Unlock()
			}
			out = ro.complete(s, m)
		case *pgproto3.RowDescription:
			if !ro.rowDescription(s, m) {
				out = nil
			}
		case *pgproto3.NoData:
			if !ro.rowDescription(s, nil) {
				out = nil
			}
		case *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
			out = ro.complete(s, m)
		case *pgproto3.ParseComplete:
			s.mu.Lock()
			if s.popLocked() == pqDrop {
				out = nil
			}
			s.mu.Unlock()
		case *pgproto3.CloseComplete:
			s.mu.Lock()
			switch s.popLocked() {
			case pqDrop:
				out = nil
			case pqAsParse:
				out = &pgproto3.ParseComplete{}
			case pqDescribe:
				out = nil
				ro.describeNext = true
			}
			s.mu.Unlock()
		case *pgproto3.ParameterStatus:
			if s.parameterStatus(m) {
				out = nil
			}
		case *pgproto3.CopyInResponse:
			s.mu.Lock()
			s.backend.copyIn = true
			s.mu.Unlock()
		case *pgproto3.ErrorResponse:
			if m.Severity == "FATAL" || m.Severity == "PANIC" {
				c.MarkBroken()
			}
			if er := s.substituteDenial(m); er != nil {
				out = er
			} else {
				out = ro.complete(s, m)
			}
		case *pgproto3.ReadyForQuery:
			ro.ready(s, m.TxStatus)
			if s.readyForQuery(c, m) {
				return
			}
			continue
		}
		if out != nil {
			s.relayToClient(out, fe.ReadBufferLen() == 0)
		}
	}
}

func tracked(name string) bool {
	for _, r := range replayedReported {
		if r == name {
			return true
		}
	}
	return false
}

// discardedLocked follows a successful DISCARD ALL: the connection holds no
// statements or settings of the proxy's any more, and the session's state is
// gone, so it needs no pin.
func (s *session) discardedLocked(c *backend.Conn) {
	c.Stmts.Clear()
	clear(c.Applied)
	c.UnnamedOwner = nil
	s.settings.discarding = true
	clear(s.stmts.sqlPrepared)
	clear(s.stmts.named) // DISCARD ALL deallocates the client's statements too
	s.settings.want = maps.Clone(s.settings.base)
	if s.backend.pinned != pinSessionMode {
		s.backend.pinned = ""
	}
}

func (s *session) relayToClient(m pgproto3.BackendMessage, flush bool) {
	s.client.wmu.Lock()
	s.client.proto.Send(m)
	if flush {
		s.client.proto.Flush() // a failed write ends the client goroutine's read too
	}
	s.client.wmu.Unlock()
}

// readyForQuery ends a cycle; it reports true when c was detached (and
// released), which ends the reader.
func (s *session) readyForQuery(c *backend.Conn, m *pgproto3.ReadyForQuery) bool {
	s.mu.Lock()
	gone := s.phase == phaseClosed
	s.mu.Unlock()
	if !gone {
		s.relayToClient(m, true)
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
	pinned := s.backend.pinned != ""
	tainted := s.backend.tainted
	detach := quiet && (gone || !pinned && m.TxStatus == 'I')
	drain := quiet && m.TxStatus == 'I' && s.srv.isDraining()
	if detach {
		s.backend.conn = nil
		if c.UnnamedOwner == s {
			c.UnnamedOwner = nil
		}
	}
	s.mu.Unlock()
	if detach {
		s.backend.bw.Lock() // wait for the flush that sent the last Sync to return
		s.backend.bw.Unlock()
	}
	if !detach {
		if drain && !gone {
			s.killWith(fatalf(pgerrcode.AdminShutdown, "terminating connection because the proxy is shutting down"), closeShutdown)
		}
		return false
	}
	if gone || tainted {
		s.resetForReuse(c, pinned || tainted)
	}
	c.Release()
	if drain && !gone {
		s.killWith(fatalf(pgerrcode.AdminShutdown, "terminating connection because the proxy is shutting down"), closeShutdown)
	}
	return true
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
	s.backend.bw.Lock()
	s.backend.bw.Unlock()
	c.Release()
	if !gone {
		s.log.Warn("backend connection lost", zap.Stringer("pool", c.Key), zap.Error(err))
		s.killWith(fatalf(pgerrcode.ConnectionFailure, "the backend connection was lost"), closeBackendError)
	}
}

// cleanup runs when the client goroutine ends: an attached connection is
// brought back to a known state by the reader (a Sync, after failing a COPY
// and cancelling a running statement), then released.
func (s *session) cleanup() {
	s.mu.Lock()
	s.phase = phaseClosed
	c, done := s.backend.conn, s.backend.readerDone
	var running bool
	if c != nil {
		if s.backend.copyIn {
			c.Frontend().Send(&pgproto3.CopyFail{Message: "client disconnected"})
		}
		running = s.backend.inflight > 0 || s.backend.open
		c.Frontend().Send(&pgproto3.Sync{})
		s.backend.inflight++
		s.backend.cycle++
		s.backend.open = false
	}
	s.mu.Unlock()
	if c != nil {
		if running {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.Cancel(ctx)
			cancel()
		}
		c.NetConn().SetReadDeadline(time.Now().Add(15 * time.Second))
		s.backend.bw.Lock()
		err := c.Frontend().Flush()
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
