package proxy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
	"mqstack/router"
)

// statements are the client's prepared statements and portals, as its
// Parse, Bind, Describe, Close and DEALLOCATE name them. The statements are
// guarded by s.mu (the reader forgets those whose Parse failed); the
// portals are the client goroutine's alone.
type statements struct {
	named      map[string]*stmt // the client's named statements
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
	// class is the router's classification; bindAuth says the grant check
	// waits for Bind (queue names are parameters); filter says its rows
	// are filtered to listable queues (decided at Parse).
	class    *router.Statement
	bindAuth bool
	filter   bool
	// dealloc is set for a DEALLOCATE prepared with the extended protocol:
	// what its Bind must make the proxy forget.
	dealloc *deallocation
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

// pqAction says what to do with the ParseComplete or CloseComplete that a
// Parse or Close sent to the backend produces.
type pqAction uint8

const (
	pqPass     pqAction = iota // the client's own message: relay the answer
	pqDrop                     // injected by the proxy: drop the answer
	pqAsParse                  // a Close standing in for a Parse of a statement already there: answer ParseComplete
	pqDescribe                 // injected before the proxy's Describe of a listing portal: drop, and take the next RowDescription
)

type pqEntry struct {
	action pqAction
	cycle  uint64
	// created is the backend statement a Parse creates; when the answer
	// never comes (an error skipped it) the LRU forgets it.
	created string
	// client and st name the client statement a Parse defines, forgotten
	// when its Parse fails.
	client string
	st     *stmt
	// unnamed marks a Parse of the unnamed statement; own when the client
	// sent it (not a re-prepare by the proxy).
	unnamed, own bool
}

// pushLocked records how to relay the answer to a Parse or Close about to be
// sent. s.mu is held.
func (s *session) pushLocked(e pqEntry) {
	e.cycle = s.backend.cycle
	s.backend.parseq = append(s.backend.parseq, e)
}

// popLocked takes the entry for a ParseComplete or CloseComplete.
func (s *session) popLocked() pqAction {
	if len(s.backend.parseq) == 0 {
		panic("BUG: ParseComplete or CloseComplete without a Parse or Close sent")
	}
	e := s.backend.parseq[0]
	s.backend.parseq = s.backend.parseq[1:]
	return e.action
}

// settleLocked runs at each ReadyForQuery: entries of finished cycles still
// queued were skipped by an error, so their statements do not exist.
func (s *session) settleLocked(c *backend.Conn) {
	i := 0
	for ; i < len(s.backend.parseq) && s.backend.parseq[i].cycle < s.backend.doneCycles; i++ {
		e := s.backend.parseq[i]
		if e.created != "" {
			c.Stmts.Remove(e.created)
		}
		if e.client != "" && s.stmts.named[e.client] == e.st {
			delete(s.stmts.named, e.client)
		}
		if e.unnamed {
			c.UnnamedOwner = nil
			if e.own && s.stmts.unnamed == e.st {
				s.stmts.unnamed = nil
			}
		}
	}
	s.backend.parseq = s.backend.parseq[i:]
	j := 0
	for j < len(s.deny.queue) && s.deny.queue[j].cycle < s.backend.doneCycles {
		j++
	}
	s.deny.queue = s.deny.queue[j:]
}

// ensurePreparedLocked makes st exist on c before a Bind or Describe uses
// it, preparing it (answer dropped) when c lacks it.
func (s *session) ensurePreparedLocked(c *backend.Conn, st *stmt) {
	if c.Stmts.Has(st.backendName) {
		return
	}
	c.Stmts.Add(st.backendName)
	s.pushLocked(pqEntry{action: pqDrop, created: st.backendName})
	c.Frontend().Send(&pgproto3.Parse{Name: st.backendName, Query: st.query, ParameterOIDs: st.oids})
	s.backend.pending += len(st.query)
}

// ensureUnnamedLocked makes the client's unnamed statement the one c holds.
func (s *session) ensureUnnamedLocked(c *backend.Conn) {
	if s.stmts.unnamed == nil || c.UnnamedOwner == s && c.UnnamedGen == s.stmts.unnamedGen {
		return
	}
	c.UnnamedOwner, c.UnnamedGen = s, s.stmts.unnamedGen
	s.pushLocked(pqEntry{action: pqDrop, st: s.stmts.unnamed, unnamed: true})
	c.Frontend().Send(&pgproto3.Parse{Query: s.stmts.unnamed.query, ParameterOIDs: s.stmts.unnamed.oids})
	s.backend.pending += len(s.stmts.unnamed.query)
}

// startCycleLocked closes the statements the LRU evicted, first thing in a
// cycle where no earlier error can make the backend skip the Close.
func (s *session) startCycleLocked(c *backend.Conn) {
	if s.backend.open {
		return
	}
	for _, name := range c.Stmts.TakePending() {
		s.pushLocked(pqEntry{action: pqDrop})
		c.Frontend().Send(&pgproto3.Close{ObjectType: 'S', Name: name})
	}
}
