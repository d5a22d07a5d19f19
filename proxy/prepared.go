package proxy

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
)

// How the client's statements reach backend connections: prepared where
// they are used, and the queue that says how to relay the backend's answer
// to each Parse or Close sent, the client's or the proxy's own.

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

// push records how to relay the answer to a Parse or Close about to be
// sent in the current cycle. s.mu is held.
func (a *attachment) push(e pqEntry) {
	e.cycle = a.cycle
	a.parseq = append(a.parseq, e)
}

// pop takes the entry for a ParseComplete or CloseComplete. s.mu is held.
func (a *attachment) pop() pqAction {
	if len(a.parseq) == 0 {
		panic("BUG: ParseComplete or CloseComplete without a Parse or Close sent")
	}
	e := a.parseq[0]
	a.parseq = a.parseq[1:]
	return e.action
}

// settleLocked runs at each ReadyForQuery: entries of finished cycles still
// queued were skipped by an error, so their statements do not exist (and
// denials of those cycles will not be asked for).
func (s *session) settleLocked(c *backend.Conn) {
	done := s.backend.doneCycles
	i := 0
	for ; i < len(s.backend.parseq) && s.backend.parseq[i].cycle < done; i++ {
		e := s.backend.parseq[i]
		if e.created != "" {
			c.Stmts().Remove(e.created)
		}
		if e.client != "" && s.stmts.named[e.client] == e.st {
			s.stmts.dropNamed(e.client)
		}
		if e.unnamed {
			c.ForgetUnnamed()
			if e.own && s.stmts.unnamed == e.st {
				s.stmts.unnamed = nil
			}
		}
	}
	s.backend.parseq = s.backend.parseq[i:]
	s.deny.queue.settle(done)
	s.listen.marks.settle(done)
}

// ensurePreparedLocked makes st exist on c before a Bind or Describe uses
// it, preparing it (answer dropped) when c lacks it.
func (s *session) ensurePreparedLocked(c *backend.Conn, st *stmt) {
	if c.Stmts().Has(st.backendName) {
		return
	}
	c.Stmts().Add(st.backendName)
	s.backend.push(pqEntry{action: pqDrop, created: st.backendName})
	c.Send(&pgproto3.Parse{Name: st.backendName, Query: st.query, ParameterOIDs: st.oids})
	s.backend.pending += len(st.query)
}

// ensureUnnamedLocked makes the client's unnamed statement the one c holds.
func (s *session) ensureUnnamedLocked(c *backend.Conn) {
	u := s.stmts.unnamed
	if u == nil || c.HoldsUnnamed(s, s.stmts.unnamedGen) {
		return
	}
	c.SetUnnamed(s, s.stmts.unnamedGen)
	s.backend.push(pqEntry{action: pqDrop, st: u, unnamed: true})
	c.Send(&pgproto3.Parse{Query: u.query, ParameterOIDs: u.oids})
	s.backend.pending += len(u.query)
}

// startCycleLocked closes the statements the LRU evicted, first thing in a
// cycle where no earlier error can make the backend skip the Close.
func (s *session) startCycleLocked(c *backend.Conn) {
	if s.backend.open {
		return
	}
	for _, name := range c.Stmts().TakePending() {
		s.backend.push(pqEntry{action: pqDrop})
		c.Send(&pgproto3.Close{ObjectType: 'S', Name: name})
	}
}
