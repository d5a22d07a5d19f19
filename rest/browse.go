package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"mqstack/auth"
)

// Browsing bounds: a page holds at most maxBrowseLimit messages, each shown
// by a preview of previewChars characters; one message's full body and
// headers are shown up to maxShownBytes each.
const (
	defaultBrowseLimit = 50
	maxBrowseLimit     = 200
	previewChars       = 300
	maxShownBytes      = 1 << 20
	maxQueueNameBytes  = 47 // pgmq.validate_queue_name
)

// browseStates are the message filters: which table and which rows. The
// clock is the wall clock read() compares vt with, so "visible" is what a
// read would return now; "delayed" was never read, "in flight" was.
var browseStates = map[string]struct{ prefix, where string }{
	"visible":   {"q", "t.vt <= clock_timestamp()"},
	"in_flight": {"q", "t.vt > clock_timestamp() AND t.read_ct > 0"},
	"delayed":   {"q", "t.vt > clock_timestamp() AND t.read_ct = 0"},
	"archived":  {"a", "true"},
}

// queueTable is the quoted table of queue (prefix "q" or "a") as pgmq names
// it (pgmq.format_table_name: lower-cased, no $ ; -- or quote). Names are
// ASCII here: Go's and Postgres' case folding agree only there (the router
// holds limited tokens to the same rule).
func queueTable(prefix, queue string) (string, error) {
	if queue == "" || len(queue) > maxQueueNameBytes {
		return "", errBadValue("22023", fmt.Sprintf("queue name %q: 1 to %d characters", safeName(queue), maxQueueNameBytes))
	}
	if strings.ContainsAny(queue, "$;'") || strings.Contains(queue, "--") {
		return "", errBadValue("22023", fmt.Sprintf("queue name %q contains invalid characters: $, ;, --, or '", safeName(queue)))
	}
	var b strings.Builder
	b.WriteString(`pgmq."` + prefix + "_")
	for i := 0; i < len(queue); i++ {
		c := queue[i]
		switch {
		case c < 0x20 || c >= 0x7f:
			return "", errBadValue("22023", fmt.Sprintf("queue name %q: only printable ASCII queue names can be browsed", safeName(queue)))
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '"':
			b.WriteByte('"') // doubled inside a quoted identifier
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String(), nil
}

// browseArgs are a browse request's checked query parameters.
type browseArgs struct {
	state string
	after int64
	limit int
}

func parseBrowseArgs(r *http.Request) (browseArgs, error) {
	q := r.URL.Query()
	a := browseArgs{state: q.Get("state"), limit: defaultBrowseLimit}
	if a.state == "" {
		a.state = "visible"
	}
	if _, ok := browseStates[a.state]; !ok {
		return a, errBadValue("22023", fmt.Sprintf("state %q: want visible, in_flight, delayed or archived", safeName(a.state)))
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxBrowseLimit {
			return a, errBadValue("22023", fmt.Sprintf("limit %q: want 1 to %d", safeName(v), maxBrowseLimit))
		}
		a.limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return a, errBadValue("22023", fmt.Sprintf("after %q: want a message id (0 or more)", safeName(v)))
		}
		a.after = n
	}
	return a, nil
}

// browse answers GET /mqstack/v1/queues/{queue}/messages: one page of the
// queue's messages in one state, oldest id first. It selects from the
// queue's table directly: no pgmq function runs, so no visibility timeout
// moves and no read_ct grows.
func (s *Server) browse(r *http.Request, id auth.Identity) ([]byte, error) {
	queue := r.PathValue("queue")
	a, err := parseBrowseArgs(r)
	if err != nil {
		return nil, err
	}
	st := browseStates[a.state]
	table, err := queueTable(st.prefix, queue)
	if err != nil {
		return nil, err
	}
	if !id.Grants.Allows(auth.OpRead, queue) {
		return nil, errGrant(fmt.Sprintf("browsing %q needs the \"read\" grant", queue))
	}
	archived := ""
	if st.prefix == "a" {
		archived = ", t.archived_at"
	}
	// One more row than asked says whether a next page exists.
	sql := fmt.Sprintf(`SELECT coalesce(json_agg(m ORDER BY m.msg_id), '[]')::text FROM (
  SELECT t.msg_id, t.read_ct, t.enqueued_at, t.last_read_at, t.vt%s,
         octet_length(t.message::text) AS message_bytes, left(t.message::text, %d) AS preview,
         t.headers IS NOT NULL AS has_headers
    FROM %s t WHERE t.msg_id > $1::bigint AND %s ORDER BY t.msg_id LIMIT $2::int) m`,
		archived, previewChars, table, st.where)
	after, limit := strconv.FormatInt(a.after, 10), strconv.Itoa(a.limit+1)
	body, err := s.queryJSON(r.Context(), id, sql, []*string{&after, &limit})
	if err != nil {
		return nil, noQueue(err, queue)
	}
	return browsePage(queue, a, body)
}

// browsePage trims the extra row and says where the next page starts.
func browsePage(queue string, a browseArgs, body []byte) ([]byte, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("browse: postgres sent invalid JSON: %w", err)
	}
	var next *int64
	if len(rows) > a.limit {
		rows = rows[:a.limit]
		var last struct {
			MsgID int64 `json:"msg_id"`
		}
		if err := json.Unmarshal(rows[len(rows)-1], &last); err != nil {
			return nil, fmt.Errorf("browse: row without msg_id: %w", err)
		}
		next = &last.MsgID
	}
	return json.Marshal(struct {
		Queue     string            `json:"queue"`
		State     string            `json:"state"`
		Limit     int               `json:"limit"`
		After     int64             `json:"after"`
		NextAfter *int64            `json:"next_after"`
		Messages  []json.RawMessage `json:"messages"`
	}{queue, a.state, a.limit, a.after, next, append([]json.RawMessage{}, rows...)})
}

// message answers GET /mqstack/v1/queues/{queue}/messages/{msg_id}: one
// message's body and headers (each up to maxShownBytes), from the archive
// with ?state=archived. A plain SELECT, as browse.
func (s *Server) message(r *http.Request, id auth.Identity) ([]byte, error) {
	queue := r.PathValue("queue")
	prefix := "q"
	if r.URL.Query().Get("state") == "archived" {
		prefix = "a"
	}
	table, err := queueTable(prefix, queue)
	if err != nil {
		return nil, err
	}
	msgID, err := strconv.ParseInt(r.PathValue("msg_id"), 10, 64)
	if err != nil || msgID < 1 {
		return nil, errBadValue("22023", fmt.Sprintf("message id %q: want a positive integer", safeName(r.PathValue("msg_id"))))
	}
	if !id.Grants.Allows(auth.OpRead, queue) {
		return nil, errGrant(fmt.Sprintf("browsing %q needs the \"read\" grant", queue))
	}
	archived := ""
	if prefix == "a" {
		archived = ", 'archived_at', t.archived_at"
	}
	sql := fmt.Sprintf(`SELECT json_build_object('msg_id', t.msg_id, 'read_ct', t.read_ct, 'enqueued_at', t.enqueued_at,
  'last_read_at', t.last_read_at, 'vt', t.vt%s,
  'message_bytes', octet_length(t.message::text), 'headers_bytes', octet_length(t.headers::text),
  'message', CASE WHEN octet_length(t.message::text) <= $2::int THEN t.message END,
  'headers', CASE WHEN octet_length(t.headers::text) <= $2::int THEN t.headers END)::text
  FROM %s t WHERE t.msg_id = $1::bigint`, archived, table)
	idText, max := strconv.FormatInt(msgID, 10), strconv.Itoa(maxShownBytes)
	body, err := s.queryJSON(r.Context(), id, sql, []*string{&idText, &max})
	if err != nil {
		return nil, noQueue(err, queue)
	}
	if body == nil {
		return nil, &apiError{Status: http.StatusNotFound, Code: "PGRST116",
			Message: fmt.Sprintf("no message %d in queue %q (deleted, archived or never sent)", msgID, queue)}
	}
	var out bytes.Buffer
	if err := json.Compact(&out, body); err != nil {
		return nil, fmt.Errorf("message: postgres sent invalid JSON: %w", err)
	}
	return out.Bytes(), nil
}

// noQueue words a missing queue table as a missing queue.
func noQueue(err error, queue string) error {
	if e := toAPIError(err); e.Code == "42P01" {
		return &apiError{Status: http.StatusNotFound, Code: e.Code, Message: fmt.Sprintf("no queue named %q", queue)}
	}
	return err
}
