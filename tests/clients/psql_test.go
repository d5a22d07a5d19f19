package clients

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mqstack/internal/pgembed"
)

// psqlSession is the real psql reading its statements from a pipe: the
// test hands it the next statement only once the state it needs is
// reached (a LISTEN has taken effect, a notification has been written to
// the client), so no step depends on how long another one takes.
// Notifications are printed by psql itself after the statement that read
// them, which is what a psql user sees.
type psqlSession struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// out holds stdout and stderr through one pipe, in psql's order; read
	// only after the process has exited.
	out bytes.Buffer
	// done is closed when psql has exited, with its status in err.
	done chan struct{}
	err  error
}

// psqlBinary is psql of the installation the test cluster runs on, else
// the one on PATH.
func psqlBinary(t *testing.T) string {
	t.Helper()
	if b, err := pgembed.FindBinaries(""); err == nil {
		if _, err := os.Stat(b.Path("psql")); err == nil {
			return b.Path("psql")
		}
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql not found (these tests need it; run `make deps`): %v", err)
	}
	return p
}

// startPsql logs psql in through the proxy at addr with token tok. Errors
// carry their SQLSTATE (VERBOSITY verbose); psql goes on after one, as
// without ON_ERROR_STOP.
func startPsql(t *testing.T, addr, tok string) *psqlSession {
	t.Helper()
	host, port := hostPort(t, addr)
	p := &psqlSession{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(psqlBinary(t), "-X", "-A", "-t", "-v", "VERBOSITY=verbose",
		"-h", host, "-p", port, "-U", "mq", "-d", "postgres")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, "PGPASSWORD="+tok, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10", "PGAPPNAME=listen-test")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting psql: %v", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// run hands psql the statements, one per line.
func (p *psqlSession) run(stmts ...string) {
	p.t.Helper()
	for _, s := range stmts {
		if _, err := io.WriteString(p.stdin, s+"\n"); err != nil {
			p.t.Fatalf("writing %q to psql: %v (psql has exited?)", s, err)
		}
	}
}

// finish ends psql's input and returns all it printed; psql must exit 0.
func (p *psqlSession) finish() string {
	p.t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("psql did not exit within 30s of the end of its input:\n%s", p.out.String())
	}
	if p.err != nil {
		p.t.Fatalf("psql: %v\n%s", p.err, p.out.String())
	}
	return p.out.String()
}
