package rest

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

var errBoom = errors.New("connection reset by peer")

func pgErr(code, msg string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg}
}

// fakePools scripts backend failures.
type fakePools struct {
	acquireErr error
	queryErr   error
}

func (f fakePools) Acquire(ctx context.Context, role, holder string) (Conn, error) {
	if f.acquireErr != nil {
		return nil, f.acquireErr
	}
	return fakeConn{f}, nil
}

type fakeConn struct{ f fakePools }

func (c fakeConn) Superuser() bool { return false }
func (c fakeConn) QueryRow(ctx context.Context, sql string, args []*string) ([][]byte, error) {
	return nil, c.f.queryErr
}
func (c fakeConn) Release() {}

type fakeEnv struct {
	*testEnv
	logs *observer.ObservedLogs
}

// newFakeEnv is a server over scripted pools (no Postgres), whose log is
// observed.
func newFakeEnv(t *testing.T, pools Pools) *fakeEnv {
	core, logs := observer.New(zap.InfoLevel)
	srv, err := New(Options{Config: configs.Default().REST, Verifier: testVerifier(t), Pools: pools,
		ReadyRole: "mq", Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &fakeEnv{testEnv: &testEnv{t: t, srv: srv, ts: ts, token: testenv.Token(t, testSecret, auth.MintOptions{})}, logs: logs}
}

func (e *fakeEnv) logged(errorID string) bool {
	for _, entry := range e.logs.All() {
		if entry.ContextMap()["error_id"] == errorID {
			return true
		}
	}
	return false
}

func expiredToken(t *testing.T) string {
	return testenv.Token(t, testSecret, auth.MintOptions{TTL: time.Minute, Now: time.Now().Add(-time.Hour)})
}
