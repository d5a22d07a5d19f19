package proxy

import (
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
	"mqstack/router"
)

// handleQuery classifies and checks a simple query, answers those that act
// on the client's own objects (intercept.go), and relays the others, with
// pins, settings and the reader's accounting noted on the way.
func (s *session) handleQuery(m *pgproto3.Query) error {
	// A simple Query inside an extended-protocol sequence not yet ended by
	// Sync is skipped by Postgres when an earlier message of the sequence
	// failed, and then gets no ReadyForQuery: the proxy could not know when
	// the backend is free again. No driver sends it; refuse it.
	s.mu.Lock()
	open := s.backend.open
	s.mu.Unlock()
	if open {
		return closeWith(closeClientError, fatalf(pgerrcode.ProtocolViolation,
			"simple Query inside an extended-protocol sequence: send Sync first"))
	}
	cls := s.srv.router.Classify(m.String)
	var filter bool
	err := s.checkStatement(cls)
	if err == nil && s.limited() {
		if p := single(cls); p != nil && p.Kind == router.KindCreateExtension && !s.attached() {
			return s.client.write(true, createExtensionNoop()...)
		}
		filter, err = s.authorizeQuery(cls)
	}
	if err != nil {
		s.countDenial(cls, err, nil)
		return s.denyQuery(errorResponse(err, "ERROR", s.log))
	}
	var start time.Time
	observed := filter || cls.HasCalls
	if observed {
		start = time.Now()
	}
	if cls.Listens {
		return s.handleListen(cls)
	}
	if cls.ReadsListening {
		return s.handleListeningChannels(cls)
	}
	var it intercept
	if p := single(cls); p != nil {
		var handled bool
		if it, handled, err = s.interceptQuery(p); handled {
			return err
		}
	}
	query := m.String
	if it.query != "" {
		query = it.query
	}
	return s.withConn(kindQuery, pinOf(cls), func(c *backend.Conn) {
		it.apply(s, c)
		s.stmts.notePrepare(cls)
		if cls.Taints {
			s.backend.tainted = true
		}
		if cls.HasSets {
			s.noteSettingsLocked(cls)
		}
		if cls.Notifies {
			s.notedNotifier(c)
		}
		if observed {
			s.obs.push(obsEntry{cycle: s.backend.cycle, simple: true, start: start,
				portal: portal{st: cls, filter: filter, inspect: inspectFor(cls, filter), msgSize: messageSize(cls, nil)}})
		}
		// A simple query replaces the unnamed statement.
		s.stmts.unnamed = nil
		c.ForgetUnnamed()
		c.Send(&pgproto3.Query{String: query})
		s.backend.pending += len(query)
	})
}
