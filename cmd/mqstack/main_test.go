package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

// syncBuffer is an io.Writer safe for the command's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb syncBuffer
	err := run(context.Background(), args, &out, &errb)
	code := exitCode(err, &errb)
	return out.String(), errb.String(), code
}

func TestTune(t *testing.T) {
	out, _, code := runCmd(t, "tune", "--memory", "8GiB", "--cpus", "4", "--disk", "100GiB")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"shared_buffers", "= 2457MB", "max_connections", "= 862", "max_wal_size", "= 20480MB", "bgwriter_delay", "= 10ms", "shared_preload_libraries"} {
		if !strings.Contains(out, want) {
			t.Errorf("tune output lacks %q:\n%s", want, out)
		}
	}
	_, errOut, code := runCmd(t, "tune", "--memory", "8GiB", "--disk", "5GB")
	if code != 2 || !strings.Contains(errOut, "10GB") {
		t.Fatalf("small disk: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runCmd(t, "tune", "--memory", "lots")
	if code != 2 || !strings.Contains(errOut, "lots") {
		t.Fatalf("bad size: exit %d, stderr %q", code, errOut)
	}
}

func TestBadCommandLines(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"tune", "--nope"}, {"up", "stray"}} {
		if _, _, code := runCmd(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	out, _, code := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "mqstack ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("postgres:\n  memory: 1GiB\n"), 0o644)
	out, _, code := runCmd(t, "check-config", "--config", good)
	if code != 0 || !strings.Contains(out, "memory: 1GiB") {
		t.Fatalf("good config: exit %d\n%s", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("postgres:\n  shared_bufers: 1GiB\n"), 0o644)
	_, errOut, code := runCmd(t, "check-config", "--config", bad)
	if code != 2 || !strings.Contains(errOut, `unknown key "shared_bufers"`) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("bad key: exit %d, stderr %q (want one line naming the key)", code, errOut)
	}
	dur := filepath.Join(dir, "dur.yaml")
	os.WriteFile(dur, []byte("postgres:\n  start_timeout: forever\n"), 0o644)
	if _, errOut, code := runCmd(t, "check-config", "--config", dur); code != 2 || !strings.Contains(errOut, "forever") {
		t.Fatalf("bad duration: exit %d, stderr %q", code, errOut)
	}
	keyless := filepath.Join(dir, "keyless.yaml")
	os.WriteFile(keyless, []byte("auth:\n  public_key_files: [\""+filepath.Join(dir, "missing.pem")+"\"]\n"), 0o644)
	if _, errOut, code := runCmd(t, "check-config", "--config", keyless); code != 2 || !strings.Contains(errOut, "missing.pem") {
		t.Fatalf("missing key file: exit %d, stderr %q", code, errOut)
	}
	t.Setenv("MQSTACK_POSTGRES_PROT", "1")
	if _, errOut, code := runCmd(t, "check-config"); code != 2 || !strings.Contains(errOut, "MQSTACK_POSTGRES_PROT") {
		t.Fatalf("bad env: exit %d, stderr %q", code, errOut)
	}
}

func TestUpMissingBinaries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	t.Setenv("MQSTACK_POSTGRES_BIN_DIR", filepath.Join(t.TempDir(), "nowhere"))
	_, errOut, code := runCmd(t, "up", "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "PostgreSQL") || !strings.Contains(errOut, "nowhere") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir created although nothing could start")
	}
}

// TestUp runs the real `mqstack up`, checks the printed connection line with
// psql, and stops it the way Ctrl-C does.
func TestUp(t *testing.T) {
	parent, err := testenv.TempDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(parent)
	dir := filepath.Join(parent, "mq")
	t.Setenv("MQSTACK_POSTGRES_MEMORY", "256MiB")
	t.Setenv("MQSTACK_PROXY_LISTEN", "127.0.0.1:0")
	t.Setenv("MQSTACK_REST_LISTEN", "127.0.0.1:0")
	t.Setenv("MQSTACK_METRICS_LISTEN", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"up", "--data-dir", dir}, &out, &errb) }()

	connRE := regexp.MustCompile(`direct:  psql "([^"]+)"`)
	deadline := time.Now().Add(90 * time.Second)
	var conn string
	for conn == "" {
		if m := connRE.FindStringSubmatch(out.String()); m != nil {
			conn = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("up ended early: %v\n%s\n%s", err, out.String(), errb.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("up did not print a connection line:\n%s\n%s", out.String(), errb.String())
		}
	}
	bins, err := pgembed.FindBinaries("")
	if err != nil {
		t.Fatal(err)
	}
	psql := exec.Command(bins.Path("psql"), conn, "-Atc", "SELECT current_user, current_setting('shared_buffers'), (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension)")
	got, err := psql.CombinedOutput()
	if err != nil {
		t.Fatalf("psql with the printed line: %v\n%s", err, got)
	}
	if !strings.HasPrefix(string(got), "mq|76MB|") || !strings.Contains(string(got), "pg_partman") || !strings.Contains(string(got), "pg_stat_statements") {
		t.Fatalf("psql said %q", got)
	}
	// The proxy line: PGPASSWORD=<token> psql "host=... sslmode=require".
	proxyRE := regexp.MustCompile(`psql:    PGPASSWORD=(\S+) psql "([^"]+)"`)
	m := proxyRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("up did not print a proxy line:\n%s", out.String())
	}
	psql = exec.Command(bins.Path("psql"), m[2], "-Atc", "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
	psql.Env = append(os.Environ(), "PGPASSWORD="+m[1])
	if got, err = psql.CombinedOutput(); err != nil || !strings.HasPrefix(string(got), "mq|") {
		t.Fatalf("psql through the proxy: %v\n%s", err, got)
	}
	// The REST line runs as printed, and sees the queue made over SQL.
	psql = exec.Command(bins.Path("psql"), m[2], "-Atc", "SELECT pgmq.create('up_probe')")
	psql.Env = append(os.Environ(), "PGPASSWORD="+m[1])
	if got, err = psql.CombinedOutput(); err != nil {
		t.Fatalf("create over the proxy: %v\n%s", err, got)
	}
	restRE := regexp.MustCompile(`REST:    (curl .*)`)
	rm := restRE.FindStringSubmatch(out.String())
	if rm == nil {
		t.Fatalf("up did not print a REST line:\n%s", out.String())
	}
	got, err = exec.Command("bash", "-c", rm[1]).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "[{") || !strings.Contains(string(got), `"queue_name":"up_probe"`) {
		t.Fatalf("the printed curl line: %v\n%s", err, got)
	}
	// The console line: the page, and the token of its fragment signs in.
	consoleRE := regexp.MustCompile(`console: (http://\S+)#token=(\S+)`)
	cm := consoleRE.FindStringSubmatch(out.String())
	if cm == nil {
		t.Fatalf("up did not print a console link:\n%s", out.String())
	}
	got, err = exec.Command("curl", "-s", cm[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(got), "<title>mqstack console</title>") {
		t.Fatalf("the console link: %v\n%.500s", err, got)
	}
	got, err = exec.Command("curl", "-s", strings.TrimSuffix(cm[1], "/console/")+"/mqstack/v1/session",
		"-H", "Authorization: Bearer "+cm[2]).CombinedOutput()
	if err != nil || !strings.Contains(string(got), `"role":"mq"`) {
		t.Fatalf("the console link's token: %v\n%s", err, got)
	}
	metricsRE := regexp.MustCompile(`metrics: (http://\S+)`)
	mm := metricsRE.FindStringSubmatch(out.String())
	if mm == nil {
		t.Fatalf("up did not print the metrics URL:\n%s", out.String())
	}
	// The depth answer is cached for metrics.depth_cache_ttl, and the
	// console's history scrapes too: the new queue shows within one TTL.
	const probe = `pgmq_queue_length{datname="postgres",queue_name="up_probe"} 0`
	testenv.WaitFor(t, 30*time.Second, "up_probe on /metrics", func() bool {
		got, err = exec.Command("curl", "-s", mm[1]).CombinedOutput()
		return err == nil && strings.Contains(string(got), probe)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up returned %v after Ctrl-C", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("up did not stop within 60s of Ctrl-C")
	}
	if !strings.Contains(out.String(), "mqstack stopped.") {
		t.Fatalf("no stop message:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("postmaster.pid still there: Postgres was not shut down")
	}
}
