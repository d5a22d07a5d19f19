package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/configs"
)

// backendFreeWithin requires the pool's only backend to serve another
// client within d: a session that left must not hold it.
func backendFreeWithin(t *testing.T, h *harness, d time.Duration) {
	t.Helper()
	other := h.connect(t)
	defer other.Close(context.Background())
	if _, err := other.Exec(ctxT(t, d), "SELECT 1"); err != nil {
		t.Fatalf("the backend was not given back within %v: %v", d, err)
	}
}

// A client that starts COPY FROM STDIN and leaves before the backend
// answered CopyInResponse: the proxy ends the COPY (a Sync alone is ignored
// in copy mode) and gives the backend back at once.
func TestCopyInClientGoneBeforeResponse(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 1 })
	h.testSchema(t)
	d := h.direct(t)
	if _, err := d.Exec(context.Background(), "CREATE TABLE IF NOT EXISTS mq_test.copy_gone (v text); ALTER TABLE mq_test.copy_gone OWNER TO mq"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		fe, closeFn := h.rawConn(t)
		fe.Send(&pgproto3.Query{String: "COPY mq_test.copy_gone FROM STDIN"})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		closeFn()
		backendFreeWithin(t, h, 4*time.Second)
	}
}

// COPY FROM STDIN in the extended protocol is refused at Parse: in copy
// mode the backend ignores the Sync sent with the Execute, which would leave
// the proxy waiting for a ReadyForQuery that never comes. The backend is
// given back and the session goes on.
func TestCopyInExtendedProtocolRefused(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) { p.Size = 1 })
	h.testSchema(t)
	d := h.direct(t)
	if _, err := d.Exec(context.Background(), "CREATE TABLE IF NOT EXISTS mq_test.copy_ext (v text); ALTER TABLE mq_test.copy_ext OWNER TO mq"); err != nil {
		t.Fatal(err)
	}
	fe, closeFn := h.rawConn(t)
	defer closeFn()
	fe.Send(&pgproto3.Parse{Query: "COPY mq_test.copy_ext FROM STDIN"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	er := expectError(t, fe)
	if er.Code != "0A000" || !strings.Contains(er.Message, "extended query protocol") {
		t.Fatalf("got %s %q, want 0A000 naming the extended query protocol", er.Code, er.Message)
	}
	expect[*pgproto3.ReadyForQuery](t, fe)
	backendFreeWithin(t, h, 4*time.Second)
	// COPY as a simple Query works, and the backend is given back after it.
	fe.Send(&pgproto3.Query{String: "COPY mq_test.copy_ext FROM STDIN"})
	fe.Flush()
	expect[*pgproto3.CopyInResponse](t, fe)
	fe.Send(&pgproto3.CopyData{Data: []byte("a\nb\n")})
	fe.Send(&pgproto3.CopyDone{})
	fe.Flush()
	cc := expect[*pgproto3.CommandComplete](t, fe)
	if string(cc.CommandTag) != "COPY 2" {
		t.Fatalf("tag %q, want COPY 2", cc.CommandTag)
	}
	expect[*pgproto3.ReadyForQuery](t, fe)
	backendFreeWithin(t, h, 4*time.Second)
}

// expectError reads messages until an ErrorResponse arrives.
func expectError(t testing.TB, fe *pgproto3.Frontend) *pgproto3.ErrorResponse {
	t.Helper()
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			return e
		}
	}
}
