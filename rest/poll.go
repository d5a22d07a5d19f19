package rest

import (
	"context"
	"strings"
	"sync"
	"time"

	"mqstack/auth"
)

// minPollInterval bounds poll_interval_ms from below, so a client asking for
// 0 does not turn its wait into a busy loop on the backend.
const minPollInterval = 10 * time.Millisecond

// poll is read_with_poll and the read_grouped*_with_poll calls: short single
// reads with waits between them, holding no backend connection while
// waiting. A send through this process to the queue wakes the wait at once;
// poll_interval_ms bounds it for sends made elsewhere. As pgmq: the deadline
// is checked before every read, so max_poll_seconds <= 0 reads nothing; the
// first read that finds messages is returned as it is.
func (s *Server) poll(ctx context.Context, id auth.Identity, c *call, queue string) (result, error) {
	empty := result{body: []byte("[]")}
	if c.pollSeconds <= 0 {
		return empty, nil
	}
	wait := time.Duration(c.pollSeconds) * time.Second
	if max := time.Duration(s.cfg.MaxPollSeconds) * time.Second; wait > max {
		wait = max
	}
	deadline := time.Now().Add(wait)
	interval := time.Duration(c.pollIntervalMS) * time.Millisecond
	if interval < minPollInterval {
		interval = minPollInterval
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Subscribe before reading: a send that commits after the read
		// found nothing has closed this channel by the time we wait on it.
		woken, done := s.waiters.subscribe(queue)
		res, err := s.execute(ctx, id, c)
		if err != nil || res.rows > 0 {
			done()
			return res, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			done()
			return res, nil
		}
		if left > interval {
			left = interval
		}
		if timer == nil {
			timer = time.NewTimer(left)
		} else {
			timer.Reset(left)
		}
		select {
		case <-woken:
			timer.Stop() // Go 1.23+: no stale tick after Stop or Reset
		case <-timer.C:
		case <-s.stopping:
			done()
			return empty, nil
		case <-ctx.Done():
			done()
			return empty, ctx.Err()
		}
		done()
		if time.Now().After(deadline) {
			return empty, nil
		}
	}
}

// notifier wakes long polls per queue. Queue names are folded to lower case:
// pgmq's tables are, so "Orders" and "orders" share messages.
type notifier struct {
	mu     sync.Mutex
	queues map[string]*waitList
}

// waitList is the waiters of one queue: closing ch wakes them all.
type waitList struct {
	ch chan struct{}
	n  int
}

func newNotifier() *notifier { return &notifier{queues: map[string]*waitList{}} }

// subscribe returns a channel closed by the next notify of queue, and the
// function to call when the caller stops waiting.
func (n *notifier) subscribe(queue string) (<-chan struct{}, func()) {
	key := strings.ToLower(queue)
	n.mu.Lock()
	wl := n.queues[key]
	if wl == nil {
		wl = &waitList{ch: make(chan struct{})}
		n.queues[key] = wl
	}
	wl.n++
	n.mu.Unlock()
	return wl.ch, func() {
		n.mu.Lock()
		wl.n--
		if wl.n == 0 && n.queues[key] == wl {
			delete(n.queues, key)
		}
		n.mu.Unlock()
	}
}

// notify wakes every waiter of queue.
func (n *notifier) notify(queue string) {
	key := strings.ToLower(queue)
	n.mu.Lock()
	if wl := n.queues[key]; wl != nil {
		close(wl.ch)
		delete(n.queues, key)
	}
	n.mu.Unlock()
}

// notifyAll wakes every waiter.
func (n *notifier) notifyAll() {
	n.mu.Lock()
	for key, wl := range n.queues {
		close(wl.ch)
		delete(n.queues, key)
	}
	n.mu.Unlock()
}

// any reports whether anyone waits (a send skips waking when nobody does).
func (n *notifier) any() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queues) > 0
}
