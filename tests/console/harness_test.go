package console

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/stack"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var testSecret = []byte("console-test-secret-0123456789abcdef")

// waitLimit bounds every wait for the page: generous, because the machine
// may be busy; a wait ends as soon as its condition holds.
const waitLimit = 30 * time.Second

// env is one stack and one browser tab for one test.
type env struct {
	t     *testing.T
	st    *stack.Stack
	db    *pgx.Conn
	ctx   context.Context // the tab's context
	token string          // unlimited token of role mq
	drops []string        // queues dropped when the test ends
}

// newEnv starts the stack in front of the package's shared cluster and a
// fresh headless Chromium of its own.
func newEnv(t *testing.T) *env {
	t.Helper()
	c := testenv.Cluster(t)
	cfg := testenv.FrontEndConfig(t.TempDir(), testSecret)
	cfg.Metrics.DepthCacheTTL = 200 * time.Millisecond
	v, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.Start(stack.Options{Config: v, Backends: []configs.BackendConfig{c.Backend()},
		Auth: cfg.Auth, DefaultRole: "mq", ConsoleInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Shutdown(10 * time.Second) })
	ctx := context.Background()
	db, err := pgx.Connect(ctx, c.ConnString("mq", c.Database()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	e := &env{t: t, st: st, db: db, token: testenv.Token(t, testSecret, auth.MintOptions{})}
	// Registered before the browser, so it runs after the failure
	// screenshot has caught the page as the test left it.
	t.Cleanup(func() { e.dropQueues(e.drops...) })
	e.ctx = startBrowser(t)
	return e
}

// chromiumPath is Debian's chromium (scripts/deps.sh chromium installs it).
func chromiumPath(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("chromium not found: the console tests need Debian's chromium package (make deps, or scripts/deps.sh chromium)")
	return ""
}

// startBrowser starts a headless Chromium with a fresh profile and returns
// its tab. Cleanup closes it, checks that no process of it is left, and
// first saves a screenshot when the test failed.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		acancel()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		chromedp.Cancel(cctx)
		ccancel()
		cancel()
		acancel()
		testenv.WaitFor(t, 10*time.Second, "chromium's processes to end", func() bool { return len(processesUsing(profile)) == 0 })
	})
	t.Cleanup(func() {
		if t.Failed() {
			saveScreenshot(t, ctx)
		}
	})
	return ctx
}

// processesUsing lists the processes started with profile as their user
// data directory (Chromium passes it to every child).
func processesUsing(profile string) []int {
	want := []byte("--user-data-dir=" + profile)
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// saveScreenshot writes the tab's page to the temp directory for a failed
// test and names the file in the log.
func saveScreenshot(t *testing.T, ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	name := filepath.Join(os.TempDir(), "mqstack-console-"+strings.ReplaceAll(t.Name(), "/", "_")+".png")
	if err := os.WriteFile(name, png, 0o644); err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	t.Logf("screenshot of the failed page: %s", name)
}

// do runs browser actions and fails the test on error.
func (e *env) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// waitJS waits until the JavaScript expression is truthy on the page.
func (e *env) waitJS(what, expr string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, waitLimit+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitLimit))); err != nil {
		e.t.Fatalf("waiting for %s: %v (page text: %s)", what, err, e.text("document.body.innerText"))
	}
}

// text evaluates a JavaScript expression giving a string.
func (e *env) text(expr string) string {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return s
}

// open navigates to the console signed in with token and waits for page.
func (e *env) open(token, fragment, page string) {
	e.t.Helper()
	e.do("open the console", chromedp.Navigate(e.st.ConsoleURL(token)))
	e.waitJS("the queues page", `!document.getElementById("page-queues").hidden`)
	if fragment != "" {
		e.do("go to "+fragment, chromedp.Evaluate[chromedp.Void](`location.hash = `+strconv.Quote(fragment)))
	}
	e.waitJS("page "+page, `!document.getElementById("page-`+page+`").hidden`)
	e.settled(page)
}

// settled waits until the page has drawn what its first refreshes add
// (charts, message list), so that a click does not land where a button
// was before the layout moved.
func (e *env) settled(page string) {
	e.t.Helper()
	switch page {
	case "queue":
		e.waitJS("the queue page drawn", `document.querySelectorAll("#page-queue .chart canvas").length === 2 &&
			(document.querySelectorAll("#messages-table tbody tr").length > 0 || !document.getElementById("messages-empty").hidden)`)
	case "queues":
		e.waitJS("the queues page drawn", `document.querySelectorAll("#queues-table .sparkbox").length ===
			document.querySelectorAll("#queues-table tbody tr").length && document.getElementById("queues-updated").textContent !== ""`)
	}
}

// sql runs a statement directly on Postgres, as role mq.
func (e *env) sql(stmt string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), stmt, args...); err != nil {
		e.t.Fatalf("%s: %v", stmt, err)
	}
}

// psql runs statements with psql through the proxy, as a user of the stack
// would (the token as the password).
func (e *env) psql(stmts ...string) {
	e.t.Helper()
	bin := "/usr/lib/postgresql/15/bin/psql"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("psql"); err != nil {
			e.t.Fatalf("psql not found (the console tests need it; run make deps): %v", err)
		}
	}
	host, port, err := net.SplitHostPort(e.st.ProxyAddr())
	if err != nil {
		e.t.Fatal(err)
	}
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", "mq", "-d", "postgres"}
	for _, s := range stmts {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+e.token, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("psql %q: %v: %s", stmts, err, out)
	}
}

// count returns one integer a query gives.
func (e *env) count(query string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// freshQueues drops the named queues now and when the test ends.
func (e *env) freshQueues(names ...string) {
	e.t.Helper()
	e.dropQueues(names...)
	e.drops = append(e.drops, names...)
}

func (e *env) dropQueues(names ...string) {
	e.t.Helper()
	for _, n := range names {
		e.sql(`SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = $1`, n)
	}
}

// cell is the JavaScript text of a queues-page cell.
func cell(queue, col string) string {
	return `(document.querySelector('#queues-table tr[data-queue="` + queue + `"] [data-col="` + col + `"]') || {}).textContent`
}
