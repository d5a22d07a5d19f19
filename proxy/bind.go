package proxy

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
)

// handleBind authorizes a Bind whose queue names are parameters (for
// grant-limited tokens), notes what its Execute will account, and relays
// it. A Bind of a statement the client does not have never reaches another
// client's statement of the same name on the backend.
func (s *session) handleBind(m *pgproto3.Bind) error {
	s.mu.Lock()
	st := s.stmts.lookup(m.PreparedStatement)
	s.mu.Unlock()
	p, err := s.bindPortal(st, m)
	if err != nil {
		return s.denyExtended(errorResponse(err, "ERROR", s.log))
	}
	s.stmts.setPortal(m.DestinationPortal, p)
	return s.withConn(kindExtended, "", func(c *backend.Conn) {
		if st != nil && st.class != nil {
			if st.class.Taints {
				s.backend.tainted = true
			}
			if st.class.HasSets {
				s.noteSettingsLocked(st.class)
			}
		}
		m.PreparedStatement = s.backendStatementLocked(c, m.PreparedStatement, false)
		if st != nil && st.dealloc != nil {
			st.dealloc.applyLocked(s, c)
		}
		c.Send(m)
		for _, v := range m.Parameters {
			s.backend.pending += len(v)
		}
		if p.filter {
			// Describe the portal to learn where queue_name is; the
			// Close before it marks the answer as the proxy's.
			s.backend.push(pqEntry{action: pqDescribe})
			c.Send(&pgproto3.Close{ObjectType: 'S', Name: noSuchStatement})
			c.Send(&pgproto3.Describe{ObjectType: 'P', Name: m.DestinationPortal})
		}
	})
}

// plainPortal is the portal of a statement without pgmq calls: whether it
// may notify, and whether it is empty on the backend (a LISTEN or UNLISTEN
// the proxy answers, or the client's own empty statement).
func plainPortal(st *stmt) portal {
	if st == nil || st.class == nil {
		return portal{}
	}
	p := portal{notifies: st.class.Notifies, empty: st.query == "", listen: st.listen}
	if st.listening != "" {
		// Observed, so that the reader pairs its completion with it.
		p.st, p.listening = st.class, st.listening
	}
	return p
}

// bindPortal is what a Bind of st fixes for its portal's Executes: for a
// statement with pgmq calls, the queues its parameters name and how its
// rows are read. A grant-limited token's Bind of a statement whose queues
// are parameters is authorized here; a denial is counted and returned.
func (s *session) bindPortal(st *stmt, m *pgproto3.Bind) (portal, error) {
	if st == nil || st.class == nil || !st.class.HasCalls {
		return plainPortal(st), nil
	}
	// The Bind's values, read through s.deny.param by the grant check, the
	// denial count and the queue names below.
	s.deny.bind = bindValues{m: m, oids: st.oids}
	defer func() { s.deny.bind = bindValues{} }()
	filter := st.filter
	if st.class.Bound() && s.limited() {
		var err error
		if filter, err = s.authorizeBind(st.class); err != nil {
			s.countDenial(st.class, err, s.deny.param)
			return portal{}, err
		}
	}
	return portal{st: st.class, queues: s.resolveQueues(st.class), filter: filter,
		binary: formatOf(m.ResultFormatCodes, 0) != 0, inspect: inspectFor(st.class, filter),
		msgSize: messageSize(st.class, m.Parameters), notifies: st.class.Notifies}, nil
}
