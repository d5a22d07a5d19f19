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
	query   string // rewritten text, "" to send the client's
	dealloc *stmt  // a protocol statement being deallocated
	all     bool   // DEALLOCATE ALL (or DISCARD ALL on a pinned backend)
}

// apply keeps the backend's record in step with the rewritten statement.
// s.mu is held.
func (it *intercept) apply(s *session, c *backend.Conn) {
	switch {
	case it.dealloc != nil:
		s.ensurePreparedLocked(c, it.dealloc)
		c.Stmts().Remove(it.dealloc.backendName)
	case it.all:
		c.Stmts().Clear()
		c.ForgetUnnamed()
	}
}

// interceptQuery answers a one-statement simple query that acts on the
// client's own objects, or says how to send it. handled is true when the
// client has its answer (err then is the write's error).
func (s *session) interceptQuery(p *router.Part) (it intercept, handled bool, err error) {
	switch {
	case p.Kind == router.KindDeallocate && p.Name == "":
		return s.deallocateAll()
	case p.Kind == router.KindDeallocate:
		return s.deallocate(p.Name)
	case p.Kind == router.KindDiscard && p.Name == "all":
		return s.discardAll()
	case p.Kind == router.KindSet && p.Setting == "" && !s.attached():
		// RESET ALL outside a transaction: the client's settings go back
		// to those of its login, which its next backend gets.
		s.mu.Lock()
		s.noteSettingsLocked(&router.Statement{Parts: []router.Part{*p}})
		s.mu.Unlock()
		return it, true, s.answer("RESET")
	}
	return it, false, nil
}

// answer completes a statement the proxy answered outside a transaction.
func (s *session) answer(tag string) error {
	return s.client.write(true, &pgproto3.CommandComplete{CommandTag: []byte(tag)}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
}

func (s *session) deallocateAll() (intercept, bool, error) {
	s.mu.Lock()
	s.stmts.forgetNamed()
	attached := s.backend.conn != nil
	s.mu.Unlock()
	if !attached {
		return intercept{}, true, s.answer("DEALLOCATE ALL")
	}
	// Inside a transaction (or pinned) the backend is the client's alone
	// now: it may drop every statement there, as long as the proxy forgets
	// them and prepares them again where others need them.
	return intercept{query: "DEALLOCATE ALL", all: true}, false, nil
}

func (s *session) deallocate(name string) (intercept, bool, error) {
	s.mu.Lock()
	st := s.stmts.named[name]
	delete(s.stmts.named, name)
	attached := s.backend.conn != nil
	own := s.backend.pinned != "" && s.stmts.sqlPrepared[name]
	delete(s.stmts.sqlPrepared, name)
	s.mu.Unlock()
	switch {
	case st != nil && !attached:
		return intercept{}, true, s.answer("DEALLOCATE")
	case st != nil:
		return intercept{query: "DEALLOCATE " + st.backendName, dealloc: st}, false, nil
	case own:
		return intercept{}, false, nil // its own SQL PREPARE on its pinned backend
	}
	er := errorResponse(&Error{Severity: "ERROR", Code: pgerrcode.InvalidSQLStatementName,
		Message: fmt.Sprintf("prepared statement %q does not exist", name)}, "ERROR", s.log)
	return intercept{}, true, s.denyQuery(er)
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
		return intercept{}, true, s.answer("DISCARD ALL")
	}
	s.mu.Unlock()
	// A pinned backend is the client's alone: DISCARD ALL resets it, and
	// discardedLocked (at its CommandComplete) forgets the proxy's record.
	return intercept{all: true}, false, nil
}

// deallocation is a DEALLOCATE sent with the extended protocol. It runs on
// the backend at Execute: the proxy rewrites its Parse to the backend name
// of the client's statement, and at each Bind forgets what it will drop.
type deallocation struct {
	all    bool
	name   string // the client's statement name
	target *stmt  // the client's statement at Parse
}

// deallocateParse rewrites the Parse of a one-statement DEALLOCATE (m is
// changed in place) and says what its Binds must forget; it refuses a name
// the client never prepared (26000), as it would reach another client's
// statement on a shared backend.
func (s *session) deallocateParse(cls *router.Statement, m *pgproto3.Parse) (*deallocation, error) {
	p := single(cls)
	if p == nil || p.Kind != router.KindDeallocate {
		return nil, nil
	}
	if p.Name == "" {
		return &deallocation{all: true}, nil
	}
	s.mu.Lock()
	target := s.stmts.named[p.Name]
	own := s.backend.pinned != "" && s.stmts.sqlPrepared[p.Name]
	s.mu.Unlock()
	switch {
	case target != nil:
		m.Query = "DEALLOCATE " + target.backendName
		return &deallocation{name: p.Name, target: target}, nil
	case own:
		return nil, nil
	}
	return nil, &Error{Severity: "ERROR", Code: pgerrcode.InvalidSQLStatementName,
		Message: fmt.Sprintf("prepared statement %q does not exist", p.Name)}
}

// applyLocked forgets, at the Bind of a DEALLOCATE, what its Execute drops
// on c (preparing the statement first when c lacks it, so the DEALLOCATE
// finds it). s.mu is held.
func (d *deallocation) applyLocked(s *session, c *backend.Conn) {
	if d.all {
		s.stmts.forgetNamed()
		c.Stmts().Clear()
		return
	}
	s.ensurePreparedLocked(c, d.target)
	c.Stmts().Remove(d.target.backendName)
	if s.stmts.named[d.name] == d.target {
		delete(s.stmts.named, d.name)
	}
}
