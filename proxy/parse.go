package proxy

import (
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
)

// handleParse checks a statement the client prepares and prepares it on
// the backend under its backend name, shared by every client preparing
// the same text; outside a transaction the proxy answers a named Parse
// alone.
func (s *session) handleParse(m *pgproto3.Parse) error {
	st, err := s.parseStatement(m)
	if err != nil {
		// A failed Parse leaves no statement behind, as in Postgres.
		s.mu.Lock()
		s.stmts.forget(m.Name)
		s.mu.Unlock()
		s.countDenial(st.class, err, nil)
		return s.denyExtended(errorResponse(err, "ERROR", s.log))
	}
	named := m.Name != ""
	pin := pinOf(st.class)
	if st.class.Listens {
		pin = "" // the proxy answers it (a LISTEN of several statements fails at Parse)
	}
	if named && pin == "" {
		// Outside a transaction a named Parse needs no backend: the proxy
		// answers it and prepares the statement where it is first used.
		// So a client that prepares synchronously (libpq's PQprepare)
		// never waits for a backend while others wait on it.
		s.mu.Lock()
		if s.backend.conn == nil {
			s.stmts.setNamed(m.Name, st)
			s.mu.Unlock()
			return s.client.write(false, &pgproto3.ParseComplete{})
		}
		s.mu.Unlock()
	}
	return s.withConn(kindExtended, pin, func(c *backend.Conn) {
		s.backend.pending += len(st.query)
		if named {
			s.parseNamedLocked(c, m.Name, st)
		} else {
			s.parseUnnamedLocked(c, m, st)
		}
	})
}

// parseStatement is the statement of a Parse as the proxy keeps it, and
// the error of the first check it fails: the rules for every token, the
// grants (unless they wait for Bind), the caps on prepared statements. m
// is changed in place: a grant-limited token's queue-name parameters are
// declared text, and a DEALLOCATE names the backend statement.
func (s *session) parseStatement(m *pgproto3.Parse) (*stmt, error) {
	class := s.srv.router.Classify(m.Query)
	if s.limited() {
		m.ParameterOIDs = pinNameParams(class, m.ParameterOIDs)
	}
	dealloc, err := s.deallocateParse(class, m)
	st := newStmt(m, m.Name != "")
	st.class, st.dealloc = class, dealloc
	if err == nil {
		err = s.checkStatement(class)
	}
	if err == nil && class.CopyIn {
		err = errExtendedCopyIn
	}
	if err == nil && class.ReadsListening {
		err = s.prepareListening(st)
	}
	if err == nil && class.Listens {
		if st.listen = preparedListen(class); st.listen != nil {
			st.query = "" // backends prepare it empty; the proxy answers its Execute
		}
	}
	if err == nil && s.limited() && !class.Bound() {
		st.filter, err = s.authorizeQuery(class)
	}
	if err == nil && m.Name != "" {
		err = s.checkPreparedCaps(m.Name, len(m.Query))
	}
	return st, err
}

// parseUnnamedLocked sends the client's Parse of its unnamed statement,
// which c then holds for it.
func (s *session) parseUnnamedLocked(c *backend.Conn, m *pgproto3.Parse, st *stmt) {
	s.stmts.unnamed = st
	s.stmts.unnamedGen++
	c.SetUnnamed(s, s.stmts.unnamedGen)
	s.backend.push(pqEntry{action: pqPass, st: st, unnamed: true, own: true})
	if st.listen != nil || st.listening != "" {
		m.Query = st.query // rewritten: listen.go
	}
	c.Send(m)
}

// parseNamedLocked prepares a named statement on c under its backend name;
// when c has it already, a Close of nothing stands in for the Parse, so
// the answer still comes in order.
func (s *session) parseNamedLocked(c *backend.Conn, name string, st *stmt) {
	s.stmts.setNamed(name, st)
	if c.Stmts().Has(st.backendName) {
		s.backend.push(pqEntry{action: pqAsParse, client: name, st: st})
		c.Send(&pgproto3.Close{ObjectType: 'S', Name: noSuchStatement})
		return
	}
	c.Stmts().Add(st.backendName)
	s.backend.push(pqEntry{action: pqPass, created: st.backendName, client: name, st: st})
	c.Send(&pgproto3.Parse{Name: st.backendName, Query: st.query, ParameterOIDs: st.oids})
}

// errExtendedCopyIn refuses COPY FROM STDIN in a Parse. In copy-in mode the
// backend ignores Sync, so the Sync that follows the Execute would get no
// ReadyForQuery, and only the backend's answers could tell the proxy which
// Syncs counted. Drivers send COPY FROM STDIN as a simple Query.
var errExtendedCopyIn = &Error{Severity: "ERROR", Code: pgerrcode.FeatureNotSupported,
	Message: "COPY FROM STDIN is not supported in the extended query protocol through mqstack",
	Hint:    "send it as a simple Query, as psql, pgx, psycopg, JDBC and node-postgres do"}
