package proxy

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/backend"
	"mqstack/internal/notify"
	"mqstack/router"
)

// LISTEN and UNLISTEN never reach a pooled backend: the session keeps its
// channel set, the hub's one listener connection per (backend, database)
// LISTENs on the union of every session's channels (internal/notify), and
// the session's inbox (inbox.go) hands the client what arrives.
//
// As in Postgres, LISTEN and UNLISTEN inside a transaction block take
// effect when it commits. Inside one the backend answers an empty query in
// the statement's place: the answer comes in order with the client's other
// statements, and the backend's transaction status at that point says
// whether the statement runs (T), is refused because the transaction has
// failed (E), or takes effect at once (I, on a pinned session).

// listenChange is one LISTEN or UNLISTEN; channel "*" is UNLISTEN *.
type listenChange struct {
	listen  bool
	channel string
}

func (c listenChange) tag() string {
	if c.listen {
		return "LISTEN"
	}
	return "UNLISTEN"
}

// listenMark is a LISTEN or UNLISTEN, or a SELECT pg_listening_channels()
// (column set), sent to the backend as an empty query.
type listenMark struct {
	change listenChange
	column string
	// own: the client's own empty statement, whose EmptyQueryResponse is
	// relayed (marked so that the ones of a cycle pair up in order).
	own bool
}

// listens is the session's LISTEN state.
type listens struct {
	// channels are those the hub delivers to the session. Changed only by
	// whoever drives the backend state (the client goroutine while no
	// backend is attached, the reader while one is); s.mu guards it.
	channels map[string]struct{}
	// marks wait for their empty query's answer (s.mu).
	marks cycleQueue[listenMark]
	// tx are the changes made inside the current transaction block, and
	// committed says its COMMIT completed (reader only).
	tx        []listenChange
	committed bool
}

// listenTimeout bounds the wait for the listener connection's LISTEN.
const listenTimeout = 10 * time.Second

// maxListenChannels bounds the channels of one client: every client's
// channels are LISTENed on the one shared connection, and a grant on a
// queue pattern (orders_*) would otherwise let a token add channels there
// without end.
const maxListenChannels = 1000

// errTooManyChannels refuses a LISTEN over maxListenChannels.
var errTooManyChannels = &Error{Severity: "ERROR", Code: pgerrcode.ProgramLimitExceeded,
	Message: "too many channels: a client may listen on at most " + strconv.Itoa(maxListenChannels) + " channels through mqstack",
	Hint:    "UNLISTEN channels it no longer needs"}

// errListenMixed refuses a query string that mixes LISTEN or UNLISTEN with
// other statements: the proxy answers LISTEN itself and cannot split the
// string without changing how Postgres would run the rest (one implicit
// transaction).
var errListenMixed = &Error{Severity: "ERROR", Code: pgerrcode.FeatureNotSupported,
	Message: "LISTEN and UNLISTEN must be sent in a query of their own through mqstack",
	Hint:    "send the other statements in a separate query"}

// errListenPipelined refuses several LISTEN/UNLISTEN in one query string
// inside a transaction block.
var errListenPipelined = &Error{Severity: "ERROR", Code: pgerrcode.FeatureNotSupported,
	Message: "inside a transaction block, send one LISTEN or UNLISTEN per query through mqstack"}

// listenChanges are the changes of a query string made only of LISTEN and
// UNLISTEN statements; an error when it has other statements too.
func listenChanges(cls *router.Statement) ([]listenChange, error) {
	out := make([]listenChange, 0, len(cls.Parts))
	for i := range cls.Parts {
		p := &cls.Parts[i]
		switch p.Kind {
		case router.KindListen:
			out = append(out, listenChange{listen: true, channel: p.Channel})
		case router.KindUnlisten:
			out = append(out, listenChange{channel: p.Channel})
		default:
			return nil, errListenMixed
		}
	}
	return out, nil
}

// handleListen answers a simple query of LISTEN and UNLISTEN statements
// (grants already checked).
func (s *session) handleListen(cls *router.Statement) error {
	changes, err := listenChanges(cls)
	if err == nil && len(changes) > 1 && s.attached() {
		err = errListenPipelined
	}
	if err != nil {
		return s.denyQuery(errorResponse(err, "ERROR", s.log))
	}
	if s.attached() {
		return s.sendListenMark(listenMark{change: changes[0]})
	}
	msgs := make([]pgproto3.BackendMessage, 0, len(changes)+1)
	for _, ch := range changes {
		if err := s.applyListen(ch); err != nil {
			return s.client.write(true, errorResponse(err, "ERROR", s.log), &pgproto3.ReadyForQuery{TxStatus: 'I'})
		}
		msgs = append(msgs, &pgproto3.CommandComplete{CommandTag: []byte(ch.tag())})
	}
	return s.client.write(true, append(msgs, &pgproto3.ReadyForQuery{TxStatus: 'I'})...)
}

// sendListenMark sends the backend an empty query in place of a statement
// the proxy answers inside the client's transaction (listenAnswer).
func (s *session) sendListenMark(mk listenMark) error {
	return s.withConn(kindQuery, "", func(c *backend.Conn) {
		s.listen.marks.push(s.backend.cycle, mk)
		c.Send(&pgproto3.Query{String: ""})
	})
}

// listenAnswer is what the client gets for the empty query that stood for
// a LISTEN or UNLISTEN: nil when m answers a statement of the client's own.
// Called by the reader.
func (s *session) listenAnswer(c *backend.Conn) pgproto3.BackendMessage {
	s.mu.Lock()
	mk, ok := s.listen.marks.take(s.backend.doneCycles)
	s.mu.Unlock()
	if !ok || mk.own {
		return nil
	}
	switch {
	case c.TxStatus == 'E': // the status before the empty query ran
		return errAborted()
	case mk.column != "":
		rows := s.listeningRows(mk.column)
		s.client.write(false, rows...)
		return selectTag(len(rows) - 1)
	case c.TxStatus == 'T':
		if mk.change.listen && s.listeningCount()+len(s.listen.tx) >= maxListenChannels {
			return errorResponse(errTooManyChannels, "ERROR", s.log)
		}
		s.listen.tx = append(s.listen.tx, mk.change)
	default:
		if err := s.applyListen(mk.change); err != nil {
			return errorResponse(err, "ERROR", s.log)
		}
	}
	return &pgproto3.CommandComplete{CommandTag: []byte(mk.change.tag())}
}

// markEmptyExecuteLocked marks an Execute of an empty backend statement:
// a LISTEN or UNLISTEN prepared with the extended protocol (listen), or
// the client's own empty statement. s.mu is held.
func (s *session) markEmptyExecuteLocked(listen *listenChange) {
	mk := listenMark{own: listen == nil}
	if listen != nil {
		mk.change = *listen
	}
	s.listen.marks.push(s.backend.cycle, mk)
}

// preparedListen is the change of a LISTEN or UNLISTEN prepared with the
// extended protocol, nil when the text holds several statements (Postgres
// refuses those at Parse, as the backend then does).
func preparedListen(cls *router.Statement) *listenChange {
	changes, err := listenChanges(cls)
	if err != nil || len(changes) != 1 {
		return nil
	}
	return &changes[0]
}

// noteCommit is told of each CommandComplete while changes wait for their
// transaction's end. Reader only.
func (s *session) noteCommit(tag []byte) {
	if len(s.listen.tx) > 0 && string(tag) == "COMMIT" {
		s.listen.committed = true
	}
}

// transactionEnded applies the changes of a transaction block that
// committed while its client is there, and forgets the others. Reader
// only, at a ReadyForQuery 'I'.
func (s *session) transactionEnded(clientThere bool) {
	if len(s.listen.tx) == 0 {
		return
	}
	changes, committed := s.listen.tx, s.listen.committed
	s.listen.tx, s.listen.committed = nil, false
	if !committed || !clientThere {
		return
	}
	for _, ch := range changes {
		if err := s.applyListen(ch); err != nil {
			s.client.write(false, noticeOf(err))
		}
	}
}

// applyListen makes one change take effect: the hub listens for the
// session, or stops.
func (s *session) applyListen(ch listenChange) error {
	hub, key := s.srv.hub, s.notifyKey()
	switch {
	case ch.listen:
		s.mu.Lock()
		_, had := s.listen.channels[ch.channel]
		n := len(s.listen.channels)
		s.mu.Unlock()
		if had {
			return nil
		}
		if n >= maxListenChannels {
			return errTooManyChannels
		}
		ctx, cancel := context.WithTimeout(s.ctx, listenTimeout)
		defer cancel()
		if err := hub.Subscribe(ctx, key, ch.channel, &s.inbox); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				return pe // Postgres refused the LISTEN itself
			}
			return &Error{Severity: "ERROR", Code: pgerrcode.ConnectionFailure,
				Message: "could not listen on channel " + ch.channel + ": " + err.Error()}
		}
		s.setListening(ch.channel, true)
	case ch.channel == "*":
		hub.UnsubscribeAll(key, &s.inbox)
		s.setListening("", false)
	default:
		hub.Unsubscribe(key, ch.channel, &s.inbox)
		s.setListening(ch.channel, false)
	}
	return nil
}

// setListening adds channel to the session's set, or removes it ("" with
// on false: every channel), keeping the count of listening sessions.
func (s *session) setListening(channel string, on bool) {
	s.mu.Lock()
	before := len(s.listen.channels)
	switch {
	case on:
		if s.listen.channels == nil {
			s.listen.channels = map[string]struct{}{}
		}
		s.listen.channels[channel] = struct{}{}
	case channel == "":
		s.listen.channels = nil
	default:
		delete(s.listen.channels, channel)
	}
	after := len(s.listen.channels)
	s.mu.Unlock()
	switch {
	case before == 0 && after > 0:
		s.srv.listeningSessions.Add(1)
	case before > 0 && after == 0:
		s.srv.listeningSessions.Add(-1)
	}
}

// listeningCount is the number of channels the session listens on.
func (s *session) listeningCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listen.channels)
}

// unlistenAll drops every channel (UNLISTEN *, DISCARD ALL, session end).
func (s *session) unlistenAll() {
	if s.listeningCount() > 0 {
		s.applyListen(listenChange{channel: "*"})
	}
}

// notifyKey is the hub's listener for the session's pool.
func (s *session) notifyKey() notify.Key {
	return notify.Key{Backend: s.login.pool.Backend, Database: s.login.pool.Database}
}

// noticeOf turns an error into a WARNING notice, for a change that failed
// after the client's statement had been answered.
func noticeOf(err error) *pgproto3.NoticeResponse {
	return &pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING",
		Code: pgerrcode.Warning, Message: err.Error()}
}

// betweenTransactionsReader runs at a ReadyForQuery 'I' before the reader
// relays it: a committed transaction's listens take effect (unless the
// client has left), and what waits in the inbox goes ahead of the
// ReadyForQuery, as Postgres sends it.
func (s *session) betweenTransactionsReader(gone bool) {
	s.transactionEnded(!gone)
	if !gone {
		s.inbox.beforeReady()
	}
}

// maxNotifiedOn bounds the backends a session is remembered on.
const maxNotifiedOn = 8

// notedNotifier remembers that the session is the latest to send a
// statement that may notify on backend c: a notification from c's pid then
// carries the client's own process id (clientPID). Noted as the statement
// is sent, since the notification may reach the listener before the
// ReadyForQuery reaches the proxy. Client goroutine, s.mu held.
func (s *session) notedNotifier(c *backend.Conn) {
	if s.srv.listeningSessions.Load() == 0 {
		return
	}
	pid := c.PID()
	if v, ok := s.srv.notifiers.Load(pid); ok && v.(*session) == s {
		return
	}
	s.srv.notifiers.Store(pid, s)
	if slices.Contains(s.notifiedOn, pid) {
		return
	}
	if len(s.notifiedOn) == maxNotifiedOn {
		s.srv.notifiers.CompareAndDelete(s.notifiedOn[0], s)
		s.notifiedOn = s.notifiedOn[1:]
	}
	s.notifiedOn = append(s.notifiedOn, pid)
}

// clientPID is the process id a client sees on a notification sent by
// backend pid: its own (from its BackendKeyData) when the session was the
// latest to send a statement that may notify on that backend, else the
// backend's. Only another session's notifying statement on the same
// backend, sent in the moment between the notification's commit and its
// arrival at the listener, can mislead it.
func (s *session) clientPID(pid uint32) uint32 {
	if v, ok := s.srv.notifiers.Load(pid); ok && v.(*session) == s {
		return s.login.key.pid
	}
	return pid
}

// endListening drops the session's channels and what waits for it, once its
// last reader has ended.
func (s *session) endListening() {
	s.unlistenAll()
	s.inbox.close()
	for _, pid := range s.notifiedOn {
		s.srv.notifiers.CompareAndDelete(pid, s)
	}
}

// errListeningForm refuses pg_listening_channels() in any form but a
// SELECT of it alone: the backends do not listen for the client, so only
// the proxy can answer, and it answers that form (simple or prepared).
var errListeningForm = &Error{Severity: "ERROR", Code: pgerrcode.FeatureNotSupported,
	Message: "through mqstack, pg_listening_channels() is answered only as SELECT pg_listening_channels() alone",
	Hint:    "select it alone (optionally with a column alias) and filter its rows in the client"}

// handleListeningChannels answers SELECT pg_listening_channels() from the
// session's channels: at once between transactions, or in its place in
// the stream inside one (an empty query stands for it, as for LISTEN).
func (s *session) handleListeningChannels(cls *router.Statement) error {
	p := single(cls)
	if p == nil || p.Kind != router.KindListeningChannels {
		return s.denyQuery(errorResponse(errListeningForm, "ERROR", s.log))
	}
	if s.attached() {
		return s.sendListenMark(listenMark{column: p.Name})
	}
	rows := s.listeningRows(p.Name)
	return s.client.write(true, append(rows, selectTag(len(rows)-1), &pgproto3.ReadyForQuery{TxStatus: 'I'})...)
}

// selectTag completes a SELECT of n rows.
func selectTag(n int) *pgproto3.CommandComplete {
	return &pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.Itoa(n))}
}

// listeningRows are the row description and rows of pg_listening_channels().
func (s *session) listeningRows(column string) []pgproto3.BackendMessage {
	s.mu.Lock()
	channels := make([]string, 0, len(s.listen.channels))
	for ch := range s.listen.channels {
		channels = append(channels, ch)
	}
	s.mu.Unlock()
	slices.Sort(channels)
	msgs := []pgproto3.BackendMessage{&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{
		Name: []byte(column), DataTypeOID: oidText, DataTypeSize: -1, TypeModifier: -1}}}}
	for _, ch := range channels {
		msgs = append(msgs, &pgproto3.DataRow{Values: [][]byte{[]byte(ch)}})
	}
	return msgs
}

// prepareListening makes a prepared SELECT pg_listening_channels() a query
// of no rows in its shape on the backends (so Describe answers as Postgres
// would), whose rows the proxy adds at Execute; other uses of the function
// are refused.
func (s *session) prepareListening(st *stmt) error {
	p := single(st.class)
	if p == nil || p.Kind != router.KindListeningChannels {
		return errListeningForm
	}
	st.listening = p.Name
	st.query = "SELECT NULL::text AS " + pgx.Identifier{p.Name}.Sanitize() + " WHERE false"
	return nil
}

// listeningCompletion writes the rows of a prepared pg_listening_channels()
// and returns its CommandComplete. Reader only.
func (s *session) listeningCompletion(column string) *pgproto3.CommandComplete {
	rows := s.listeningRows(column)[1:] // the backend sent the RowDescription
	s.client.write(false, rows...)
	return selectTag(len(rows))
}

// errAborted is Postgres' answer to a statement in a failed transaction.
func errAborted() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: pgerrcode.InFailedSQLTransaction,
		Message: "current transaction is aborted, commands ignored until end of transaction block"}
}
