package proxy

import (
	"encoding/binary"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/auth"
	"mqstack/router"
)

// observer queues the statements whose results the reader accounts, in
// the order the backend answers them. Guarded by s.mu; n is len(queue),
// which the reader reads without the lock.
type observer struct {
	queue   []obsEntry
	n       atomic.Int32
	execSeq int // Executes sent in the open cycle
}

// push queues an entry for the reader. s.mu is held.
func (o *observer) push(e obsEntry) {
	o.queue = append(o.queue, e)
	o.n.Add(1)
}

// reset empties the queue for a newly attached connection. s.mu is held.
func (o *observer) reset() {
	o.queue = o.queue[:0]
	o.n.Store(0)
	o.execSeq = 0
}

// take returns the entry for the statement the reader is at: the first of
// cycle, for an Execute the one at position pos of its cycle. Entries of
// earlier cycles, skipped by an error, are dropped. s.mu is held.
func (o *observer) take(cycle uint64, pos int) (e obsEntry, found bool) {
	i := 0
	for i < len(o.queue) && o.queue[i].cycle < cycle {
		i++ // skipped by an error earlier in their cycle
	}
	if i < len(o.queue) && o.queue[i].cycle == cycle && (o.queue[i].simple || o.queue[i].seq == pos) {
		e, found = o.queue[i], true
		i++
	}
	if i > 0 {
		// Shift down rather than reslice, so the array is reused.
		n := copy(o.queue, o.queue[i:])
		clear(o.queue[n:])
		o.queue = o.queue[:n]
		o.n.Add(-int32(i))
	}
	return e, found
}

// How the reader looks into the rows of an observed statement.
const (
	inspectNone   uint8 = iota
	inspectBool         // delete/archive single form: a false row moved nothing
	inspectInt          // send_topic: the row is the count sent
	inspectFilter       // a listing: rows of queues the token may not list are dropped
)

// portal is what a Bind fixed for the Execute that follows: the
// statement, the queue names its bound parameters gave, and how to read
// the rows.
type portal struct {
	st      *router.Statement
	queues  []string // by call (router.Statement.Calls order); "" where literal
	filter  bool
	binary  bool // the first result column comes in binary format
	inspect uint8
	// msgSize is the size of the message argument of a single send call
	// (the whole array for batches), 0 when unknown.
	msgSize int
	// notifies: the statement may send a notification (its sender's pid
	// is then the client's, see clientPID).
	notifies bool
	// empty: the backend's statement is empty, and answers Execute with
	// EmptyQueryResponse; listen is the LISTEN or UNLISTEN it stands for
	// (nil for the client's own empty statement).
	empty  bool
	listen *listenChange
	// listening is the column of a prepared SELECT pg_listening_channels():
	// the proxy writes the rows before its CommandComplete.
	listening string
}

// messageSize is the size of the message argument of st's only call: a
// literal's length, or the bound value's (values may be nil: simple Query).
func messageSize(st *router.Statement, values [][]byte) int {
	if len(st.Parts) != 1 || len(st.Parts[0].Calls) != 1 {
		return 0
	}
	m := st.Parts[0].Calls[0].Message
	if m.Param > 0 {
		if m.Param <= len(values) {
			return len(values[m.Param-1])
		}
		return 0
	}
	return len(m.Literal)
}

// obsEntry is a statement whose results the reader accounts: a simple
// Query, or an Execute of a statement with pgmq calls. Entries are queued
// in the order the backend answers them.
type obsEntry struct {
	cycle  uint64 // the sync point whose cycle answers it
	seq    int    // for an Execute: completions before it in its cycle
	simple bool
	portal
	start time.Time
}

// inspectFor decides how rows are read for a statement of one call.
func inspectFor(st *router.Statement, filter bool) uint8 {
	if filter {
		return inspectFilter
	}
	if len(st.Parts) != 1 || len(st.Parts[0].Calls) != 1 {
		return inspectNone
	}
	switch st.Parts[0].Calls[0].Function {
	case "delete", "archive":
		return inspectBool
	case "send_topic":
		return inspectInt
	}
	return inspectNone
}

// relayObs is the reader's accounting state for one attachment.
type relayObs struct {
	cycle  uint64 // ReadyForQuery seen
	pos    int    // completions seen in this cycle
	looked bool   // cur is settled for (cycle, pos)
	has    bool
	cur    obsEntry
	rows   int // DataRows of the current statement
	kept   int // rows relayed (filtered listings)
	falses int // rows whose boolean was false
	value  int // send_topic's count
	col    int // queue_name column of the current listing; -1 none, -2 unknown
	// describeNext: the next RowDescription/NoData answers the proxy's own
	// Describe of a listing portal; describedCol is what it said.
	describeNext bool
	describedCol int
	// sent are the queues sent to since the session was last idle; the
	// server's OnSend hears of them when the transaction ends.
	sent []string
}

// entry returns the statement the reader is in, nil for one not observed.
func (ro *relayObs) entry(s *session) *obsEntry {
	if ro.looked {
		if ro.has {
			return &ro.cur
		}
		return nil
	}
	ro.looked, ro.has = true, false
	if s.obs.n.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	ro.cur, ro.has = s.obs.take(ro.cycle, ro.pos)
	s.mu.Unlock()
	if !ro.has {
		return nil
	}
	ro.col = -2
	if !ro.cur.simple && ro.cur.filter {
		ro.col = ro.describedCol
	}
	return &ro.cur
}

// ready resets the state at a ReadyForQuery; at the end of a transaction
// (status idle) it reports the queues sent to.
func (ro *relayObs) ready(s *session, status byte) {
	if len(ro.sent) > 0 && status == 'I' {
		for _, q := range ro.sent {
			s.srv.onSend(q)
		}
		ro.sent = ro.sent[:0]
	}
	ro.cycle++
	ro.pos = 0
	ro.looked, ro.has = false, false
	ro.rows, ro.kept, ro.falses, ro.value = 0, 0, 0, 0
}

func queueColumn(m *pgproto3.RowDescription) int {
	for i, f := range m.Fields {
		if string(f.Name) == "queue_name" {
			return i
		}
	}
	return -1
}

// rowDescription handles a RowDescription or NoData (m nil); it returns
// false when the message must not reach the client.
func (ro *relayObs) rowDescription(s *session, m *pgproto3.RowDescription) bool {
	if ro.describeNext {
		ro.describeNext = false
		ro.describedCol = -1
		if m != nil {
			ro.describedCol = queueColumn(m)
		}
		return false
	}
	e := ro.entry(s)
	if e == nil || !e.simple || !e.filter || m == nil {
		return true
	}
	ro.col = queueColumn(m)
	return ro.col >= 0
}

// dataRow accounts one row; false drops it.
func (ro *relayObs) dataRow(s *session, m *pgproto3.DataRow) bool {
	e := ro.entry(s)
	ro.rows++
	if e == nil {
		return true
	}
	switch e.inspect {
	case inspectBool:
		if len(m.Values) > 0 {
			v := m.Values[0]
			if len(v) == 1 && (v[0] == 'f' || v[0] == 0) {
				ro.falses++
			}
		}
	case inspectInt:
		if len(m.Values) > 0 {
			ro.value = intValue(m.Values[0], e.binary)
		}
	case inspectFilter:
		if ro.col < 0 || ro.col >= len(m.Values) || !s.login.id.Grants.CanList(string(m.Values[ro.col])) {
			return false
		}
		ro.kept++
	}
	return true
}

func intValue(v []byte, binaryFormat bool) int {
	if binaryFormat {
		switch len(v) {
		case 4:
			return int(int32(binary.BigEndian.Uint32(v)))
		case 8:
			return int(int64(binary.BigEndian.Uint64(v)))
		}
		return 0
	}
	n, _ := strconv.Atoi(string(v))
	return n
}

// complete ends the current statement (CommandComplete, EmptyQueryResponse,
// PortalSuspended or ErrorResponse) and returns the message to relay in
// place of m.
func (ro *relayObs) complete(s *session, m pgproto3.BackendMessage) pgproto3.BackendMessage {
	e := ro.entry(s)
	out := m
	if e != nil && e.listening != "" {
		if _, ok := m.(*pgproto3.CommandComplete); ok {
			out = s.listeningCompletion(e.listening)
		}
	}
	if e != nil {
		_, failed := m.(*pgproto3.ErrorResponse)
		if _, suspended := m.(*pgproto3.PortalSuspended); !suspended {
			if _, ok := m.(*pgproto3.CommandComplete); ok && e.filter {
				if ro.col < 0 {
					d := &router.Denial{Kind: router.KindPgmq, Reason: "listing_columns",
						Detail: "the result has no queue_name column to filter on"}
					s.countDenial(nil, d, nil)
					out = errorResponse(d, "ERROR", s.log)
					failed = true
				} else {
					out = selectTag(ro.kept)
				}
			}
			part := 0
			if e.simple {
				part = ro.pos
			}
			s.observe(e, part, !failed, ro)
		}
	}
	ro.pos++
	ro.rows, ro.kept, ro.falses, ro.value = 0, 0, 0, 0
	if e == nil || !e.simple {
		ro.looked, ro.has = false, false
	} else {
		ro.col = -2
	}
	return out
}

// observe records the pgmq calls of one part of a statement. Message
// counts are kept for a part with exactly one call; a part with several
// counts each call as an operation only.
func (s *session) observe(e *obsEntry, part int, ok bool, ro *relayObs) {
	if part >= len(e.st.Parts) {
		return
	}
	base := 0
	for i := 0; i < part; i++ {
		base += len(e.st.Parts[i].Calls)
	}
	p := &e.st.Parts[part]
	d := time.Since(e.start)
	for i, c := range p.Calls {
		if c.Scope == router.ScopePure {
			continue
		}
		q := c.Target.Literal
		if c.Target.Param > 0 && base+i < len(e.queues) {
			q = e.queues[base+i]
		}
		if c.Scope == router.ScopeListing || c.Scope == router.ScopeAllQueues {
			q = "_none"
		}
		if q == "" {
			continue
		}
		o := Observation{Function: c.Function, Queue: q, Outcome: outcomeError, Latency: d}
		if ok {
			o.Outcome = outcomeOK
			o.MessageSize = e.msgSize // 0 unless a single send call
			if len(p.Calls) == 1 {
				o.Counted, o.Rows = true, ro.rows
				switch e.inspect {
				case inspectBool:
					o.Messages = ro.rows - ro.falses
				case inspectInt:
					o.Messages = ro.value
				default:
					o.Messages = ro.rows
				}
				if s.srv.onSend != nil && sendsMessages(c) && o.Messages > 0 {
					if c.Scope == router.ScopeTopic {
						q = ""
					}
					ro.sent = append(ro.sent, q)
				}
			}
		}
		s.srv.rec.ObserveCall(o)
	}
}

// sendsMessages reports whether a pgmq call sends messages: once its
// transaction ends, REST long polls hear of it (Options.OnSend).
func sendsMessages(c router.Call) bool {
	return c.Op == auth.OpSend || c.Op == auth.OpPublish
}
