package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/router"
)

// result is the answer of one execution of a call's statement.
type result struct {
	body []byte // JSON, compact; nil for void
	rows int    // messages (or rows) it concerns, for metrics
}

// serveCall answers POST /pgmq/v1/<function> (and GET for read-only ones).
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := setRequestID(w, r)
	name := r.PathValue("function")
	f := functions[name]
	obs := Observation{}
	if f != nil {
		obs.Function = f.name
	}
	id, res, err := s.handleCall(r, f, name, &obs)
	obs.Latency = time.Since(start)
	if err != nil {
		e := toAPIError(err)
		obs.Status, obs.Outcome = e.Status, outcomeOf(e.Status)
		obs.Reason = refusalReason(err, obs.Outcome)
		s.logRefusal(r, reqID, id, e)
		s.fail(w, r, reqID, e)
	} else {
		obs.Status, obs.Outcome, obs.Rows = http.StatusOK, "ok", res.rows
		if res.body == nil {
			obs.Status = http.StatusNoContent
			w.WriteHeader(http.StatusNoContent)
		} else {
			writeBody(w, http.StatusOK, res.body)
		}
	}
	if f != nil {
		s.metrics.ObserveCall(obs)
	}
	if ce := s.log.Check(zap.DebugLevel, "rest: call"); ce != nil {
		ce.Write(zap.String("function", obs.Function), zap.String("queue", obs.Queue),
			zap.Int("status", obs.Status), zap.Int("rows", obs.Rows), zap.Duration("latency", obs.Latency),
			zap.String("request_id", reqID), zap.String("sub", id.Subject))
	}
}

func (s *Server) logRefusal(r *http.Request, reqID string, id auth.Identity, e *apiError) {
	if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden {
		return
	}
	s.log.Info("rest: refused", zap.Int("status", e.Status), zap.String("code", e.Code),
		zap.String("reason", e.Message), zap.String("path", r.URL.Path), zap.String("request_id", reqID),
		zap.String("sub", id.Subject), zap.String("jti", id.JTI))
}

// refusalReason is the bounded reason of a 401 or 403.
func refusalReason(err error, outcome string) string {
	var d *router.Denial
	switch {
	case outcome == "denied" && errors.As(err, &d):
		return d.Reason
	case outcome == "denied":
		return "role_refused"
	case outcome == "unauthorized" && auth.IsTokenError(err):
		return string(auth.ReasonOf(err))
	case outcome == "unauthorized":
		return "missing_token"
	}
	return ""
}

// outcomeOf is the metric label of a status.
func outcomeOf(status int) string {
	switch {
	case status < 300:
		return "ok"
	case status == http.StatusUnauthorized:
		return "unauthorized"
	case status == http.StatusForbidden:
		return "denied"
	case status == http.StatusNotFound:
		return "not_found"
	case status == statusClientClosed:
		return "canceled"
	case status < 500:
		return "client_error"
	case status == http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "error"
}

func (s *Server) handleCall(r *http.Request, f *function, name string, obs *Observation) (auth.Identity, result, error) {
	id, err := s.authenticate(r)
	if err != nil {
		return id, result{}, err
	}
	if r.Method != http.MethodPost && !(r.Method == http.MethodGet && f != nil && f.get) {
		if f == nil {
			return id, result{}, errNoFunction(safeName(name), nil, nil)
		}
		allow := "POST"
		if f.get {
			allow = "GET, POST"
		}
		return id, result{}, &apiError{Status: http.StatusMethodNotAllowed, Code: "PGRST117",
			Message: fmt.Sprintf("method %s not allowed for pgmq.%s (allowed: %s)", r.Method, f.name, allow)}
	}
	args, err := s.readArgs(r)
	if err != nil {
		return id, result{}, err
	}
	if f == nil {
		keys := make(map[string]bool, len(args))
		for k := range args {
			keys[safeName(k)] = true
		}
		return id, result{}, errNoFunction(safeName(name), nil, keys)
	}
	c, err := buildCall(f, args)
	if err != nil {
		return id, result{}, err
	}
	st := s.router.Classify(c.sql)
	calls := st.Calls()
	if len(calls) != 1 || st.Uncertain() != "" {
		return id, result{}, fmt.Errorf("BUG: router classifies %q as %d calls (uncertain: %q)", c.sql, len(calls), st.Uncertain())
	}
	target := calls[0].Target
	if op := calls[0].Op; op != 0 {
		obs.Op = op.String()
	}
	if target.Param > 0 && target.Param <= len(c.args) && c.args[target.Param-1] != nil {
		obs.Queue = *c.args[target.Param-1]
	} else if target.Literal != "" {
		obs.Queue = target.Literal
	}
	if m := calls[0].Message; m.Param > 0 && m.Param <= len(c.args) && c.args[m.Param-1] != nil {
		obs.MessageSize = len(*c.args[m.Param-1])
	}
	dec, err := router.Authorize(id, st, c.param)
	if err != nil {
		return id, result{}, err
	}
	var res result
	if f.poll != "" {
		res, err = s.poll(r.Context(), id, c, obs.Queue)
	} else {
		res, err = s.execute(r.Context(), id, c)
	}
	if err != nil {
		return id, result{}, err
	}
	if dec.FilterListing {
		if res, err = filterListing(res, id.Grants); err != nil {
			return id, result{}, err
		}
	}
	s.afterSend(f.name, obs.Queue, res)
	return id, res, nil
}

// param resolves $n for router.Authorize.
func (c *call) param(n int) (string, bool) {
	if n < 1 || n > len(c.args) || c.args[n-1] == nil {
		return "", false
	}
	return *c.args[n-1], true
}

// authenticate verifies the bearer token (scheme case-insensitive).
func (s *Server) authenticate(r *http.Request) (auth.Identity, error) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "bearer") || token == "" {
		return auth.Identity{}, errNoToken()
	}
	return s.verifier.Verify(token)
}

// readArgs reads the named arguments: the JSON object of the body, or for
// GET the query parameters (as strings, which Postgres casts).
func (s *Server) readArgs(r *http.Request) (map[string]json.RawMessage, error) {
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		args := make(map[string]json.RawMessage, len(q))
		for k, v := range q {
			raw, _ := json.Marshal(v[0])
			args[k] = raw
		}
		return args, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		cs := strings.ToLower(params["charset"])
		if err != nil || mt != "application/json" || (cs != "" && cs != "utf-8" && cs != "utf8") {
			return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: "PGRST107",
				Message: fmt.Sprintf("Content-Type %q is not supported: send application/json (or no Content-Type)", safeName(ct))}
		}
	}
	max := int64(s.cfg.MaxBodyBytes)
	if r.ContentLength > max {
		return nil, errTooLarge(max)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bufPool.Put(buf) }()
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, max+1)); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "PGRST102", Message: "cannot read the request body: " + err.Error()}
	}
	if int64(buf.Len()) > max {
		return nil, errTooLarge(max)
	}
	body := bytes.TrimSpace(buf.Bytes())
	if len(body) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if body[0] != '{' {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "PGRST102",
			Message: "the body must be a JSON object of named arguments"}
	}
	var args map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&args); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "PGRST102", Message: "invalid JSON in the body: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "PGRST102", Message: "invalid JSON in the body: data after the object"}
	}
	// The raw values alias buf, which is reused: copy them.
	for k, v := range args {
		args[k] = append(json.RawMessage(nil), v...)
	}
	return args, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func errTooLarge(max int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: pgerrcode.ProgramLimitExceeded,
		Message: fmt.Sprintf("the request body is larger than rest.max_body_bytes (%d bytes)", max)}
}

// safeName keeps a client-supplied name printable and short for messages.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 100 {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// execute runs the call's statement once on a backend connection of the
// token's role.
func (s *Server) execute(ctx context.Context, id auth.Identity, c *call) (result, error) {
	row, err := s.queryRow(ctx, id, c.sql, c.args)
	if err != nil {
		return result{}, err
	}
	return shape(c.sig.result, row)
}

// queryRow runs one statement on a backend connection of the token's role,
// after the superuser rule, and returns its first row.
func (s *Server) queryRow(ctx context.Context, id auth.Identity, sql string, args []*string) ([][]byte, error) {
	conn, err := s.checkout(ctx, id)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	row, err := conn.QueryRow(ctx, sql, args)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) || isPgError(err) || ctx.Err() != nil {
			return nil, err
		}
		return nil, &errUnavailable{err}
	}
	return row, nil
}

// checkout takes a connection of the token's role from the pools REST
// calls use, held to the superuser rule.
func (s *Server) checkout(ctx context.Context, id auth.Identity) (Conn, error) {
	conn, err := s.pools.Acquire(ctx, id.Role, id.Holder())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &errUnavailable{err}
	}
	if err := s.verifier.CheckRole(id.Role, conn.Superuser()); err != nil {
		conn.Release()
		return nil, err
	}
	return conn, nil
}

// shape turns the statement's row into the response body.
func shape(kind resultKind, row [][]byte) (result, error) {
	switch kind {
	case resultVoid:
		return result{}, nil
	case resultScalar, resultRow:
		if len(row) < 1 || row[0] == nil {
			return result{body: []byte("null")}, nil
		}
		res := result{body: row[0], rows: 1}
		if kind == resultScalar {
			res.rows = scalarRows(row[0])
		}
		return res, nil
	}
	if len(row) < 2 || row[1] == nil {
		return result{}, errors.New("BUG: a set result without its JSON")
	}
	n, _ := strconv.Atoi(string(row[0]))
	var out bytes.Buffer
	out.Grow(len(row[1]))
	if err := json.Compact(&out, row[1]); err != nil {
		return result{}, fmt.Errorf("postgres sent invalid JSON: %w", err)
	}
	return result{body: out.Bytes(), rows: n}, nil
}

// scalarRows is the message count of a scalar: true is 1, a number itself.
func scalarRows(v []byte) int {
	switch string(v) {
	case "true":
		return 1
	case "false", "null":
		return 0
	}
	n, _ := strconv.Atoi(string(v))
	return n
}

// filterListing keeps the rows of queues the token may list.
func filterListing(res result, g *auth.Grants) (result, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal(res.body, &rows); err != nil {
		return result{}, fmt.Errorf("listing is not a JSON array: %w", err)
	}
	kept := rows[:0]
	for _, row := range rows {
		var q struct {
			QueueName string `json:"queue_name"`
		}
		if err := json.Unmarshal(row, &q); err != nil {
			return result{}, fmt.Errorf("listing row: %w", err)
		}
		if g.CanList(q.QueueName) {
			kept = append(kept, row)
		}
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, row := range kept {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(row)
	}
	b.WriteByte(']')
	return result{body: b.Bytes(), rows: len(kept)}, nil
}

// afterSend wakes the long polls a successful send may satisfy.
func (s *Server) afterSend(fn, queue string, res result) {
	if res.rows == 0 || !s.waiters.any() {
		return
	}
	switch fn {
	case "send", "send_batch":
		s.waiters.notify(queue)
	case "send_topic":
		// The count does not say which queues: wake every waiter; those
		// not concerned read nothing and wait again.
		s.waiters.notifyAll()
	case "send_batch_topic":
		var rows []struct {
			QueueName string `json:"queue_name"`
		}
		if json.Unmarshal(res.body, &rows) != nil {
			s.waiters.notifyAll()
			return
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.QueueName] {
				seen[r.QueueName] = true
				s.waiters.notify(r.QueueName)
			}
		}
	}
}
