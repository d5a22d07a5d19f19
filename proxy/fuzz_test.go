package proxy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/goleak"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// Live fuzz targets: the bytes go to a real proxy session in front of the
// test cluster. A panic in the session kills the test binary; a session
// that does not end within a few seconds of its client going away, or a
// goroutine left behind, fails the input.

// fuzzLive is a proxy for one fuzz target, with the goroutines it runs
// between inputs.
type fuzzLive struct {
	h    *harness
	base goleak.Option
}

func newFuzzLive(f *testing.F) *fuzzLive {
	h := newHarness(f, nil)
	l := &fuzzLive{h: h}
	// One login makes the pool and its background goroutines first.
	c := h.connect(f)
	c.Close(context.Background())
	testenv.WaitFor(f, 10*time.Second, "the login's session to end", func() bool { return h.srv.Clients() == 0 })
	l.base = goleak.IgnoreCurrent()
	return l
}

// settle waits for the proxy to be back to the goroutines it had before
// the input.
func (l *fuzzLive) settle(t *testing.T) {
	// A session whose client left mid-cycle may wait out the proxy's
	// cleanupReadTimeout (after a cancel of up to 5s) before its backend is
	// given up: bounded, so allowed (a Query after a failed Parse without
	// Sync is ignored by Postgres and never answered).
	deadline := time.Now().Add(2*cleanupReadTimeout + 5*time.Second)
	for {
		// The fuzzing engine's own signal watcher starts after setup.
		err := goleak.Find(l.base, goleak.IgnoreAnyFunction("os/signal.NotifyContext.func1"))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutine leak: %v", err)
		}
	}
}

// dial opens a raw connection to the proxy.
func (l *fuzzLive) dial(t *testing.T) net.Conn {
	nc, err := net.Dial("tcp", l.h.addr)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// login speaks the startup and password exchange and returns at
// ReadyForQuery.
func (l *fuzzLive) login(t *testing.T, nc net.Conn) {
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	defer nc.SetDeadline(time.Time{})
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "mq", "database": "postgres"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.AuthenticationCleartextPassword:
			fe.Send(&pgproto3.PasswordMessage{Password: testenv.Token(t, testSecret, auth.MintOptions{})})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
		case *pgproto3.ErrorResponse:
			t.Fatalf("login refused: %s %s", m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			return
		}
	}
}

// finish closes the client's writing side and requires the proxy to end
// the session promptly, then waits for its goroutines.
func (l *fuzzLive) finish(t *testing.T, nc net.Conn) []byte {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	// 20s: a session left mid-cycle may wait out the proxy's cancel and
	// cleanupReadTimeout before it closes (see settle).
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(nc)
	nc.Close()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the proxy did not end the session within 20s of the client leaving")
	}
	l.settle(t)
	return got
}

// frontendMsgs encodes frontend messages.
func frontendMsgs(msgs ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			panic(err)
		}
	}
	return b
}

// FuzzSession sends arbitrary bytes as the messages of a logged-in client:
// every frontend message the proxy parses after login (Query, Parse, Bind,
// Describe, Execute, Close, Sync, Flush, FunctionCall, CopyData/Done/Fail,
// Terminate) and whatever else the fuzzer makes.
func FuzzSession(f *testing.F) {
	f.Add(frontendMsgs(&pgproto3.Query{String: "SELECT 1"}))
	f.Add(frontendMsgs(&pgproto3.Query{String: "BEGIN; SELECT pgmq.send('fuzz_q', '{}'); ROLLBACK"}))
	f.Add(frontendMsgs(&pgproto3.Parse{Name: "s1", Query: "SELECT $1::int"}, &pgproto3.Describe{ObjectType: 'S', Name: "s1"},
		&pgproto3.Sync{}, &pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("7")}},
		&pgproto3.Execute{}, &pgproto3.Close{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{}))
	f.Add(frontendMsgs(&pgproto3.Parse{Query: "SELECT $1::text"}, &pgproto3.Bind{Parameters: [][]byte{nil},
		ResultFormatCodes: []int16{1}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Flush{},
		&pgproto3.Sync{}))
	f.Add(frontendMsgs(&pgproto3.Query{String: "BEGIN"}, &pgproto3.Parse{Name: "x", Query: "SELECT generate_series(1,5)"},
		&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "x"}, &pgproto3.Execute{Portal: "p", MaxRows: 2},
		&pgproto3.Execute{Portal: "p", MaxRows: 2}, &pgproto3.Close{ObjectType: 'P', Name: "p"}, &pgproto3.Sync{},
		&pgproto3.Query{String: "COMMIT"}))
	f.Add(frontendMsgs(&pgproto3.Query{String: "CREATE TEMP TABLE fz (v text); COPY fz FROM STDIN"},
		&pgproto3.CopyData{Data: []byte("a\nb\n")}, &pgproto3.CopyDone{}, &pgproto3.Query{String: "COPY fz FROM STDIN"},
		&pgproto3.CopyFail{Message: "no"}))
	f.Add(frontendMsgs(&pgproto3.FunctionCall{Function: 1598, ArgFormatCodes: []uint16{}, Arguments: nil}, &pgproto3.Sync{}))
	f.Add(frontendMsgs(&pgproto3.Query{String: "LISTEN fz; SET work_mem = '8MB'; DEALLOCATE ALL; DISCARD ALL"}, &pgproto3.Terminate{}))
	f.Add(frontendMsgs(&pgproto3.Query{String: "SELECT pg_sleep(0.01)"}, &pgproto3.Parse{Name: "e", Query: "SELEC oops"},
		&pgproto3.Bind{PreparedStatement: "e"}, &pgproto3.Execute{}, &pgproto3.Sync{}))
	f.Add([]byte("Q\xff\xff\xff\xffSELECT 1\x00"))
	f.Add([]byte("P\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x04"))
	f.Add([]byte("B\x00\x00\x00\x0e\x00\x00\x00\x00\xff\xff\x00\x00\x00\x00S\x00\x00\x00\x04"))
	f.Add([]byte("Z\x00\x00\x00\x04"))
	l := newFuzzLive(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		nc := l.dial(t)
		l.login(t, nc)
		nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		nc.Write(data)
		// A final Sync and a probe: any complete answer is fine.
		nc.Write(frontendMsgs(&pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 1"}))
		l.finish(t, nc)
	})
}

// signHS256 signs claims (JSON text) with the harness secret.
func signHS256(claims []byte) string {
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

// FuzzPassword sends an arbitrary password message after a startup
// message. With signed set, data are the claims of a token correctly signed
// with the proxy's key ("$NOW" and "$EXP" are replaced with the time now
// and an hour on), so the fuzzer reaches claim and grant parsing; otherwise
// data is the password itself.
func FuzzPassword(f *testing.F) {
	f.Add(true, []byte(`{"role":"mq","iat":$NOW,"exp":$EXP}`))
	f.Add(true, []byte(`{"role":"mq","exp":$EXP,"mq":{"grants":[{"queues":["q*"],"ops":["send","read"]}]}}`))
	f.Add(true, []byte(`{"role":"mq","exp":$EXP,"scope":"mq.send:orders_* mq.read:x"}`))
	f.Add(true, []byte(`{"role":"postgres","exp":$EXP}`))
	f.Add(true, []byte(`{"role":"nobody","exp":$EXP}`))
	f.Add(true, []byte(`{"role":"mq","exp":1}`))
	f.Add(true, []byte(`{"role":"mq","exp":$EXP,"nbf":99999999999}`))
	f.Add(true, []byte(`{"exp":$EXP}`))
	f.Add(false, []byte("e30.e30."))
	f.Add(false, []byte("eyJhbGciOiJub25lIn0.eyJyb2xlIjoibXEifQ."))
	f.Add(false, []byte(""))
	f.Add(false, bytes.Repeat([]byte("a"), 9000))
	l := newFuzzLive(f)
	f.Fuzz(func(t *testing.T, signed bool, data []byte) {
		pw := string(data)
		if signed {
			now := time.Now().Unix()
			claims := strings.ReplaceAll(strings.ReplaceAll(pw, "$NOW", strconv.FormatInt(now, 10)), "$EXP", strconv.FormatInt(now+3600, 10))
			pw = signHS256([]byte(claims))
		}
		nc := l.dial(t)
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		startup := frontendMsgs(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": "mq", "database": "postgres"}})
		nc.Write(startup)
		// The password message by hand: the fuzzer may put NULs in it.
		msg := []byte{'p'}
		msg = binary.BigEndian.AppendUint32(msg, uint32(4+len(pw)+1))
		msg = append(append(msg, pw...), 0)
		nc.Write(msg)
		nc.Write(frontendMsgs(&pgproto3.Query{String: "SELECT current_user"}, &pgproto3.Terminate{}))
		got := l.finish(t, nc)
		if bytes.Contains(got, []byte{'Z', 0, 0, 0, 5}) && !signed {
			t.Fatalf("logged in with an unsigned password %q", fmt.Sprintf("%.100s", pw))
		}
	})
}
