package proxy

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
	"mqstack/router"
)

// Denials: how a refused statement reaches the client in its place in the
// stream, and how it is counted.

// denyMarker is what the proxy sends the backend in place of a denied
// statement: a syntax error, so the backend does what Postgres does for a
// failing statement (aborts the transaction block, skips to Sync in the
// extended protocol) and its ErrorResponse, in the right place of the
// stream, is replaced by the denial.
const denyMarker = "mqstack_denied"

// denials are the proxy's refusals of statements sent to the backend as
// markers, each waiting for its marker's error (guarded by s.mu), and the
// Bind being checked (client goroutine only).
type denials struct {
	queue cycleQueue[*pgproto3.ErrorResponse]
	// bind is the Bind being authorized, read by param.
	bind bindValues
	// param is s.bindParam as router.Params, made once per session so that
	// checking a Bind allocates nothing.
	param router.Params
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

// denyQuery answers a denied simple query (or FunctionCall): ErrorResponse
// and ReadyForQuery, through the backend when the client holds one (so the
// transaction block fails as in Postgres), locally otherwise.
func (s *session) denyQuery(er *pgproto3.ErrorResponse) error {
	if !s.attached() {
		return s.client.write(true, er, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	}
	return s.withConn(kindQuery, "", func(c *backend.Conn) {
		s.deny.queue.push(s.backend.cycle, er)
		c.Send(&pgproto3.Query{String: denyMarker})
	})
}

// denyExtended answers a denied Parse or Bind: ErrorResponse, then the
// client's messages are discarded until Sync, as Postgres does.
func (s *session) denyExtended(er *pgproto3.ErrorResponse) error {
	s.skipUntilSync = true
	if !s.attached() {
		return s.client.write(true, er)
	}
	var conn *backend.Conn
	err := s.withConn(kindExtended, "", func(c *backend.Conn) {
		conn = c
		s.deny.queue.push(s.backend.cycle, er)
		c.Send(&pgproto3.Parse{Name: denyMarker, Query: denyMarker})
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
	er, _ := s.deny.queue.take(s.backend.doneCycles)
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

// denialHint is the hint shown with a denial, "" for none.
func denialHint(d *router.Denial) string {
	if d.Reason == "listing_columns" {
		return "select the columns, e.g. SELECT * FROM pgmq.list_queues()"
	}
	return ""
}
