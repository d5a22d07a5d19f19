package proxy

import (
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
	"mqstack/router"
)

// Statements that act on the client's own objects: DEALLOCATE, DISCARD ALL
// and the statement names of Bind, Describe and Close. Backends are shared,
// so none of them reaches a backend as the client sent it: the proxy
// answers them, or rewrites them to the backend names of the client's own
// statements and keeps its record of the backend in step.

// intercept is what interceptQuery decided for a statement that still goes
// to the backend.
type intercept struct {
	query   string        // rewritten text, "" to send the client's
	dealloc *deallocation // what a DEALLOCATE makes the proxy forget
}

// apply keeps the backend's record in step with the rewritten statement.
// s.mu is held.
func (it *intercept) apply(s *session, c *backend.Conn) {
	if it.dealloc != nil {
		it.dealloc.applyLocked(s, c)
	}
}

// interceptQuery answers a one-statement simple query that acts on the
// client's own objects, or says how to send it. handled is true when the
// client has its answer (err then is the write's error).
func (s *session) interceptQuery(p *router.Part) (it intercept, handled bool, err error) {
	switch {
	case p.Kind == router.KindDeallocate:
		return s.deallocate(p.Name)
	case p.Kind == router.KindDiscard && p.Name == "all":
		return s.discardAll()
	case p.Kind == router.KindSet && p.Setting == "" && !s.attached():
		// RESET ALL outside a transaction: the client's settings go back
		// to those of its login, which its next backend gets.
		s.mu.Lock()
		s.settings.reset()
		s.mu.Unlock()
		return it, true, s.answer("RESET")
	}
	return it, false, nil
}

// answer completes a statement the proxy answered outside a transaction.
func (s *session) answer(tag string) error {
	return s.client.write(true, &pgproto3.CommandComplete{CommandTag: []byte(tag)}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
}

// deallocate answers a simple-query DEALLOCATE name|ALL ("" for ALL) of
// the client's own statements: the proxy forgets them outside a
// transaction; inside one (or pinned) the backend is the client's alone, and
// the statement runs there on the backend names, the proxy forgetting what
// it drops so it prepares them again where others need them.
func (s *session) deallocate(name string) (intercept, bool, error) {
	d, own, err := s.deallocationOf(name)
	switch {
	case err != nil:
		return intercept{}, true, s.denyQuery(errorResponse(err, "ERROR", s.log))
	case own:
		s.mu.Lock()
		delete(s.stmts.sqlPrepared, name)
		s.mu.Unlock()
		return intercept{}, false, nil // its own SQL PREPARE on its pinned backend
	}
	s.mu.Lock()
	if s.backend.conn != nil {
		s.mu.Unlock()
		return intercept{query: d.query(), dealloc: d}, false, nil
	}
	d.forgetLocked(s)
	s.mu.Unlock()
	if d.all {
		return intercept{}, true, s.answer("DEALLOCATE ALL")
	}
	return intercept{}, true, s.answer("DEALLOCATE")
}

func (s *session) discardAll() (intercept, bool, error) {
	s.mu.Lock()
	attached, pinned := s.backend.conn != nil, s.backend.pinned != ""
	if attached && !pinned {
		// Inside a transaction block: Postgres refuses it and nothing
		// changes.
		s.mu.Unlock()
		return intercept{}, false, nil
	}
	s.stmts.forgetNamed()
	s.stmts.unnamed = nil
	if !attached {
		s.settings.reset()
		s.mu.Unlock()
		s.unlistenAll() // DISCARD ALL includes UNLISTEN *
		return intercept{}, true, s.answer("DISCARD ALL")
	}
	s.mu.Unlock()
	// A pinned backend is the client's alone: DISCARD ALL resets it, and
	// discardedLocked (at its CommandComplete) forgets the proxy's record.
	return intercept{}, false, nil
}

// deallocation is a DEALLOCATE sent with the extended protocol. It runs on
// the backend at Execute: the proxy rewrites its Parse to the backend name
// of the client's statement, and at each Bind forgets what it will drop.
type deallocation struct {
	all    bool
	name   string // the client's statement name
	target *stmt  // the client's statement at Parse
}

// deallocationOf resolves DEALLOCATE name|ALL ("" for ALL) against the
// client's own statements: what to forget, or own when the name is a
// pinned session's own SQL PREPARE (sent as it is), or 26000 for a name the
// client never prepared, which would reach another client's statement on a
// shared backend.
func (s *session) deallocationOf(name string) (d *deallocation, own bool, err error) {
	if name == "" {
		return &deallocation{all: true}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if target := s.stmts.named[name]; target != nil {
		return &deallocation{name: name, target: target}, false, nil
	}
	if s.backend.pinned != "" && s.stmts.sqlPrepared[name] {
		return nil, true, nil
	}
	return nil, false, &Error{Severity: "ERROR", Code: pgerrcode.InvalidSQLStatementName,
		Message: fmt.Sprintf("prepared statement %q does not exist", name)}
}

// query is the DEALLOCATE the backend runs: of the backend name.
func (d *deallocation) query() string {
	if d.all {
		return "DEALLOCATE ALL"
	}
	return "DEALLOCATE " + d.target.backendName
}

// deallocateParse rewrites the Parse of a one-statement DEALLOCATE (m is
// changed in place) and says what its Binds must forget.
func (s *session) deallocateParse(cls *router.Statement, m *pgproto3.Parse) (*deallocation, error) {
	p := single(cls)
	if p == nil || p.Kind != router.KindDeallocate {
		return nil, nil
	}
	d, _, err := s.deallocationOf(p.Name)
	if d != nil && !d.all {
		m.Query = d.query()
	}
	return d, err
}

// forgetLocked forgets the client's statements the DEALLOCATE drops.
// s.mu is held.
func (d *deallocation) forgetLocked(s *session) {
	if d.all {
		s.stmts.forgetNamed()
	} else if s.stmts.named[d.name] == d.target {
		s.stmts.dropNamed(d.name)
	}
}

// applyLocked forgets, where a DEALLOCATE runs on c, what it drops there
// and of the client's statements (preparing the statement first when c
// lacks it, so the DEALLOCATE finds it). s.mu is held.
func (d *deallocation) applyLocked(s *session, c *backend.Conn) {
	d.forgetLocked(s)
	if d.all {
		c.Stmts().Clear()
		return
	}
	s.ensurePreparedLocked(c, d.target)
	c.Stmts().Remove(d.target.backendName)
}
