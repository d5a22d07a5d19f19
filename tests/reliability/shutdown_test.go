package reliability

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/internal/testenv"
)

// TestGracefulShutdownUnderLoad: Shutdown (what SIGTERM runs) while 32
// clients work: transactions in flight finish, new connections are refused
// with a clear error, Shutdown returns within shutdown_timeout, and every
// acknowledged send is in the tables.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	const shutdownTimeout = 5 * time.Second
	e := newEnv(t, envOptions{PoolSize: 8, ShutdownTimeout: shutdownTimeout})
	l := startLoad(t, e, "shutdown_load", mix{ProxyProducers: 4, ProxyConsumers: 4, RESTProducers: 4, RESTConsumers: 4})

	// 16 more clients run slow transactions: BEGIN, send, sleep, send, COMMIT.
	var shutdownAt atomic.Pointer[time.Time]
	var inFlight, committed, brokenInFlight atomic.Int64
	var brokenErr atomic.Value
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{l: l, name: fmt.Sprintf("tx%d", i), simple: i%2 == 0}
			defer w.close()
			for shutdownAt.Load() == nil || time.Since(*shutdownAt.Load()) < time.Second {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				began, err := w.slowTx(ctx, &shutdownAt)
				cancel()
				if began {
					inFlight.Add(1)
					if err != nil {
						brokenInFlight.Add(1)
						brokenErr.CompareAndSwap(nil, err.Error())
					} else {
						committed.Add(1)
					}
				}
				if err != nil {
					w.failed(err)
				}
			}
		}()
	}
	// Shut down once the load is in full swing and every slow client is in
	// its loop of transactions (so some are open at shutdown).
	testenv.WaitFor(t, 60*time.Second, "200 acknowledged sends and 16 slow transactions committed", func() bool {
		acked, _ := l.led.progress()
		return acked >= 200 && committed.Load() >= 16
	})

	now := time.Now()
	shutdownAt.Store(&now)
	done := make(chan time.Duration, 1)
	go func() { done <- e.shutdown(shutdownTimeout) }()

	// New connections are refused with a clear error once Shutdown has
	// closed the proxy's listener (its first step).
	testenv.WaitFor(t, 5*time.Second, "Shutdown to close the proxy's listener", func() bool {
		nc, err := net.DialTimeout("tcp", e.st.ProxyAddr(), time.Second)
		if err != nil {
			return true
		}
		nc.Close()
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := pgx.Connect(ctx, e.connString())
	cancel()
	if err == nil {
		t.Errorf("a new client connected during shutdown")
	} else if !refusedClearly(err) {
		t.Errorf("new client during shutdown: unclear error %v", err)
	}

	took := <-done
	wg.Wait()
	l.stop()
	t.Logf("Shutdown took %s (shutdown_timeout %s); in-flight transactions at shutdown: %d committed, %d broken; load errors: %s",
		took, shutdownTimeout, committed.Load(), brokenInFlight.Load(), l.errSummary())
	if took > shutdownTimeout+2*time.Second {
		t.Errorf("Shutdown took %s, shutdown_timeout is %s", took, shutdownTimeout)
	}
	if brokenInFlight.Load() > 0 {
		t.Errorf("%d transactions open at shutdown did not finish: %v", brokenInFlight.Load(), brokenErr.Load())
	}
	if inFlight.Load() == 0 {
		t.Errorf("no transaction was open at shutdown: the test proved nothing")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dc, err := e.direct(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close(context.Background())
	c := l.account(t, dc)
	t.Logf("graceful shutdown: %s", c)
	if !c.ok() {
		t.Fatalf("accounting after shutdown: %s\n  %s", c, c.problems())
	}
	if c.Acked < 100 {
		t.Fatalf("too little traffic: %s", c)
	}
	var n int
	dc.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'mq' AND backend_type = 'client backend'").Scan(&n)
	if n != 0 {
		t.Errorf("%d backend connections still open after Shutdown", n)
	}
}

// slowTx runs one slow transaction of two sends; began reports whether
// BEGIN succeeded before Shutdown started (the transaction was in flight).
func (w *worker) slowTx(ctx context.Context, shutdownAt *atomic.Pointer[time.Time]) (began bool, err error) {
	l := w.l
	c, err := w.get(ctx)
	if err != nil {
		return false, err
	}
	uids := []string{l.led.uid(w.name), l.led.uid(w.name)}
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		l.led.sent(uids, nil, failed)
		return false, err
	}
	began = shutdownAt.Load() == nil
	ids := make([]int64, 2)
	for i, u := range uids {
		if err := c.QueryRow(ctx, "SELECT pgmq.send($1, $2::jsonb)", l.queue, body(u)).Scan(&ids[i]); err != nil {
			c.Exec(context.Background(), "ROLLBACK")
			l.led.sent(uids, nil, failed)
			return began, err
		}
		if i == 0 {
			time.Sleep(300 * time.Millisecond) // a slow transaction, open when Shutdown comes: what is tested
		}
	}
	if _, err := c.Exec(ctx, "COMMIT"); err != nil {
		l.led.sent(uids, nil, unknown)
		return began, err
	}
	l.led.sent(uids, ids, acked)
	return began, nil
}

// refusedClearly: the listener is closed (connection refused) or the proxy
// says it is shutting down (57P01/57P03).
func refusedClearly(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P01" || pe.Code == "57P03"
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
