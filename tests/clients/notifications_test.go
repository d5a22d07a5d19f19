package clients

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/internal/stack"
	"mqstack/internal/testenv"
)

// pgxListener is a pgx client of the proxy whose notifications are kept in
// the order pgconn reads them.
type pgxListener struct {
	conn *pgx.Conn
	// notes is appended by OnNotification, which pgconn calls from the
	// goroutine reading the connection: the test's.
	notes []*pgconn.Notification
}

func listenOverProxy(t *testing.T, addr, tok string, channels ...string) *pgxListener {
	t.Helper()
	host, port := hostPort(t, addr)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=mq dbname=postgres sslmode=disable password=%s", host, port, tok))
	if err != nil {
		t.Fatal(err)
	}
	l := &pgxListener{}
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) { l.notes = append(l.notes, n) }
	if l.conn, err = pgx.ConnectConfig(ctxFor(t, 15*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.conn.Close(context.Background()) })
	for _, ch := range channels {
		if _, err := l.conn.Exec(ctxFor(t, 15*time.Second), "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			t.Fatalf("LISTEN %q: %v", ch, err)
		}
	}
	return l
}

// next returns the oldest notification not yet taken, reading the
// connection until one arrives.
func (l *pgxListener) next(t *testing.T) *pgconn.Notification {
	t.Helper()
	if len(l.notes) == 0 {
		if err := l.conn.PgConn().WaitForNotification(ctxFor(t, 15*time.Second)); err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
	}
	n := l.notes[0]
	l.notes = l.notes[1:]
	return n
}

// mustExec runs sql on c and fails the test on error.
func mustExec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(ctxFor(t, 15*time.Second), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// metric is the stack's metric name summed over its labels.
func metric(t *testing.T, st *stack.Stack, name string) float64 {
	t.Helper()
	return testenv.Metric(t, st.Registry, name, nil)
}

// waitMetric waits until the stack's metric name reaches at least want.
func waitMetric(t *testing.T, st *stack.Stack, name string, want float64) {
	t.Helper()
	testenv.WaitFor(t, 15*time.Second, fmt.Sprintf("%s >= %v", name, want), func() bool {
		return metric(t, st, name) >= want
	})
}

// waitMetricDown waits until the stack's metric name is at most want.
func waitMetricDown(t *testing.T, st *stack.Stack, name string, want float64) {
	t.Helper()
	testenv.WaitFor(t, 15*time.Second, fmt.Sprintf("%s <= %v", name, want), func() bool {
		return metric(t, st, name) <= want
	})
}
