package notify

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

// waitTime bounds every wait for something the listener does.
const waitTime = 5 * time.Second

// testKey is the key of the tests' listeners: the cluster's default database.
var testKey = Key{Backend: "embedded", Database: "postgres"}

// recorder is a Subscriber that keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	got  []Notification
	lost [][]string
	keys []Key
}

func (r *recorder) Notify(n Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
}

func (r *recorder) Lost(key Key, channels []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lost = append(r.lost, slices.Clone(channels))
	r.keys = append(r.keys, key)
}

func (r *recorder) notes() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) payloads() []string {
	var p []string
	for _, n := range r.notes() {
		p = append(p, n.Payload)
	}
	return p
}

func (r *recorder) losses() ([][]string, []Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lost), slices.Clone(r.keys)
}

// waitNotes waits until r holds at least n notifications.
func (r *recorder) waitNotes(t *testing.T, n int) []Notification {
	t.Helper()
	testenv.WaitFor(t, waitTime, fmt.Sprintf("%d notifications", n), func() bool { return len(r.notes()) >= n })
	return r.notes()
}

// noLeaks checks, when the test ends, that every goroutine started after
// this call (the hub's, pgconn's) has ended. Call it before newHub, so that
// it runs after the hub's Close.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// newHub makes a hub whose listeners log in to c as the default role, with
// a registry of its own; it is closed when the test ends.
func newHub(t *testing.T, c *pgembed.Cluster) (*Hub, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	h := New(Options{
		ConnString: func(k Key) (string, string, error) { return c.ConnString(c.DefaultRole(), k.Database), "", nil },
		Log:        zaptest.NewLogger(t),
		Registerer: reg,
	})
	t.Cleanup(h.Close)
	return h, reg
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	t.Cleanup(cancel)
	return ctx
}

// subscribe subscribes sub and fails the test on an error.
func subscribe(t *testing.T, h *Hub, channel string, sub Subscriber) {
	t.Helper()
	if err := h.Subscribe(ctxT(t), testKey, channel, sub); err != nil {
		t.Fatalf("Subscribe(%q): %v", channel, err)
	}
}

// direct opens a superuser connection to c, closed when the test ends: the
// tests' sender of notifications and their window on pg_stat_activity.
func direct(t *testing.T, c *pgembed.Cluster) *pgconn.PgConn {
	t.Helper()
	pc, err := pgconn.Connect(ctxT(t), c.ConnString(pgembed.Superuser, testKey.Database))
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { pc.Close(context.Background()) })
	return pc
}

// query runs sql with args and returns the first column of each row.
func query(t *testing.T, pc *pgconn.PgConn, sql string, args ...string) []string {
	t.Helper()
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	res := pc.ExecParams(ctxT(t), sql, params, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatalf("%s: %v", sql, res.Err)
	}
	var col []string
	for _, row := range res.Rows {
		col = append(col, string(row[0]))
	}
	return col
}

// send commits pg_notify(channel, payload) on pc.
func send(t *testing.T, pc *pgconn.PgConn, channel, payload string) {
	t.Helper()
	query(t, pc, "SELECT pg_notify($1, $2)", channel, payload)
}

// listenerPIDs lists the backends of listener connections.
func listenerPIDs(t *testing.T, pc *pgconn.PgConn) []string {
	t.Helper()
	return query(t, pc, "SELECT pid::text FROM pg_stat_activity WHERE application_name = $1", ApplicationName)
}

// waitListeners waits until exactly n listener connections are in
// pg_stat_activity (a closed one leaves it shortly after the close) and
// returns their pids.
func waitListeners(t *testing.T, pc *pgconn.PgConn, n int) []string {
	t.Helper()
	var pids []string
	testenv.WaitFor(t, waitTime, fmt.Sprintf("%d listener connections in pg_stat_activity", n), func() bool {
		pids = listenerPIDs(t, pc)
		return len(pids) == n
	})
	return pids
}

func metric(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	return testenv.Metric(t, reg, "mqstack_notify_"+name, nil)
}
