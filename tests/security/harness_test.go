package security

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/pgembed"
	"mqstack/internal/stack"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var testSecret = []byte("security-suite-secret-0123456789abcdef")

// execModes are the five ways pgx sends a statement.
var execModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeCacheDescribe,
	pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec,
	pgx.QueryExecModeSimpleProtocol,
}

func modeName(m pgx.QueryExecMode) string { return strings.ReplaceAll(m.String(), " ", "_") }

// env is one stack (proxy, REST, metrics) in front of the package's shared
// cluster.
type env struct {
	st  *stack.Stack
	cfg *configs.Validated
}

// newEnv starts a stack with a pool of two backends and a 3 s checkout
// timeout; tweak adjusts the configuration first.
func newEnv(t *testing.T, tweak func(*configs.Config)) *env {
	t.Helper()
	c := testenv.Cluster(t)
	cfg := testenv.FrontEndConfig(t.TempDir(), testSecret)
	cfg.Pool.Size = 2
	cfg.Pool.CheckoutTimeout = 3 * time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	v, err := cfg.Validate()
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	log := zap.NewNop()
	if os.Getenv("MQSTACK_TEST_LOG") != "" {
		log = zaptest.NewLogger(t)
	}
	st, err := stack.Start(stack.Options{
		Config:      v,
		Backends:    []configs.BackendConfig{c.Backend()},
		Auth:        v.Auth,
		DefaultRole: "mq",
		Logger:      log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Shutdown(10 * time.Second) })
	return &env{st: st, cfg: v}
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ---- tokens ----

// mint signs a token for role mq with the test key, the way
// `mqstack token --grant ... --deny ...` does: each grant and deny is an
// OP:GLOB spec. No grants: a full token, limited only by the role.
func mint(t testing.TB, sub string, grants, denies []string) string {
	t.Helper()
	o := auth.MintOptions{Role: "mq", Subject: sub, TTL: time.Hour}
	for _, g := range grants {
		e, err := auth.ParseGrantSpec(g)
		if err != nil {
			t.Fatalf("grant %q: %v", g, err)
		}
		o.Grants = append(o.Grants, e)
	}
	for _, d := range denies {
		e, err := auth.ParseGrantSpec(d)
		if err != nil {
			t.Fatalf("deny %q: %v", d, err)
		}
		o.Deny = append(o.Deny, e)
	}
	return testenv.Token(t, testSecret, o)
}

func fullToken(t testing.TB) string { return mint(t, "full", nil, nil) }

func limitedToken(t testing.TB, grants ...string) string { return mint(t, "limited", grants, nil) }

// signClaims signs arbitrary claims (role mq, an hour of life added when
// missing) with the test key, for grant shapes auth.Mint does not make.
func signClaims(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	for k, v := range map[string]any{"role": "mq", "sub": "signed", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()} {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ---- wire clients ----

func (e *env) hostPort(t testing.TB) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(e.st.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func (e *env) connString(t testing.TB, tok string) string {
	h, p := e.hostPort(t)
	return fmt.Sprintf("host=%s port=%s user=mq dbname=postgres sslmode=disable connect_timeout=10 password=%s", h, p, tok)
}

// connect opens a pgx connection through the proxy in mode, with extra
// startup parameters; it is closed when the test ends.
func (e *env) connect(t testing.TB, tok string, mode pgx.QueryExecMode, params map[string]string) (*pgx.Conn, error) {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.connString(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn.Close(ctx)
	})
	return conn, nil
}

func (e *env) mustConnect(t testing.TB, tok string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	conn, err := e.connect(t, tok, mode, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	return conn
}

// run sends sql in mode (whatever the connection's default) and reads
// every row; it returns the number of rows.
func run(conn *pgx.Conn, mode pgx.QueryExecMode, sql string, args ...any) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, sql, append([]any{mode}, args...)...)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	return n, rows.Err()
}

// querier is a connection or a pool.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// show reads one setting on conn (with the extended protocol: pgx refuses
// simple queries itself once a session is not UTF8 with
// standard_conforming_strings on).
func show(conn querier, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v string
	err := conn.QueryRow(ctx, "SHOW "+name, pgx.QueryExecModeExec).Scan(&v)
	return v, err
}

// ---- errors ----

func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// wantError reports (without stopping the test) unless err is a server
// error of severity (ERROR or FATAL) with one of codes.
func wantError(t testing.TB, what string, err error, severity string, codes ...string) bool {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted, want %s %s", what, severity, strings.Join(codes, " or "))
		return false
	}
	pe := pgError(err)
	if pe == nil {
		t.Errorf("%s: %v, want a server error %s %s", what, err, severity, strings.Join(codes, " or "))
		return false
	}
	for _, c := range codes {
		if pe.Code == c && pe.Severity == severity {
			return true
		}
	}
	t.Errorf("%s: got %s %s (%s), want %s %s", what, pe.Severity, pe.Code, pe.Message, severity, strings.Join(codes, " or "))
	return false
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// ---- direct access to Postgres (not through the proxy) ----

// direct is a pool of connections to the cluster's socket as user (the
// superuser "postgres" or the default role "mq"), shared by the package's
// tests: checks and fixtures need no connection setup each.
func direct(t testing.TB, user string) *pgxpool.Pool {
	t.Helper()
	directPools.Lock()
	defer directPools.Unlock()
	if p := directPools.m[user]; p != nil {
		return p
	}
	cfg, err := pgxpool.ParseConfig(testenv.Cluster(t).ConnString(user, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("direct connections as %s: %v", user, err)
	}
	if directPools.m == nil {
		directPools.m = map[string]*pgxpool.Pool{}
	}
	directPools.m[user] = p
	return p
}

var directPools struct {
	sync.Mutex
	m map[string]*pgxpool.Pool
}

// sqlDirect runs statements on a fresh direct connection as user.
func sqlDirect(t testing.TB, user string, stmts ...string) {
	t.Helper()
	conn := direct(t, user)
	for _, s := range stmts {
		if _, err := conn.Exec(ctxFor(t, 30*time.Second), s); err != nil {
			t.Fatalf("direct (%s): %s: %v", user, oneLine(s), err)
		}
	}
}

var prefixSeq atomic.Int32

// uniquePrefix names the queues of one test case: no two cases share a
// queue, so one attack that succeeds cannot make another fail.
func uniquePrefix() string { return fmt.Sprintf("s%03d", prefixSeq.Add(1)) }

// createQueue makes a queue with msgs messages as the default role on a
// direct connection, and drops it when the test ends.
func createQueue(t testing.TB, name string, msgs int) {
	t.Helper()
	t.Cleanup(func() { dropQueue(t, name) })
	makeQueue(t, name, msgs)
}

func makeQueue(t testing.TB, name string, msgs int) {
	t.Helper()
	conn := direct(t, "mq")
	ctx := ctxFor(t, 30*time.Second)
	if _, err := conn.Exec(ctx, "SELECT pgmq.create($1)", name); err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	if msgs > 0 {
		if _, err := conn.Exec(ctx, `SELECT pgmq.send_batch($1, array_fill('{"victim":true}'::jsonb, ARRAY[$2::int]))`, name, msgs); err != nil {
			t.Fatalf("fill queue %s: %v", name, err)
		}
	}
}

// dropQueue drops a queue if it exists, as the superuser (whatever an attack
// left behind).
func dropQueue(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn := direct(t, pgembed.Superuser)
	conn.Exec(ctx, "SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = $1", name)
	conn.Exec(ctx, "DELETE FROM pgmq.topic_bindings WHERE queue_name = $1", name)
}

// victims are a test case's queues: orders (the token's own) and payments
// (another tenant's), each holding messages.
type victims struct {
	orders, payments string
}

const victimMessages = 3

func newVictims(t testing.TB) victims {
	t.Helper()
	p := uniquePrefix()
	v := victims{orders: p + "_orders", payments: p + "_payments"}
	createQueue(t, v.orders, victimMessages)
	createQueue(t, v.payments, victimMessages)
	return v
}

// queueState is what an attack could change about a queue.
type queueState struct {
	Exists   bool
	Messages int64 // rows in the queue table
	Reads    int64 // sum of read_ct: a read that returned a message counts
	Bindings int64 // topic bindings to it
}

func stateOf(t testing.TB, name string) queueState {
	t.Helper()
	conn := direct(t, pgembed.Superuser)
	ctx := ctxFor(t, 15*time.Second)
	var s queueState
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = $1)", name).Scan(&s.Exists); err != nil {
		t.Fatalf("state of %s: %v", name, err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pgmq.topic_bindings WHERE queue_name = $1", name).Scan(&s.Bindings); err != nil {
		t.Fatalf("bindings of %s: %v", name, err)
	}
	if !s.Exists {
		return s
	}
	q := pgx.Identifier{"pgmq", "q_" + name}.Sanitize()
	if err := conn.QueryRow(ctx, "SELECT count(*), coalesce(sum(read_ct), 0) FROM "+q).Scan(&s.Messages, &s.Reads); err != nil {
		t.Fatalf("state of %s: %v", name, err)
	}
	return s
}

// untouched reports when the queue changed since before.
func untouched(t testing.TB, name string, before queueState) {
	t.Helper()
	if after := stateOf(t, name); after != before {
		t.Errorf("the attack changed queue %s: before %+v, after %+v", name, before, after)
	}
}

// ---- the stack still serves ----

// bystander is another client that used the pool before the attack: pgx
// with its statement cache (its send is prepared on the backends).
type bystander struct {
	conn       *pgx.Conn
	queue, sql string
}

const bystanderSQL = "SELECT pgmq.send($1, $2)"

func (e *env) newBystander(t testing.TB, queue string) *bystander {
	t.Helper()
	return e.newBystanderSQL(t, queue, bystanderSQL)
}

// newBystanderSQL is a bystander whose send is sql (a variant of
// bystanderSQL, so that its statement is its own).
func (e *env) newBystanderSQL(t testing.TB, queue, sql string) *bystander {
	t.Helper()
	b := &bystander{conn: e.mustConnect(t, mint(t, "bystander", []string{"send:" + queue}, nil), pgx.QueryExecModeCacheStatement),
		queue: queue, sql: sql}
	if err := b.send(); err != nil {
		t.Fatalf("the bystander's send before the attack: %v", err)
	}
	return b
}

func (b *bystander) send() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var id int64
	return b.conn.QueryRow(ctx, b.sql, b.queue, `{"bystander":true}`).Scan(&id)
}

// serves checks the stack after an attack: the granted call on the
// attacker's own connection (same; nil when it was closed), on a fresh
// connection with the attacker's token, and the bystander's next send.
func (e *env) serves(t testing.TB, same *pgx.Conn, tok, granted string, by *bystander) {
	t.Helper()
	if same != nil {
		if _, err := run(same, same.Config().DefaultQueryExecMode, granted); err != nil {
			t.Errorf("after the attack, a granted call on the same connection failed: %v", err)
		}
	}
	if tok != "" {
		fresh, err := e.connect(t, tok, pgx.QueryExecModeCacheStatement, nil)
		if err != nil {
			t.Errorf("after the attack, a fresh connection was refused: %v", err)
		} else if _, err := run(fresh, pgx.QueryExecModeCacheStatement, granted); err != nil {
			t.Errorf("after the attack, a granted call on a fresh connection failed: %v", err)
		}
	}
	if by != nil {
		if err := by.send(); err != nil {
			t.Errorf("after the attack, another client's cached-statement send failed: %v", err)
		}
	}
}

// sendSQL is the granted call of a send token.
func sendSQL(queue string) string {
	return fmt.Sprintf(`SELECT pgmq.send('%s', '{"granted":true}')`, queue)
}

// ---- REST ----

func (e *env) rest(t testing.TB, tok, fn string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctxFor(t, 20*time.Second), http.MethodPost, "http://"+e.st.RESTAddr()+"/pgmq/v1/"+fn, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("REST %s: %v", fn, err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// restSends reports unless a REST send with tok succeeds.
func (e *env) restSends(t testing.TB, tok, queue string) {
	t.Helper()
	code, body := e.rest(t, tok, "send", map[string]any{"queue_name": queue, "msg": map[string]any{"rest": true}})
	if code != http.StatusOK && code != http.StatusCreated {
		t.Errorf("REST send to %s: HTTP %d %s", queue, code, oneLine(string(body)))
	}
}

// ---- victim queues ----

// refill tops a queue up to victimMessages messages, creating it again if
// needed (an earlier case may have consumed or dropped them), so that every
// case starts from the same state.
func refill(t testing.TB, name string) {
	t.Helper()
	s := stateOf(t, name)
	if !s.Exists {
		makeQueue(t, name, victimMessages)
		return
	}
	if missing := victimMessages - s.Messages; missing > 0 {
		sqlDirect(t, "mq", fmt.Sprintf(`SELECT pgmq.send_batch('%s', array_fill('{"victim":true}'::jsonb, ARRAY[%d]))`, name, missing))
	}
}
