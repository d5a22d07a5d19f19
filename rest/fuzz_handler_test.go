package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

// rowPools answers every statement with one row that fits every result
// shape (a count and a JSON array), so handler fuzzing reaches the end of
// every path without Postgres.
type rowPools struct{}

func (rowPools) Acquire(ctx context.Context, role, holder string) (Conn, error) {
	return rowConn{}, nil
}

type rowConn struct{}

func (rowConn) Superuser() bool { return false }
func (rowConn) QueryRow(ctx context.Context, sql string, args []*string) ([][]byte, error) {
	return [][]byte{[]byte("1"), []byte(`[{"msg_id":1}]`)}, nil
}
func (rowConn) Release() {}

// FuzzHandler sends arbitrary requests (function name, method, content
// type, body) through the whole REST handler: no panic, no 500, and every
// answer with a body is JSON.
func FuzzHandler(f *testing.F) {
	f.Add("send", true, "application/json", []byte(`{"queue_name":"q","msg":{"a":1}}`))
	f.Add("send_batch", true, "application/json; charset=utf-8", []byte(`{"queue_name":"q","msgs":[{"a":1},2,"x",null]}`))
	f.Add("read", true, "", []byte(`{"queue_name":"q","vt":"30","qty":1}`))
	f.Add("read_with_poll", true, "application/json", []byte(`{"queue_name":"q","vt":30,"qty":1,"max_poll_seconds":0}`))
	f.Add("delete", true, "application/json", []byte(`{"queue_name":"q","msg_ids":[1,2,"3"]}`))
	f.Add("archive", true, "application/json", []byte(`{"queue_name":"q","msg_id":1}`))
	f.Add("metrics", false, "", []byte(""))
	f.Add("list_queues", true, "text/plain", []byte("x"))
	f.Add("create", true, "application/json", []byte(`{"queue_name":"q"} {}`))
	f.Add("nope", true, "application/json", []byte(`[1]`))
	f.Add("send", true, "application/json", []byte(`{"queue_name":"q","msg":{"a":1},"msg":2}`))
	f.Add("pop", true, "application/json", []byte(`{"queue_name":"q\u0000x","qty":-1}`))
	cfg := configs.Default().REST
	cfg.MaxBodyBytes = 64 << 10
	srv, err := New(Options{Config: cfg, Verifier: testVerifier(f), Pools: rowPools{}, ReadyRole: "mq", Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	tok := testenv.Token(f, testSecret, auth.MintOptions{})
	f.Fuzz(func(t *testing.T, fn string, post bool, contentType string, body []byte) {
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		req, err := http.NewRequest(method, "http://mqstack/pgmq/v1/x", bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path = "/pgmq/v1/" + fn
		req.SetPathValue("function", fn)
		req.Header.Set("Authorization", "Bearer "+tok)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q %q: HTTP %d %s", method, fn, body, rec.Code, rec.Body.String())
		}
		// Paths ServeMux cleans ("/pgmq/v1/.") are redirected with its own
		// HTML body.
		if rec.Code/100 != 3 && rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: HTTP %d with a body that is not JSON: %q", method, fn, rec.Code, rec.Body.String())
		}
	})
}
