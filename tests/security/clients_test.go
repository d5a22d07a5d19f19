package security

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// rawConn is a client that speaks the protocol by hand: any startup
// parameter, any message.
type rawConn struct {
	nc net.Conn
	fe *pgproto3.Frontend
}

// rawConnect logs in as mq with password tok and the startup parameters
// given (user and database added when missing). A refusal is returned as
// the *pgconn.PgError the server sent.
func (e *env) rawConnect(t testing.TB, tok string, params map[string]string) (*rawConn, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", e.st.ProxyAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &rawConn{nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
	r.fe.SetMaxBodyLen(64 << 20)
	p := map[string]string{"user": "mq", "database": "postgres"}
	for k, v := range params {
		p[k] = v
	}
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	defer nc.SetDeadline(time.Time{})
	r.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: p})
	if err := r.fe.Flush(); err != nil {
		return nil, fmt.Errorf("startup: %w", err)
	}
	for {
		msg, err := r.fe.Receive()
		if err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.AuthenticationCleartextPassword:
			r.fe.Send(&pgproto3.PasswordMessage{Password: tok})
			if err := r.fe.Flush(); err != nil {
				return nil, fmt.Errorf("password: %w", err)
			}
		case *pgproto3.ErrorResponse:
			return nil, pgconn.ErrorResponseToPgError(m)
		case *pgproto3.ReadyForQuery:
			return r, nil
		}
	}
}

func (e *env) mustRaw(t testing.TB, tok string, params map[string]string) *rawConn {
	t.Helper()
	r, err := e.rawConnect(t, tok, params)
	if err != nil {
		t.Fatalf("raw login: %v", err)
	}
	return r
}

// rawResult is what the server answered up to ReadyForQuery.
type rawResult struct {
	Kinds []string // message types in order: "ParseComplete", "DataRow", ...
	Rows  int
	Tags  []string
	Errs  []*pgconn.PgError
}

func (r rawResult) err() error {
	if len(r.Errs) == 0 {
		return nil
	}
	return r.Errs[0]
}

func (r rawResult) has(kind string) bool {
	for _, k := range r.Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// roundTrip sends msgs and reads until ReadyForQuery. A connection that
// breaks first gives the messages read so far and an error (a FATAL is in
// Errs).
func (r *rawConn) roundTrip(msgs ...pgproto3.FrontendMessage) (rawResult, error) {
	var res rawResult
	r.nc.SetDeadline(time.Now().Add(20 * time.Second))
	defer r.nc.SetDeadline(time.Time{})
	for _, m := range msgs {
		r.fe.Send(m)
	}
	if err := r.fe.Flush(); err != nil {
		return res, err
	}
	for {
		msg, err := r.fe.Receive()
		if err != nil {
			return res, err
		}
		res.Kinds = append(res.Kinds, strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3."))
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			res.Rows++
		case *pgproto3.CommandComplete:
			res.Tags = append(res.Tags, string(m.CommandTag))
		case *pgproto3.ErrorResponse:
			res.Errs = append(res.Errs, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.ReadyForQuery:
			return res, nil
		}
	}
}

// query runs a simple Query; the error is the first ErrorResponse, or the
// broken connection.
func (r *rawConn) query(sql string) (rawResult, error) {
	res, err := r.roundTrip(&pgproto3.Query{String: sql})
	if err != nil {
		if e := res.err(); e != nil {
			return res, e
		}
		return res, err
	}
	return res, res.err()
}

// extended runs sql with the extended protocol: Parse (with paramOIDs),
// Bind (text parameters), Describe, Execute, Sync.
func (r *rawConn) extended(name, sql string, paramOIDs []uint32, params ...string) (rawResult, error) {
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	res, err := r.roundTrip(
		&pgproto3.Parse{Name: name, Query: sql, ParameterOIDs: paramOIDs},
		&pgproto3.Bind{PreparedStatement: name, Parameters: vals},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	)
	if err != nil {
		if e := res.err(); e != nil {
			return res, e
		}
		return res, err
	}
	return res, res.err()
}

// ---- psql ----

func psqlPath(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/psql"); err == nil {
		return "/usr/lib/postgresql/15/bin/psql"
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql not found (tests need it; run `make deps`): %v", err)
	}
	return p
}

type psqlResult struct {
	Stdout, Stderr string
	Exit           int
}

// psql runs psql against the proxy with PGPASSWORD=tok, the extra
// environment given (PGOPTIONS, PGCLIENTENCODING, ...), and sql as -c;
// errors are shown with their SQLSTATE (VERBOSITY verbose).
func (e *env) psql(t testing.TB, tok string, environ []string, db, sql string) psqlResult {
	t.Helper()
	h, p := e.hostPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psqlPath(t), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
		"-h", h, "-p", p, "-U", "mq", "-d", db, "-c", sql)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PGPASSWORD="+tok, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10", "PGAPPNAME=security-test")
	cmd.Env = append(cmd.Env, environ...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := psqlResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("psql: %v", err)
	}
	return res
}

// wantPsqlLoginRefused reports unless psql could not log in (exit 2) and
// printed a FATAL naming want (case-insensitive).
func wantPsqlLoginRefused(t testing.TB, what string, r psqlResult, want string) {
	t.Helper()
	if r.Exit != 2 || !strings.Contains(r.Stderr, "FATAL") {
		t.Errorf("%s: psql exit %d, stderr %q: want a FATAL at login (exit 2)", what, r.Exit, oneLine(r.Stderr))
		return
	}
	if !strings.Contains(strings.ToLower(r.Stderr), strings.ToLower(want)) {
		t.Errorf("%s: the FATAL does not say why (no %q): %q", what, want, oneLine(r.Stderr))
	}
}

// wantPsqlError reports unless psql logged in and the statement failed with
// ERROR code (psql -c exits 1 on an SQL error, 2 when the connection is
// lost).
func wantPsqlError(t testing.TB, what string, r psqlResult, code string) {
	t.Helper()
	if r.Exit != 1 || !strings.Contains(r.Stderr, "ERROR:  "+code) {
		t.Errorf("%s: psql exit %d, stdout %q, stderr %q: want ERROR %s (exit 1)", what, r.Exit, oneLine(r.Stdout), oneLine(r.Stderr), code)
	}
}
