package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
	"mqstack/router"
)

// The command loop: each client message goes to its handler. Query, Parse
// and Bind carry SQL and have files of their own (query.go, parse.go,
// bind.go); the other messages only move the relay state and are handled
// here.

// commandLoop relays client messages until the client leaves and returns
// why the session ends, or until the session parks (park.go).
func (s *session) commandLoop() (reason closeReason, parked bool) {
	for {
		s.armPark()
		msg, err := s.client.in.Receive()
		if err != nil {
			if s.parkNow(err) {
				return "", true
			}
			if reason, retry := s.receiveFailed(err); !retry {
				return reason, false
			}
			continue
		}
		s.parked = false
		wasIdle := s.disarmIdle()
		if err := s.dispatch(msg); err != nil {
			return s.loopError(err), false
		}
		if wasIdle {
			s.rearmIdle()
		}
	}
}

// receiveFailed is asked about a failed client read: it says why the
// session ends (after telling the client, where there is something to
// tell), or retry when the read is to go on.
func (s *session) receiveFailed(err error) (reason closeReason, retry bool) {
	if fatal, retry := s.idleExpired(err); retry {
		return "", true
	} else if fatal != nil {
		s.killWith(fatal, closeIdleInTx)
		return closeIdleInTx, false
	}
	var tooLong *pgproto3.ExceededMaxBodyLenErr
	switch {
	case s.ctx.Err() != nil:
		return closeShutdown, false
	case errors.As(err, &tooLong):
		s.killWith(fatalf(pgerrcode.ProgramLimitExceeded,
			"message of %d bytes is over proxy.max_message_bytes (%d)", tooLong.ActualBodyLen, tooLong.MaxExpectedBodyLen), closeClientError)
		return closeClientError, false
	case isNetErr(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// pgproto3 reports a closed socket as unexpected EOF: the client
		// left, it did not break the protocol.
		return closeClientGone, false
	}
	s.killWith(fatalf(pgerrcode.ProtocolViolation, "invalid message: %v", err), closeClientError)
	return closeClientError, false
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

// dispatch handles a client message, unless an error in the open
// extended-protocol cycle discards everything up to its Sync.
func (s *session) dispatch(msg pgproto3.FrontendMessage) error {
	if !s.skipUntilSync {
		return s.handle(msg)
	}
	if _, ok := msg.(*pgproto3.Sync); ok {
		s.skipUntilSync = false
		return s.handleSync()
	}
	return nil
}

// handle hands a client message to its handler.
func (s *session) handle(msg pgproto3.FrontendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.Query:
		return s.handleQuery(m)
	case *pgproto3.Parse:
		return s.handleParse(m)
	case *pgproto3.Bind:
		return s.handleBind(m)
	case *pgproto3.Describe:
		return s.handleDescribe(m)
	case *pgproto3.Execute:
		return s.handleExecute(m)
	case *pgproto3.Close:
		return s.handleClose(m)
	case *pgproto3.Sync:
		return s.handleSync()
	case *pgproto3.Flush:
		return s.handleFlush()
	case *pgproto3.FunctionCall:
		return s.handleFunctionCall(m)
	case *pgproto3.CopyData:
		return s.handleCopy(m, len(m.Data))
	case *pgproto3.CopyDone:
		return s.handleCopy(m, flushThreshold)
	case *pgproto3.CopyFail:
		return s.handleCopy(m, flushThreshold)
	case *pgproto3.Terminate:
		return errTerminate
	}
	return closeWith(closeClientError, fatalf(pgerrcode.ProtocolViolation, "unexpected message type %T", msg))
}

// handleDescribe relays a Describe, of a statement under its backend name.
func (s *session) handleDescribe(m *pgproto3.Describe) error {
	return s.withConn(kindExtended, "", func(c *backend.Conn) {
		if m.ObjectType == 'S' {
			m.Name = s.backendStatementLocked(c, m.Name, false)
		}
		c.Send(m)
	})
}

// handleExecute relays an Execute and, for a portal with pgmq calls, queues
// its results for the reader's accounting.
func (s *session) handleExecute(m *pgproto3.Execute) error {
	p := s.stmts.portalFor(m.Portal)
	var start time.Time
	if p.st != nil {
		start = time.Now()
	}
	return s.withConn(kindExtended, "", func(c *backend.Conn) {
		if p.st != nil {
			s.obs.push(obsEntry{cycle: s.backend.cycle, seq: s.obs.execSeq, portal: p, start: start})
		}
		s.obs.execSeq++
		if p.notifies {
			s.notedNotifier(c)
		}
		if p.empty {
			s.markEmptyExecuteLocked(p.listen)
		}
		c.Send(m)
	})
}

// handleClose forgets a client statement (portals do not outlive a
// transaction) and answers in order.
func (s *session) handleClose(m *pgproto3.Close) error {
	s.mu.Lock()
	if s.backend.conn == nil {
		// Outside a transaction a Close needs no backend: the proxy
		// forgets the client's statement (the backend one stays in the
		// LRU) and portals do not outlive a transaction. Answering it
		// here keeps pgx's Deallocate, which stops reading at an
		// ErrorResponse, in step when no backend can be had.
		if m.ObjectType == 'S' {
			s.stmts.forget(m.Name)
		}
		s.mu.Unlock()
		return s.client.write(false, &pgproto3.CloseComplete{})
	}
	s.mu.Unlock()
	return s.withConn(kindExtended, "", func(c *backend.Conn) {
		if m.ObjectType == 'S' {
			m.Name = s.backendStatementLocked(c, m.Name, true)
		}
		s.backend.push(pqEntry{action: pqPass})
		c.Send(m)
	})
}

// handleSync ends an extended-protocol cycle; without a backend the proxy
// answers it.
func (s *session) handleSync() error {
	if !s.attached() {
		return s.client.write(true, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	}
	return s.withConn(kindSync, "", func(c *backend.Conn) { c.Send(&pgproto3.Sync{}) })
}

// handleFlush pushes what is buffered, toward the backend when one is
// attached.
func (s *session) handleFlush() error {
	if !s.attached() {
		return s.client.write(true)
	}
	return s.withConn(kindFlush, "", func(c *backend.Conn) { c.Send(&pgproto3.Flush{}) })
}

// handleFunctionCall relays a fast-path function call, which grant-limited
// tokens may not make.
func (s *session) handleFunctionCall(m *pgproto3.FunctionCall) error {
	if s.limited() {
		d := &router.Denial{Kind: router.KindOther, Reason: "kind_not_allowed",
			Detail: "the fast-path function call interface is not available to grant-limited tokens"}
		s.countDenial(nil, d, nil)
		return s.denyQuery(errorResponse(d, "ERROR", s.log))
	}
	return s.withConn(kindSync, "", func(c *backend.Conn) {
		s.backend.tainted = true // a function by OID: the router cannot say what it did
		c.Send(m)
	})
}

// handleCopy relays COPY data (size counts toward the next flush).
func (s *session) handleCopy(m pgproto3.FrontendMessage, size int) error {
	s.mu.Lock()
	c := s.backend.conn
	if c == nil {
		s.mu.Unlock()
		return nil // Postgres ignores COPY messages outside COPY too
	}
	c.Send(m)
	s.backend.pending += size
	s.mu.Unlock()
	if s.backend.pending >= flushThreshold {
		return s.flushBackend(c)
	}
	return nil
}
