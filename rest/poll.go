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
// waiting. A send through this process to the queue wakes the wait at once,
// and so does, with a Hub, the queue's insert notification (when pgmq's
// enable_notify_insert is on for it), whoever sent the message;
// poll_interval_ms bounds the wait for other sends. As pgmq: the deadline is
// checked before every read, so max_poll_seconds <= 0 reads nothing; the
// first read that finds messages is returned as it is.
func (s *Server) poll(ctx context.Context, id auth.Identity, c *call, queue string) (result, error) {
	empty := result{body: []byte("[]")}
	if c.pollSeconds <= 0 {
		return empty, nil
	}
	deadline, interval := s.pollTimes(c)
	// LISTEN before the first read, for the same reason as the notifier's
	// subscription below; once per call, as a LISTEN costs a round trip on
	// the shared listener connection when the channel is new.
	watch, unwatch, err := s.watchInserts(ctx, id, queue, deadline)
	if err != nil {
		return result{}, err
	}
	defer unwatch()
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
		watch.clear()
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
		if timer == nil {
			timer = time.NewTimer(min(left, interval))
		} else {
			timer.Reset(min(left, interval))
		}
		select {
		case <-woken:
			timer.Stop() // Go 1.23+: no stale tick after Stop or Reset
		case <-watch.woken():
			timer.Stop()
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

// pollTimes is when a poll gives up (max_poll_seconds, capped by
// rest.max_poll_seconds) and how long it waits between reads at most.
func (s *Server) pollTimes(c *call) (deadline time.Time, interval time.Duration) {
	wait := time.Duration(c.pollSeconds) * time.Second
	wait = min(wait, time.Duration(s.cfg.MaxPollSeconds)*time.Second)
	interval = time.Duration(c.pollIntervalMS) * time.Millisecond
	return time.Now().Add(wait), max(interval, minPollInterval)
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
