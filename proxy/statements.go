package proxy

import (
	"github.com/jackc/pgerrcode"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
	"mqstack/router"
)

// The client messages that carry SQL (Query, Parse) and bind it (Bind):
// classified once by the router, checked against the token's grants,
// pinned, and queued for the reader's accounting.

// handleBind authorizes a Bind whose queue names are parameters (for
// grant-limited tokens), notes what its Execute will account, and relays
// it. A Bind of a statement the client does not have never reaches another
// client's statement of the same name on the backend.
func (s *session) handleBind(m *pgproto3.Bind) error {
	s.mu.Lock()
	st := s.stmts.unnamed
	if m.PreparedStatement != "" {
		st = s.stmts.named[m.PreparedStatement]
	}
	s.mu.Unlock()
	var p portal
	if st != nil && st.class != nil && hasCalls(st.class) {
		filter := st.filter
		if st.bindAuth && s.login.id.Grants.Limited() {
			var err error
			if filter, err = s.authorizeBind(st, m); err != nil {
				s.deny.bind = bindValues{m: m, oids: st.oids}
				s.countDenial(st.class, err, s.deny.param)
				s.deny.bind = bindValues{}
				return s.denyExtended(errorResponse(err, "ERROR", s.log))
			}
		}
		p = portal{st: st.class, queues: s.resolveQueues(st, m), filter: filter,
			binary: formatOf(m.ResultFormatCodes, 0) != 0, inspect: inspectFor(st.class, filter),
			msgSize: messageSize(st.class, m.Parameters)}
	}
	s.setPortal(m.DestinationPortal, p)
	return s.withConn(kindExtended, "", func(c *backend.Conn) {
		if st != nil && st.class != nil {
			if st.class.Taints() {
				s.backend.tainted = true
			}
			if hasSets(st.class) {
				s.noteSettingsLocked(st.class)
			}
		}
		m.PreparedStatement = s.backendStatementLocked(c, m.PreparedStatement)
		if st != nil && st.dealloc != nil {
			st.dealloc.applyLocked(s, c)
		}
		c.Frontend().Send(m)
		for _, v := range m.Parameters {
			s.backend.pending += len(v)
		}
		if p.filter {
			// Describe the portal to learn where queue_name is; the
			// Close before it marks the answer as the proxy's.
			s.pushLocked(pqEntry{action: pqDescribe})
			c.Frontend().Send(&pgproto3.Close{ObjectType: 'S', Name: noSuchStatement})
			c.Frontend().Send(&pgproto3.Describe{ObjectType: 'P', Name: m.DestinationPortal})
		}
	})
}

func (s *session) handleParse(m *pgproto3.Parse) error {
	named := m.Name != ""
	class := s.srv.router.Classify(m.Query)
	if s.login.id.Grants.Limited() {
		m.ParameterOIDs = pinNameParams(class, m.ParameterOIDs)
	}
	dealloc, err := s.deallocateParse(class, m)
	st := newStmt(m, named)
	st.class = class
	st.bindAuth = boundTargets(st.class)
	st.dealloc = dealloc
	if err == nil {
		err = s.checkStatement(st.class)
	}
	if err == nil && s.login.id.Grants.Limited() && !st.bindAuth {
		st.filter, err = s.authorizeQuery(st.class)
	}
	if err == nil && named {
		err = s.checkPreparedCaps(m.Name, len(m.Query))
	}
	if err != nil {
		// A failed Parse leaves no statement behind, as in Postgres.
		s.mu.Lock()
		if named {
			delete(s.stmts.named, m.Name)
		} else {
			s.stmts.unnamed = nil
		}
		s.mu.Unlock()
		s.countDenial(st.class, err, nil)
		return s.denyExtended(errorResponse(err, "ERROR", s.log))
	}
	pin := pinOf(st.class)
	if named && pin == "" {
		// Outside a transaction a named Parse needs no backend: the proxy
		// answers it and prepares the statement where it is first used.
		// So a client that prepares synchronously (libpq's PQprepare)
		// never waits for a backend while others wait on it.
		s.mu.Lock()
		if s.backend.conn == nil {
			s.stmts.named[m.Name] = st
			s.mu.Unlock()
			return s.writeClient(false, &pgproto3.ParseComplete{})
		}
		s.mu.Unlock()
	}
	return s.withConn(kindExtended, pin, func(c *backend.Conn) {
		s.backend.pending += len(st.query)
		if !named {
			s.stmts.unnamed = st
			s.stmts.unnamedGen++
			c.UnnamedOwner, c.UnnamedGen = s, s.stmts.unnamedGen
			s.pushLocked(pqEntry{action: pqPass, st: st, unnamed: true, own: true})
			c.Frontend().Send(m)
			return
		}
		s.stmts.named[m.Name] = st
		if c.Stmts.Has(st.backendName) {
			s.pushLocked(pqEntry{action: pqAsParse, client: m.Name, st: st})
			c.Frontend().Send(&pgproto3.Close{ObjectType: 'S', Name: noSuchStatement})
			return
		}
		c.Stmts.Add(st.backendName)
		s.pushLocked(pqEntry{action: pqPass, created: st.backendName, client: m.Name, st: st})
		c.Frontend().Send(&pgproto3.Parse{Name: st.backendName, Query: st.query, ParameterOIDs: st.oids})
	})
}

// checkStatement applies the rules that hold before the grants: for every
// token SessionDenial; for grant-limited tokens the statement_timeout
// bound, which nothing they send may lift.
func (s *session) checkStatement(cls *router.Statement) error {
	if d := router.SessionDenial(cls); d != nil {
		return d
	}
	if !s.login.id.Grants.Limited() {
		return nil
	}
	if p := single(cls); p != nil && p.Kind == router.KindDiscard && p.Name == "all" && s.isPinned() {
		return &router.Denial{Kind: p.Kind, Reason: "kind_not_allowed",
			Detail: "DISCARD ALL would reset a pinned backend's statement_timeout under statements pipelined behind it; use UNLISTEN * and DEALLOCATE ALL"}
	}
	if !hasSets(cls) {
		return nil
	}
	if why := s.limitedSetDenial(cls); why != "" {
		return &router.Denial{Kind: router.KindSet, Reason: "kind_not_allowed", Detail: why}
	}
	return nil
}

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
	if err == nil && s.login.id.Grants.Limited() {
		if p := single(cls); p != nil && p.Kind == router.KindCreateExtension && !s.attached() {
			return s.writeClient(true, createExtensionNoop()...)
		}
		filter, err = s.authorizeQuery(cls)
	}
	if err != nil {
		s.countDenial(cls, err, nil)
		return s.denyQuery(errorResponse(err, "ERROR", s.log))
	}
	var start time.Time
	observed := filter || hasCalls(cls)
	if observed {
		start = time.Now()
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
		s.notePrepareLocked(cls)
		if cls.Taints() {
			s.backend.tainted = true
		}
		if hasSets(cls) {
			s.noteSettingsLocked(cls)
		}
		if observed {
			s.pushObsLocked(obsEntry{cycle: s.backend.cycle, simple: true, start: start,
				portal: portal{st: cls, filter: filter, inspect: inspectFor(cls, filter), msgSize: messageSize(cls, nil)}})
		}
		// A simple query replaces the unnamed statement.
		s.stmts.unnamed = nil
		c.UnnamedOwner = nil
		c.Frontend().Send(&pgproto3.Query{String: query})
		s.backend.pending += len(query)
	})
}
