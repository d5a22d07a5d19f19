package clients

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// backendSampler counts the role's backends in pg_stat_activity until it is
// stopped, keeping the largest counts seen: a bound on the backends must
// hold at every moment, not only at the end.
type backendSampler struct {
	stopc, done chan struct{}
	// Written by the sampling goroutine, read after done is closed.
	maxPooled, maxListeners, samples int
	err                              error
}

// sampleBackends samples through c (which it owns until stop returns)
// every 10ms.
func sampleBackends(t *testing.T, c *pgx.Conn) *backendSampler {
	s := &backendSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go s.run(c)
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *backendSampler) run(c *pgx.Conn) {
	defer close(s.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		pooled, listeners, err := queryRoleBackends(ctx, c)
		cancel()
		if err != nil {
			s.err = err
			return
		}
		s.samples++
		s.maxPooled = max(s.maxPooled, pooled)
		s.maxListeners = max(s.maxListeners, listeners)
		select {
		case <-s.stopc:
			return
		case <-tick.C:
		}
	}
}

// stop ends the sampling (after one more sample) and returns the largest
// counts seen.
func (s *backendSampler) stop() (pooled, listeners, samples int, err error) {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
	return s.maxPooled, s.maxListeners, s.samples, s.err
}

// worker is a client that does not listen: it sends a message to its queue
// and reads it back, over and over, until stopped.
type worker struct {
	conn        *pgx.Conn
	stopc, done chan struct{}
	// Written by the worker's goroutine, read after done is closed.
	cycles int
	err    error
}

func startWorker(t *testing.T, addr, tok, queue string) *worker {
	t.Helper()
	c, err := proxyConnect(t, addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{conn: c, stopc: make(chan struct{}), done: make(chan struct{})}
	go w.run(queue)
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *worker) run(queue string) {
	defer close(w.done)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := sendAndRead(ctx, w.conn, queue)
		cancel()
		if err != nil {
			w.err = err
			return
		}
		w.cycles++
		select {
		case <-w.stopc:
			return
		default:
		}
	}
}

// stop ends the work after the cycle under way, closes the connection and
// returns how many cycles completed and the error that ended them, if any.
func (w *worker) stop() (int, error) {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	w.conn.Close(context.Background())
	return w.cycles, w.err
}

// sendAndRead sends a message, reads it back and deletes it.
func sendAndRead(ctx context.Context, c *pgx.Conn, queue string) error {
	var sent, read int64
	if err := c.QueryRow(ctx, `SELECT pgmq.send($1, '{"from":"worker"}')`, queue).Scan(&sent); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if err := c.QueryRow(ctx, "SELECT msg_id FROM pgmq.read($1, 30, 1)", queue).Scan(&read); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if read != sent {
		return fmt.Errorf("read message %d, sent %d", read, sent)
	}
	if _, err := c.Exec(ctx, "SELECT pgmq.delete($1, $2::bigint)", queue, sent); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}
