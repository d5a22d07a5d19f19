package router

import (
	"slices"

	"mqstack/auth"
)

// Kind is what one SQL statement is, as far as grants care.
type Kind uint8

// Statement kinds.
const (
	KindOther             Kind = iota // anything else: DDL, DML, unknown; refused for grant-limited tokens
	KindEmpty                         // empty or comment-only
	KindPgmq                          // calls pgmq functions (see Part.Calls)
	KindTransaction                   // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...
	KindSet                           // SET / RESET of an ordinary setting
	KindShow                          // SHOW
	KindDiscard                       // DISCARD
	KindDeallocate                    // DEALLOCATE
	KindClose                         // CLOSE cursor
	KindListen                        // LISTEN
	KindUnlisten                      // UNLISTEN
	KindConstant                      // SELECT without tables, only safe functions
	KindCatalog                       // read-only query of pg_catalog / information_schema
	KindCreateExtension               // CREATE EXTENSION IF NOT EXISTS pgmq
	KindAdvisoryUnlockAll             // SELECT pg_advisory_unlock_all()
	KindListeningChannels             // SELECT pg_listening_channels(), alone (Name: its column)
)

var kindNames = [...]string{
	KindOther: "other", KindEmpty: "empty", KindPgmq: "pgmq call", KindTransaction: "transaction control",
	KindSet: "set", KindShow: "show", KindDiscard: "discard", KindDeallocate: "deallocate",
	KindClose: "close", KindListen: "listen", KindUnlisten: "unlisten", KindConstant: "constant select",
	KindCatalog: "catalog read", KindCreateExtension: "create extension", KindAdvisoryUnlockAll: "advisory unlock all",
	KindListeningChannels: "listening channels",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Arg is the value of a function argument the router must know: a literal
// string, or a bound parameter resolved from Bind values.
type Arg struct {
	Literal string
	Param   int // $n, 1-based; 0 when Literal (or Null) holds the value
	Null    bool
}

// Call is one pgmq function call found in a statement.
type Call struct {
	Function string  // pgmq function name, e.g. "send"
	Op       auth.Op // 0 for pure helpers
	Scope    Scope
	Target   Arg // the queue (ScopeQueue) or routing key (ScopeTopic)
	// Message is the msg (or msgs) argument of the send functions, for
	// message-size metrics; zero when there is none or it is an expression.
	Message Arg
	// Pattern is bind_topic's topic pattern, whose topics must be readable.
	Pattern Arg
}

// PinCause is session state that cannot survive a transaction boundary, so
// the client must keep its backend.
type PinCause string

// Pin causes, used as metric labels.
const (
	PinListen       PinCause = "listen"
	PinSessionSet   PinCause = "session_set"
	PinTempTable    PinCause = "temp_table"
	PinAdvisoryLock PinCause = "advisory_lock"
	PinSQLPrepare   PinCause = "sql_prepare"
	PinHoldCursor   PinCause = "hold_cursor"
	PinSessionMode  PinCause = "session_mode" // the pool runs in session mode
)

// PinCauses lists every pin cause (metric label values).
func PinCauses() []PinCause {
	return []PinCause{PinListen, PinSessionSet, PinTempTable, PinAdvisoryLock, PinSQLPrepare, PinHoldCursor, PinSessionMode}
}

// Part is one statement of a (possibly multi-statement) query string.
type Part struct {
	Kind  Kind
	Calls []Call
	// Uncertain says why the router cannot vouch for this statement
	// (a dynamic queue name, a function that may wrap pgmq, raw table
	// access, ...); "" when it can.
	Uncertain string
	// Setting is the name for SET/RESET/SHOW ("" for RESET ALL).
	Setting string
	// Local is true for SET LOCAL and SET TRANSACTION.
	Local bool
	// Reset is true for RESET and SET ... TO DEFAULT.
	Reset bool
	// Values are SET's constant arguments; ValuesKnown is false when SET
	// has an argument that is not a constant.
	Values      []string
	ValuesKnown bool
	// Name is the statement named by DEALLOCATE, PREPARE or CLOSE ("" for
	// ALL), DISCARD's target (all, plans, sequences, temp), or the
	// column of KindListeningChannels.
	Name string
	// Channel is the LISTEN/UNLISTEN channel ("*" for UNLISTEN *).
	Channel string
	// Pin is set when the statement creates session state.
	Pin PinCause
	// Taints is set when the statement may leave session state the router
	// cannot name (DO, CALL, functions that are not vouched for, text that
	// does not parse): the backend is reset before another client gets it.
	Taints bool
	// Funcs are the built-in functions called (other than pgmq's),
	// Relations the catalogs read, SettingReads the settings read with
	// current_setting ("" when the name is not a literal), SetConfigs the
	// (name, value) pairs of set_config calls ("" names when not literal).
	Funcs        []string
	Relations    []string
	SettingReads []string
	SetConfigs   [][2]string
	// RegCast is set when a value is cast to a reg* type (an object lookup
	// by name).
	RegCast bool
	// CopyIn is set for COPY ... FROM STDIN, which puts the backend in
	// copy-in mode (where it ignores Sync).
	CopyIn bool
	// Notify is set for NOTIFY.
	Notify bool
}

// Statement is the classification of one query string. It is shared
// through the router's cache and never changes once made.
type Statement struct {
	Parts []Part
	// ParseError is the parser's message when the text is not valid SQL;
	// Postgres will reject it too, with its own error.
	ParseError string

	// What the proxy asks of every message of a statement, summed up once
	// over the parts when it is classified (summarized):
	Taints   bool // some part may leave state the router cannot name
	HasSets  bool // some part is a SET or RESET
	HasCalls bool // some part calls pgmq functions
	CopyIn   bool // some part is COPY ... FROM STDIN
	Listens  bool // some part is LISTEN or UNLISTEN
	// ReadsListening: some part calls pg_listening_channels() (which the
	// proxy answers only as KindListeningChannels).
	ReadsListening bool
	// Notifies: some part may send a notification (NOTIFY, pg_notify, a
	// pgmq send, whose queue may notify on insert, or code the router
	// cannot read).
	Notifies bool
	Session  *Denial // SessionDenial's answer, nil when every token may run it
	// NameParams are the parameters ($n, ascending, once each) that name a
	// call's queue, routing key or pattern: grants wait for Bind.
	NameParams []int
}

// Bound reports whether some call names its queue or pattern with a
// parameter.
func (s *Statement) Bound() bool { return len(s.NameParams) > 0 }

// summarized fills st's summary from its parts.
func summarized(st *Statement) *Statement {
	for i := range st.Parts {
		p := &st.Parts[i]
		st.Taints = st.Taints || p.Taints
		st.HasSets = st.HasSets || p.Kind == KindSet
		st.HasCalls = st.HasCalls || len(p.Calls) > 0
		st.CopyIn = st.CopyIn || p.CopyIn
		st.Listens = st.Listens || p.Kind == KindListen || p.Kind == KindUnlisten
		st.Notifies = st.Notifies || p.Taints || mayNotify(p)
		st.ReadsListening = st.ReadsListening || readsListening(p)
		for _, c := range p.Calls {
			for _, n := range []int{c.Target.Param, c.Pattern.Param} {
				if n > 0 && !slices.Contains(st.NameParams, n) {
					st.NameParams = append(st.NameParams, n)
				}
			}
		}
	}
	slices.Sort(st.NameParams)
	st.Session = SessionDenial(st)
	return st
}

// Uncertain returns the first reason a part is uncertain, or "".
func (s *Statement) Uncertain() string {
	for i := range s.Parts {
		if s.Parts[i].Uncertain != "" {
			return s.Parts[i].Uncertain
		}
	}
	return ""
}

// Calls returns every pgmq call of every part.
func (s *Statement) Calls() []Call {
	var out []Call
	for i := range s.Parts {
		out = append(out, s.Parts[i].Calls...)
	}
	return out
}

// Pins returns the pin causes of the statement's parts, without duplicates.
func (s *Statement) Pins() []PinCause {
	var out []PinCause
	for i := range s.Parts {
		if p := s.Parts[i].Pin; p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// mayNotify reports whether a part may send a notification.
func mayNotify(p *Part) bool {
	if p.Notify || slices.Contains(p.Funcs, "pg_notify") {
		return true
	}
	for _, c := range p.Calls {
		if c.Op&(auth.OpSend|auth.OpPublish) != 0 {
			return true
		}
	}
	return false
}
