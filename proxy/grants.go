package proxy

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
	"mqstack/router"
)

// denyMarker is what the proxy sends the backend in place of a denied
// statement: a syntax error, so the backend does what Postgres does for a
// failing statement (aborts the transaction block, skips to Sync in the
// extended protocol) and its ErrorResponse, in the right place of the
// stream, is replaced by the denial.
const denyMarker = "mqstack_denied"

// denial is an ErrorResponse waiting for its marker's syntax error.
type denial struct {
	cycle uint64
	resp  *pgproto3.ErrorResponse
}

// OIDs of the types whose binary form is the text itself.
const (
	oidText    = 25
	oidVarchar = 1043
)

// bindValues is the Bind being authorized; bindParam reads it for
// router.Params (a method value made once per session, so no allocation
// per Bind).
type bindValues struct {
	m    *pgproto3.Bind
	oids []uint32
}

func formatOf(codes []int16, i int) int16 {
	switch len(codes) {
	case 0:
		return 0
	case 1:
		return codes[0]
	}
	if i < len(codes) {
		return codes[i]
	}
	return 0
}

// textOID reports whether parameter i is declared text or varchar: types
// whose value is the name as sent. (name truncates to 63 bytes, bpchar
// drops trailing blanks: Postgres would see another name than the check.)
func textOID(oids []uint32, i int) bool {
	if i >= len(oids) {
		return false
	}
	switch oids[i] {
	case oidText, oidVarchar:
		return true
	}
	return false
}

// keepsName reports whether a parameter in text format reaches a text
// argument unchanged: declared text or varchar, or left for the server to
// infer (0), which makes it the argument's type, text.
func keepsName(oids []uint32, i int) bool {
	return i >= len(oids) || oids[i] == 0 || textOID(oids, i)
}

// bindParam resolves $n from the Bind being checked: text format as sent,
// binary format only for text-like declared types; a parameter declared
// of a type that changes the name fails closed.
func (s *session) bindParam(n int) (string, bool) {
	b := &s.deny.bind
	i := n - 1
	if b.m == nil || i < 0 || i >= len(b.m.Parameters) || b.m.Parameters[i] == nil {
		return "", false
	}
	if formatOf(b.m.ParameterFormatCodes, i) != 0 && !textOID(b.oids, i) || !keepsName(b.oids, i) {
		return "", false
	}
	return string(b.m.Parameters[i]), true
}

func noParams(int) (string, bool) { return "", false }

// pinNameParams declares text every parameter that names a queue, routing
// key or pattern and that the client left to the server (OID 0). Postgres
// types a parameter at its first use: in
// `SELECT pgmq.read($1, 0, 1) FROM (SELECT $1::char(10)) s` the name would
// become char(10) and lose its trailing blanks before pgmq saw it, another
// name than the grant check read. Declared text, it reaches pgmq as bound.
func pinNameParams(cls *router.Statement, oids []uint32) []uint32 {
	for i := range cls.Parts {
		for _, c := range cls.Parts[i].Calls {
			for _, a := range []router.Arg{c.Target, c.Pattern} {
				j := a.Param - 1
				if j < 0 || j >= maxPinnedParam {
					continue
				}
				for len(oids) <= j {
					oids = append(oids, 0)
				}
				if oids[j] == 0 {
					oids[j] = oidText
				}
			}
		}
	}
	return oids
}

// maxPinnedParam bounds the parameter numbers pinNameParams pads up to
// (Postgres allows 65535 parameters).
const maxPinnedParam = 65535

// binaryTarget finds a pgmq call whose queue is bound in binary format as
// a type the proxy cannot read as text.
func (s *session) binaryTarget(st *router.Statement) *router.Denial {
	b := &s.deny.bind
	for i := range st.Parts {
		for _, c := range st.Parts[i].Calls {
			for _, a := range []router.Arg{c.Target, c.Pattern} {
				j := a.Param - 1
				if j < 0 || b.m == nil {
					continue
				}
				if formatOf(b.m.ParameterFormatCodes, j) != 0 && !textOID(b.oids, j) {
					return &router.Denial{Kind: router.KindPgmq, Op: c.Op, Reason: "uncertain",
						Detail: "a name given to pgmq." + c.Function + " is bound in binary format as a type other than text or varchar"}
				}
				if !keepsName(b.oids, j) {
					return &router.Denial{Kind: router.KindPgmq, Op: c.Op, Reason: "uncertain",
						Detail: "a name given to pgmq." + c.Function + " is declared of a type other than text or varchar, which may change it (bpchar drops trailing blanks, name truncates)"}
				}
			}
		}
	}
	return nil
}

// authorizeQuery checks a simple query (or a Parse without bound queue
// names) of a grant-limited token. filter says the result rows must be
// filtered to listable queues.
func (s *session) authorizeQuery(st *router.Statement) (filter bool, err error) {
	dec, err := router.Authorize(s.login.id, st, noParams)
	if err != nil {
		return false, err
	}
	if dec.FilterListing && len(st.Parts) != 1 {
		return false, &router.Denial{Kind: router.KindPgmq, Reason: "uncertain",
			Detail: "send a listing as a statement of its own, so that its rows can be filtered"}
	}
	return dec.FilterListing, nil
}

// authorizeBind checks a Bind of a statement whose queue names are
// parameters.
func (s *session) authorizeBind(st *stmt, m *pgproto3.Bind) (filter bool, err error) {
	s.deny.bind = bindValues{m: m, oids: st.oids}
	defer func() { s.deny.bind = bindValues{} }()
	if d := s.binaryTarget(st.class); d != nil {
		return false, d
	}
	dec, err := router.Authorize(s.login.id, st.class, s.deny.param)
	if err != nil {
		return false, err
	}
	if dec.FilterListing && len(st.class.Parts) != 1 {
		return false, &router.Denial{Kind: router.KindPgmq, Reason: "uncertain",
			Detail: "send a listing as a statement of its own, so that its rows can be filtered"}
	}
	return dec.FilterListing, nil
}

// countDenial counts a refused statement: by reason, and per queue for the
// pgmq call the denial names.
func (s *session) countDenial(st *router.Statement, err error, param router.Params) {
	reason := "error"
	var d *router.Denial
	if errors.As(err, &d) {
		reason = d.Reason
	}
	s.srv.rec.StatementDenied(reason)
	if d == nil || d.Queue == "" || st == nil {
		return
	}
	for i := range st.Parts {
		for _, c := range st.Parts[i].Calls {
			q, ok := c.Target.Literal, !c.Target.Null
			if c.Target.Param > 0 {
				if param == nil {
					continue
				}
				q, ok = param(c.Target.Param)
			}
			if ok && q == d.Queue {
				s.srv.rec.ObserveCall(Observation{Function: c.Function, Queue: q, Outcome: outcomeDenied})
				return
			}
		}
	}
}

func (s *session) attached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backend.conn != nil
}

// denyQuery answers a denied simple query (or FunctionCall): ErrorResponse
// and ReadyForQuery, through the backend when the client holds one (so the
// transaction block fails as in Postgres), locally otherwise.
func (s *session) denyQuery(er *pgproto3.ErrorResponse) error {
	if !s.attached() {
		return s.writeClient(true, er, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	}
	return s.withConn(kindQuery, "", func(c *backend.Conn) {
		s.deny.queue = append(s.deny.queue, denial{cycle: s.backend.cycle, resp: er})
		c.Frontend().Send(&pgproto3.Query{String: denyMarker})
	})
}

// denyExtended answers a denied Parse or Bind: ErrorResponse, then the
// client's messages are discarded until Sync, as Postgres does.
func (s *session) denyExtended(er *pgproto3.ErrorResponse) error {
	s.skipUntilSync = true
	if !s.attached() {
		return s.writeClient(true, er)
	}
	var conn *backend.Conn
	err := s.withConn(kindExtended, "", func(c *backend.Conn) {
		conn = c
		s.deny.queue = append(s.deny.queue, denial{cycle: s.backend.cycle, resp: er})
		c.Frontend().Send(&pgproto3.Parse{Name: denyMarker, Query: denyMarker})
	})
	if err != nil || conn == nil {
		return err
	}
	return s.flushBackend(conn)
}

// substituteDenial returns the denial a marker's syntax error stands for,
// nil when m is not one. Called by the reader.
func (s *session) substituteDenial(m *pgproto3.ErrorResponse) *pgproto3.ErrorResponse {
	if m.Code != "42601" || !strings.Contains(m.Message, denyMarker) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deny.queue) == 0 || s.deny.queue[0].cycle != s.backend.doneCycles {
		return nil
	}
	er := s.deny.queue[0].resp
	s.deny.queue = s.deny.queue[1:]
	return er
}

// createExtensionNoop answers CREATE EXTENSION IF NOT EXISTS pgmq for a
// grant-limited token as the no-op it is, as Postgres words it.
func createExtensionNoop() []pgproto3.BackendMessage {
	return []pgproto3.BackendMessage{
		&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "42710",
			Message: `extension "pgmq" already exists, skipping`},
		&pgproto3.CommandComplete{CommandTag: []byte("CREATE EXTENSION")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	}
}

func denialHint(d *router.Denial) string {
	if d.Reason == "listing_columns" {
		return "select the columns, e.g. SELECT * FROM pgmq.list_queues()"
	}
	return ""
}
