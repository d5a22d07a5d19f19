package proxy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

func pgBin(t testing.TB, name string) string {
	t.Helper()
	bins, err := pgembed.FindBinaries("")
	if err != nil {
		t.Fatalf("PostgreSQL binaries are needed: %v", err)
	}
	p := bins.Path(name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is needed: %v", name, err)
	}
	return p
}

// runPG runs a libpq client program against the proxy with a token.
func (h *harness) runPG(t testing.TB, prog string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgBin(t, prog), args...)
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+h.port(), "PGUSER=mq", "PGDATABASE=postgres",
		"PGPASSWORD="+testenv.Token(t, testSecret, auth.MintOptions{}), "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", prog, args, err, out.String())
	}
	return out.String()
}

func TestPsql(t *testing.T) {
	h := newHarness(t, nil)
	h.testSchema(t)
	out := h.runPG(t, "psql", "", "-X", "-v", "ON_ERROR_STOP=1", "-c", `\conninfo`)
	if !strings.Contains(out, `as user "mq"`) {
		t.Fatalf("conninfo: %s", out)
	}
	out = h.runPG(t, "psql", "", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", "SELECT 1; SELECT current_user, 40 + 2")
	if !strings.Contains(out, "mq|42") {
		t.Fatalf("multi-statement -c: %q", out)
	}
	script := `
CREATE TABLE IF NOT EXISTS mq_test.psql_copy (id int, v text);
TRUNCATE mq_test.psql_copy;
COPY mq_test.psql_copy FROM STDIN;
1	one
2	two
\.
SELECT count(*) FROM mq_test.psql_copy;
COPY mq_test.psql_copy TO STDOUT;
PREPARE p1 AS SELECT $1::int * 3;
EXECUTE p1(14);
DEALLOCATE p1;
BEGIN;
SELECT v FROM mq_test.psql_copy WHERE id = 2;
COMMIT;
`
	out = h.runPG(t, "psql", script, "-X", "-At", "-v", "ON_ERROR_STOP=1")
	for _, want := range []string{"2\n", "1\tone", "2\ttwo", "42", "two"} {
		if !strings.Contains(out, want) {
			t.Fatalf("psql script output lacks %q:\n%s", want, out)
		}
	}
	// A pgmq round trip, when the extension is installed in this cluster.
	avail := h.runPG(t, "psql", "", "-X", "-At", "-c", "SELECT count(*) FROM pg_extension WHERE extname = 'pgmq'")
	if strings.TrimSpace(avail) == "1" {
		out = h.runPG(t, "psql", "", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c",
			"SELECT pgmq.create('proxy_psql'); SELECT pgmq.send('proxy_psql', '{\"a\":1}'); SELECT message->>'a' FROM pgmq.read('proxy_psql', 30, 1); SELECT pgmq.drop_queue('proxy_psql');")
		if !strings.Contains(out, "\n1\n") {
			t.Fatalf("pgmq round trip: %s", out)
		}
	}
}

// pgbench in all three protocol modes, 32 clients on a pool of 4.
func TestPgbench(t *testing.T) {
	h := newHarness(t, func(_ *configs.ProxyConfig, p *configs.PoolConfig) {
		p.Size = 4
		p.CheckoutTimeout = 60 * time.Second
	})
	h.testSchema(t)
	// The tables go to mq_test: options replayed on every backend checkout.
	t.Setenv("PGOPTIONS", "-c search_path=mq_test")
	h.runPG(t, "pgbench", "", "-i", "-q", "-s", "1", "--no-vacuum")
	for _, mode := range []string{"simple", "extended", "prepared"} {
		out := h.runPG(t, "pgbench", "", "-n", "-M", mode, "-c", "32", "-j", "2", "-t", "20")
		if !strings.Contains(out, "number of failed transactions: 0") || !strings.Contains(out, "number of transactions actually processed: 640/640") {
			t.Fatalf("pgbench -M %s:\n%s", mode, out)
		}
	}
}
