package proxy

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
)

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
		if m, ok := msg.(*pgproto3.ReadyForQuery); ok {
			ro.ready(s, m.TxStatus)
			if s.readyForQuery(c, m) {
				return
			}
			continue
		}
		if out := s.relayed(c, &ro, msg); out != nil {
			s.client.relay(out, fe.ReadBufferLen() == 0)
		}
	}
}

// relayed is what the client gets for a backend message other than
// ReadyForQuery: the message, another in its place, or nothing (nil).
func (s *session) relayed(c *backend.Conn, ro *relayObs, msg pgproto3.BackendMessage) pgproto3.BackendMessage {
	switch m := msg.(type) {
	case *pgproto3.DataRow:
		if !ro.dataRow(s, m) {
			return nil
		}
	case *pgproto3.CommandComplete:
		if string(m.CommandTag) == "DISCARD ALL" {
			s.mu.Lock()
			s.discardedLocked(c)
			s.mu.Unlock()
			s.unlistenAll()
		}
		s.noteCommit(m.CommandTag)
		return ro.complete(s, m)
	case *pgproto3.RowDescription:
		if !ro.rowDescription(s, m) {
			return nil
		}
	case *pgproto3.NoData:
		if !ro.rowDescription(s, nil) {
			return nil
		}
	case *pgproto3.EmptyQueryResponse:
		out := ro.complete(s, m)
		if a := s.listenAnswer(c); a != nil {
			return a
		}
		return out
	case *pgproto3.PortalSuspended:
		return ro.complete(s, m)
	case *pgproto3.ParseComplete:
		if s.popAnswer() == pqDrop {
			return nil
		}
	case *pgproto3.CloseComplete:
		switch s.popAnswer() {
		case pqDrop:
			return nil
		case pqAsParse:
			return &pgproto3.ParseComplete{}
		case pqDescribe:
			ro.describeNext = true
			return nil
		}
	case *pgproto3.ParameterStatus:
		if s.parameterStatus(m) {
			return nil
		}
	case *pgproto3.CopyInResponse:
		s.mu.Lock()
		s.backend.copyIn = true
		s.mu.Unlock()
	case *pgproto3.ErrorResponse:
		if m.Severity == "FATAL" || m.Severity == "PANIC" {
			// The client, told, will leave: the backend ended the session.
			c.MarkBroken()
			s.client.noteEnd(closeBackendError)
		}
		if er := s.substituteDenial(m); er != nil {
			return er
		}
		return ro.complete(s, m)
	}
	return msg
}

// popAnswer takes what to do with a ParseComplete or CloseComplete.
func (s *session) popAnswer() pqAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backend.pop()
}

// discardedLocked follows a successful DISCARD ALL: the connection holds no
// statements or settings of the proxy's any more, and the session's state is
// gone, so it needs no pin. s.mu is held.
func (s *session) discardedLocked(c *backend.Conn) {
	c.ForgetSessionState()
	s.settings.discarding = true
	s.stmts.forgetNamed() // DISCARD ALL deallocates the client's statements too
	s.settings.reset()
	if s.backend.pinned != pinSessionMode {
		s.backend.pinned = ""
	}
}
