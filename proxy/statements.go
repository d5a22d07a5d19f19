package proxy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/configs"
	"mqstack/internal/backend"
	"mqstack/router"
)

// The client's statements and portals as the proxy keeps them, and the
// translation of the statement names a client sends to those on backends.

// noSuchStatement is a statement name the proxy never prepares: closing it
// is a cheap message the backend always answers with CloseComplete.
const noSuchStatement = "mqstack_none"

// stmt is a client's prepared statement as the proxy keeps it: enough to
// prepare it again on any backend connection.
type stmt struct {
	query string
	oids  []uint32
	// backendName is the name on backend connections: a hash of the text and
	// parameter types, so clients preparing the same statement share it.
	backendName string
	// class is the router's classification (class.Bound(): the grant check
	// waits for Bind); filter says its rows are filtered to listable
	// queues (decided at Parse).
	class  *router.Statement
	filter bool
	// dealloc is set for a DEALLOCATE prepared with the extended protocol:
	// what its Bind must make the proxy forget.
	dealloc *deallocation
	// listen is set for a LISTEN or UNLISTEN, which backends prepare as an
	// empty statement (query ""): its Execute is answered by the proxy
	// (listen.go).
	listen *listenChange
	// listening is the column of a SELECT pg_listening_channels(), which
	// backends prepare as a query of no rows in its shape: the proxy adds
	// the rows at its Execute (listen.go).
	listening string
}

func newStmt(m *pgproto3.Parse, named bool) *stmt {
	st := &stmt{query: m.Query, oids: slices.Clone(m.ParameterOIDs)}
	if named {
		h := sha256.New()
		h.Write([]byte(m.Query))
		var b [4]byte
		for _, o := range m.ParameterOIDs {
			binary.BigEndian.PutUint32(b[:], o)
			h.Write(b[:])
		}
		st.backendName = "mqs_" + hex.EncodeToString(h.Sum(nil)[:12])
	}
	return st
}

// statements are the client's prepared statements and portals, as its
// Parse, Bind, Describe, Close and DEALLOCATE name them. The statements are
// guarded by s.mu (the reader forgets those whose Parse failed); the
// portals are the client goroutine's alone.
type statements struct {
	named      map[string]*stmt // the client's named statements
	namedBytes int              // their query text, together (proxy.max_prepared_bytes)
	unnamed    *stmt            // the client's unnamed statement
	unnamedGen uint64           // counts its Parses: a backend holding it is marked with its generation
	// sqlPrepared are the names of SQL PREPAREs of a pinned session: the
	// only statements besides its protocol ones it may DEALLOCATE, Bind,
	// Describe or Close by name.
	sqlPrepared map[string]bool
	// portal and portals are what the client's Binds fixed for its
	// Executes (the unnamed portal, named ones).
	portal  portal
	portals map[string]portal
}

// stmtRef is what a statement name in a client's message refers to.
type stmtRef uint8

const (
	refNone    stmtRef = iota // nothing the client prepared
	refUnnamed                // the unnamed statement (which may not exist)
	refNamed                  // one of the client's protocol statements
	refSQL                    // a SQL PREPARE of the pinned session, by its own name
)

// resolve says what a statement name refers to: the client's protocol
// statements come before a pinned session's SQL PREPAREs.
func (t *statements) resolve(name string, pinned bool) (stmtRef, *stmt) {
	switch {
	case name == "":
		return refUnnamed, t.unnamed
	case t.named[name] != nil:
		return refNamed, t.named[name]
	case pinned && t.sqlPrepared[name]:
		return refSQL, nil
	}
	return refNone, nil
}

// lookup returns the client's statement of that name, nil if none.
func (t *statements) lookup(name string) *stmt {
	if name == "" {
		return t.unnamed
	}
	return t.named[name]
}

// forget drops the client's protocol statement of that name.
func (t *statements) forget(name string) {
	if name == "" {
		t.unnamed = nil
	} else {
		t.dropNamed(name)
	}
}

// dropNamed forgets the client's named statement of that name.
func (t *statements) dropNamed(name string) {
	if st := t.named[name]; st != nil {
		t.namedBytes -= len(st.query)
		delete(t.named, name)
	}
}

// setNamed records the client's statement name (the map is made at the
// first one: most clients of a transaction pooler prepare none).
func (t *statements) setNamed(name string, st *stmt) {
	if t.named == nil {
		t.named = map[string]*stmt{}
	}
	t.dropNamed(name)
	t.named[name] = st
	t.namedBytes += len(st.query)
}

// forgetNamed drops every named statement, protocol and SQL (DEALLOCATE
// ALL, DISCARD ALL).
func (t *statements) forgetNamed() {
	clear(t.named)
	t.namedBytes = 0
	clear(t.sqlPrepared)
}

// notePrepare records the SQL PREPAREs of a (pinned) session.
func (t *statements) notePrepare(st *router.Statement) {
	for i := range st.Parts {
		if p := &st.Parts[i]; p.Pin == router.PinSQLPrepare && p.Name != "" {
			if t.sqlPrepared == nil {
				t.sqlPrepared = map[string]bool{}
			}
			t.sqlPrepared[p.Name] = true
		}
	}
}

// checkCaps bounds the client's named statements, with one of size bytes
// about to be named name, in number and in bytes of text
// (proxy.max_prepared_statements and proxy.max_prepared_bytes): the proxy
// keeps them for the whole session.
func (t *statements) checkCaps(name string, size int, cfg *configs.ProxyConfig) error {
	n, total := len(t.named), t.namedBytes+size
	if old := t.named[name]; old != nil { // replaced, not added
		n--
		total -= len(old.query)
	}
	if n+1 > cfg.MaxPreparedStatements {
		return &Error{Severity: "ERROR", Code: pgerrcode.ConfigurationLimitExceeded,
			Message: fmt.Sprintf("too many prepared statements: this session holds %d (proxy.max_prepared_statements)", n),
			Hint:    "deallocate (protocol Close or DEALLOCATE) statements the client no longer uses"}
	}
	if int64(total) > int64(cfg.MaxPreparedBytes) {
		return &Error{Severity: "ERROR", Code: pgerrcode.ConfigurationLimitExceeded,
			Message: fmt.Sprintf("prepared statements of this session would hold %d bytes of text, over proxy.max_prepared_bytes (%s)", total, cfg.MaxPreparedBytes),
			Hint:    "deallocate (protocol Close or DEALLOCATE) statements the client no longer uses"}
	}
	return nil
}

// setPortal records what a Bind fixed for the portal of that name.
func (t *statements) setPortal(name string, p portal) {
	if name == "" {
		t.portal = p
		return
	}
	if p.st == nil {
		delete(t.portals, name)
		return
	}
	if t.portals == nil {
		t.portals = map[string]portal{}
	}
	t.portals[name] = p
}

func (t *statements) portalFor(name string) portal {
	if name == "" {
		return t.portal
	}
	return t.portals[name]
}

// checkPreparedCaps is statements.checkCaps under s.mu.
func (s *session) checkPreparedCaps(name string, size int) error {
	cfg := s.srv.config()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stmts.checkCaps(name, size, cfg)
}

// backendStatementLocked translates the statement name of a client's Bind
// or Describe (closing false) or Close (closing true) to the name sent to
// c. Backends are shared, so a name the client never prepared becomes one
// that exists nowhere and no client reaches another's statement. For Bind
// and Describe the statement is prepared on c when c lacks it. A Close
// forgets the client's statement; the backend's stays (shared, in c's
// LRU), so the Close names nothing and is answered in order. s.mu is held.
func (s *session) backendStatementLocked(c *backend.Conn, name string, closing bool) string {
	ref, st := s.stmts.resolve(name, s.backend.pinned != "")
	switch ref {
	case refUnnamed:
		if closing {
			s.stmts.unnamed = nil
			c.ForgetUnnamed()
			return ""
		}
		if st == nil {
			return noSuchStatement
		}
		s.ensureUnnamedLocked(c)
		return ""
	case refNamed:
		if closing {
			s.stmts.dropNamed(name)
			return noSuchStatement
		}
		s.ensurePreparedLocked(c, st)
		return st.backendName
	case refSQL:
		if closing {
			delete(s.stmts.sqlPrepared, name) // its own SQL PREPARE
		}
		return name
	}
	return noSuchStatement
}
