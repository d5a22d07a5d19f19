package reliability

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// TestAccountingUnderLoad: 36 clients through the proxy and REST at once on
// a pool of 8; every acknowledged send is accounted for, nothing is
// delivered twice within its vt, nothing appears that was not sent.
func TestAccountingUnderLoad(t *testing.T) {
	e := newEnv(t, envOptions{PoolSize: 8})
	l := startLoad(t, e, "acct_plain", defaultMix)
	// Enough traffic to prove something, as the check below asks, and a few
	// seconds of it (about 3000 messages in 8s on a 2-core machine).
	l.waitProgress(t, 0, 0, 2000, "under load")
	c := l.finish(t, 30*time.Second)
	t.Logf("accounting (%d clients, pool 8): %s; errors: %s", defaultMix.total(), c, l.errSummary())
	if !c.ok() {
		t.Fatalf("accounting failed: %s\n  %s", c, c.problems())
	}
	if c.Acked < 500 || c.Received < 500 {
		t.Fatalf("too little traffic to prove anything: %s", c)
	}
	if c.InQueue != 0 {
		t.Fatalf("%d messages left after the drain", c.InQueue)
	}
	e.noIdleInTransaction(t)
}

// fault is something that goes wrong while the load runs. inject returns a
// check run after the load has finished (metrics, leftovers).
type fault struct {
	name   string
	inject func(t testing.TB, e *env, l *load) (after func(t testing.TB))
}

var faults = []fault{
	{"terminate_backends", terminateBackends},
	{"restart_fast", restartPostgres("fast")},
	{"restart_immediate", restartPostgres("immediate")},
	{"client_killed_mid_transaction", killClientMidTransaction},
	{"slow_consumer", slowConsumer},
	{"pool_exhausted", exhaustPool},
}

// TestFaultsUnderLoad injects each fault into a running load on one stack
// and checks, after each: accounting, a new client is served, no backend
// idle in transaction, and the metrics counted the fault.
func TestFaultsUnderLoad(t *testing.T) {
	e := newEnv(t, envOptions{PoolSize: 8, CheckoutTimeout: time.Second})
	var total counts
	for i, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			c := runRound(t, e, fmt.Sprintf("fault_%d", i), f)
			total.add(c)
		})
	}
	t.Logf("all faults: %s", total)
}

// runRound runs a load on a fresh queue, injects f once the load is in
// full swing, lets the load go on until it has recovered (sends and reads
// succeed again), drains and checks.
func runRound(t testing.TB, e *env, queue string, f fault) counts {
	t.Helper()
	l := startLoad(t, e, queue, defaultMix)
	l.waitProgress(t, 0, 0, 300, "before the fault")
	check := f.inject(t, e, l)
	acked, delivered := l.led.progress()
	l.waitProgress(t, acked, delivered, 300, "after the fault "+f.name)
	c := l.finish(t, 45*time.Second)
	t.Logf("%s: %s; errors: %s", f.name, c, l.errSummary())
	if testing.Verbose() {
		t.Logf("error samples:%s", l.errSamples())
	}
	if !c.ok() {
		t.Fatalf("%s: accounting failed: %s\n  %s", f.name, c, c.problems())
	}
	e.noIdleInTransaction(t)
	e.serves(t)
	if check != nil {
		check(t)
	}
	return c
}

// serves checks that a new client gets served through the proxy and REST.
func (e *env) serves(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last error
	defer func() {
		if last != nil {
			t.Logf("the last attempt to be served: %v", last)
		}
	}()
	testenv.WaitFor(t, 20*time.Second, "a new client to be served", func() bool {
		c, err := pgx.Connect(ctx, e.connString())
		if err != nil {
			last = err
			return false
		}
		defer c.Close(context.Background())
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pgmq.list_queues()").Scan(&n); err != nil || n == 0 {
			last = fmt.Errorf("list_queues: %d %v", n, err)
			return false
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.restURL("list_queues"), nil)
		req.Header.Set("Authorization", "Bearer "+testenv.Token(t, testSecret, auth.MintOptions{}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			last = fmt.Errorf("REST list_queues: HTTP %d", resp.StatusCode)
			return false
		}
		last = nil
		return true
	})
}

// connectionsClosed sums the client connections closed for any of reasons
// (all when none), under the metric's current and former names.
func (e *env) connectionsClosed(t testing.TB, reasons ...string) float64 {
	var n float64
	for _, name := range []string{"mqstack_connections_closed_total", "mqstack_proxy_connections_closed_total"} {
		if len(reasons) == 0 {
			n += e.metric(t, name, nil)
		}
		for _, r := range reasons {
			n += e.metric(t, name, map[string]string{"reason": r})
		}
	}
	return n
}

// clientsGone counts connections the client closed without Terminate.
func (e *env) clientsGone(t testing.TB) float64 {
	return e.connectionsClosed(t, "client_gone", "client_closed")
}

func (e *env) backendsClosed(t testing.TB) float64 {
	return e.metric(t, "mqstack_pool_backends_closed_total", nil)
}

func terminateBackends(t testing.TB, e *env, l *load) func(testing.TB) {
	closedBefore := e.backendsClosed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := e.direct(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close(context.Background())
	var n int
	if err := dc.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE usename = 'mq' AND backend_type = 'client backend'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no backend of role mq to terminate: is the load running?")
	}
	t.Logf("terminated %d backends", n)
	return func(t testing.TB) {
		testenv.WaitFor(t, 10*time.Second, "mqstack_pool_backends_closed_total to count the terminated backends", func() bool {
			return e.backendsClosed(t) > closedBefore
		})
	}
}

func restartPostgres(how string) func(testing.TB, *env, *load) func(testing.TB) {
	return func(t testing.TB, e *env, l *load) func(testing.TB) {
		closedBefore := e.backendsClosed(t)
		errsBefore := e.metric(t, "mqstack_pool_checkouts_total", map[string]string{"outcome": "error"})
		e.stopPostgres(t, how)
		testenv.WaitFor(t, 15*time.Second, "a checkout to fail while Postgres is down", func() bool {
			return e.metric(t, "mqstack_pool_checkouts_total", map[string]string{"outcome": "error"}) > errsBefore
		})
		e.startPostgres(t)
		return func(t testing.TB) {
			if e.backendsClosed(t) <= closedBefore {
				t.Errorf("restart (%s) not counted in mqstack_pool_backends_closed_total", how)
			}
			if e.metric(t, "mqstack_pool_checkouts_total", map[string]string{"outcome": "error"}) <= errsBefore {
				t.Errorf("checkouts while Postgres was down not counted as mqstack_pool_checkouts_total{outcome=\"error\"}")
			}
		}
	}
}

// rawProxyConn is a pgx connection through the proxy for a scripted client.
func rawProxyConn(t testing.TB, e *env) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(e.connString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	return c
}

// killClientMidTransaction: clients vanish (TCP close, no Terminate) inside
// a transaction that sent and read messages, idle and while a statement
// runs. Their sends must not appear, their reads come back after vt.
func killClientMidTransaction(t testing.TB, e *env, l *load) func(testing.TB) {
	closedBefore := e.clientsGone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, running := range []bool{false, true} {
		c := rawProxyConn(t, e)
		uid := l.led.uid("killed")
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, fmt.Sprintf("SELECT pgmq.send('%s', '%s')", l.queue, body(uid))); err != nil {
			t.Fatal(err)
		}
		// The transaction never commits: the send certainly failed.
		l.led.sent([]string{uid}, nil, failed)
		if _, err := c.Exec(ctx, fmt.Sprintf("SELECT * FROM pgmq.read('%s', 30, 3)", l.queue)); err != nil {
			t.Fatal(err)
		}
		if running {
			c.PgConn().Frontend().Send(&pgproto3.Query{String: "SELECT pg_sleep(60)"})
			if err := c.PgConn().Frontend().Flush(); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 10*time.Second, "pg_sleep(60) to run on the backend", func() bool {
				var n int
				return e.scanDirect("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()",
					nil, &n) && n == 1
			})
		}
		c.PgConn().Conn().Close()
	}
	return func(t testing.TB) {
		if n := e.clientsGone(t); n < closedBefore+2 {
			t.Errorf("killed clients not counted: connections closed by the client %v -> %v", closedBefore, n)
		}
		e.noActiveQuery(t, "pg_sleep(60)")
	}
}

// noActiveQuery waits until no backend runs a query containing text.
func (e *env) noActiveQuery(t testing.TB, text string) {
	t.Helper()
	testenv.WaitFor(t, 15*time.Second, "no backend running "+text, func() bool {
		var n int
		return e.scanDirect("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
			[]any{text}, &n) && n == 0
	})
}

// slowConsumer: a client asks for a large result and stops reading its
// socket; everyone else carries on; when it finally goes away its backend
// is freed.
func slowConsumer(t testing.TB, e *env, l *load) func(testing.TB) {
	c := rawProxyConn(t, e)
	const q = "SELECT g, repeat('x', 2000) FROM generate_series(1, 100000) g /* slow consumer */"
	c.PgConn().Frontend().Send(&pgproto3.Query{String: q})
	if err := c.PgConn().Frontend().Flush(); err != nil {
		t.Fatal(err)
	}
	// Wait until its backend is blocked writing, then watch the others.
	testenv.WaitFor(t, 10*time.Second, "the slow consumer's backend to block on the client", func() bool {
		var n int
		return e.scanDirect("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%/* slow consumer */%' AND wait_event = 'ClientWrite' AND pid <> pg_backend_pid()",
			nil, &n) && n == 1
	})
	sends, reads := l.sendOps.Load(), l.readOps.Load()
	testenv.WaitFor(t, 10*time.Second, "others to make 20 sends and 20 reads while a slow consumer blocks (they stall behind it otherwise)", func() bool {
		return l.sendOps.Load()-sends >= 20 && l.readOps.Load()-reads >= 20
	})
	closedBefore := e.clientsGone(t)
	c.PgConn().Conn().Close()
	return func(t testing.TB) {
		e.noActiveQuery(t, "/* slow consumer */")
		if e.clientsGone(t) <= closedBefore {
			t.Errorf("the slow consumer's end is not counted in mqstack_proxy_connections_closed_total")
		}
	}
}

// exhaustPool: every backend of the pool is held in open transactions for
// longer than pool.checkout_timeout; others wait, get 53300, and recover
// when the transactions end.
func exhaustPool(t testing.TB, e *env, l *load) func(testing.TB) {
	timeoutsBefore := e.metric(t, "mqstack_pool_checkouts_total", map[string]string{"outcome": "timeout"})
	refusedBefore := l.errCount("53300")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var holders []*pgx.Conn
	for range e.cfg.Pool.Size {
		c := rawProxyConn(t, e)
		// Retry: the load competes for the same pool.
		var err error
		for range 20 {
			if _, err = c.Exec(ctx, "BEGIN; SELECT 1"); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("cannot take a backend: %v", err)
		}
		holders = append(holders, c)
	}
	probe := rawProxyConn(t, e)
	defer probe.Close(context.Background())
	start := time.Now()
	_, err := probe.Exec(ctx, "SELECT 1")
	waited := time.Since(start)
	if pgCode(err) != "53300" {
		t.Errorf("with the pool exhausted: want SQLSTATE 53300, got %v", err)
	} else if !strings.Contains(err.Error(), "pool") {
		t.Errorf("53300 message does not explain: %v", err)
	}
	if waited < e.cfg.Pool.CheckoutTimeout*9/10 {
		t.Errorf("53300 after %s, before pool.checkout_timeout %s", waited, e.cfg.Pool.CheckoutTimeout)
	}
	if n := e.metric(t, "mqstack_pool_clients_waiting", nil); n < 0 {
		t.Errorf("clients waiting gauge %v", n)
	}
	testenv.WaitFor(t, 10*e.cfg.Pool.CheckoutTimeout, "the load's clients to be refused with 53300 too", func() bool {
		return l.errCount("53300") > refusedBefore
	})
	for _, c := range holders {
		c.Exec(ctx, "COMMIT")
		c.Close(context.Background())
	}
	// The probe's session is still usable.
	var one int
	if err := probe.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Errorf("after the pool recovered, the refused session fails: %v", err)
	}
	return func(t testing.TB) {
		if e.metric(t, "mqstack_pool_checkouts_total", map[string]string{"outcome": "timeout"}) <= timeoutsBefore {
			t.Errorf("pool exhaustion not counted in mqstack_pool_checkouts_total{outcome=\"timeout\"}")
		}
	}
}

func pgCode(err error) string {
	if k := errKind(err); k != "conn" && k != "timeout" {
		return k
	}
	return ""
}
