package clients

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// runNode runs a script of tests/clients/node against the proxy.
func runNode(t *testing.T, script string, env ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: these tests need Node.js and `make deps` (npm ci in tests/clients/node)")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "pgmq-js")); err != nil {
		t.Fatalf("tests/clients/node/node_modules is missing: run `make deps` (npm ci --prefix tests/clients/node)")
	}
	st := startStack(t, nil)
	host, port := hostPort(t, st.ProxyAddr())
	cmd := exec.Command(node, script)
	cmd.Dir = "node"
	cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER=mq", "PGDATABASE=postgres",
		"PGPASSWORD="+testenv.Token(t, testSecret, auth.MintOptions{TTL: time.Hour}))
	cmd.Env = append(cmd.Env, env...)
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("node %s did not finish in 90s:\n%s", script, out)
	}
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out)
	}
	return string(out)
}

// The pgmq client library for Node runs its usual flow through the proxy
// unchanged, in plaintext on loopback and inside TLS.
func TestPgmqJS(t *testing.T) {
	for _, tc := range []struct{ name, ssl, queue string }{{"plain", "0", "js_plain"}, {"tls", "1", "js_tls"}} {
		t.Run(tc.name, func(t *testing.T) {
			out := runNode(t, "pgmq_flow.js", "PGSSL="+tc.ssl, "QUEUE="+tc.queue)
			if !strings.Contains(out, `OK {"sent":46`) {
				t.Fatalf("pgmq-js flow output:\n%s", out)
			}
		})
	}
}

// node-postgres: simple and extended protocol, named prepared statements
// from more clients than backends, transactions, LISTEN/NOTIFY.
func TestNodePostgres(t *testing.T) {
	out := runNode(t, "node_pg.js", "QUEUE=node_pg")
	if !strings.Contains(out, "OK node-postgres") {
		t.Fatalf("node-postgres output:\n%s", out)
	}
}
