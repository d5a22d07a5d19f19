package backend

import (
	"context"
	"errors"
	"testing"
	"time"

	"mqstack/internal/testenv"
)

// A share that comes free goes to the first waiter of its holder, one
// waiter per release; a waiter whose deadline passes leaves the queue
// without taking a share. (Only the bookkeeping: TestHolderShare checks
// shares against real connections.)
func TestShareWaitersFirstComeFirstServed(t *testing.T) {
	p := &pool{m: &Manager{}, held: map[string]int{}, waiters: map[string][]*shareWaiter{}, limit: 1}
	ctx := context.Background()
	noTimer := func() context.Context { return ctx }
	if err := p.reserve(ctx, noTimer, "a"); err != nil {
		t.Fatal(err)
	}
	waiters := func() int {
		p.hmu.Lock()
		defer p.hmu.Unlock()
		return len(p.waiters["a"])
	}
	got := make(chan int, 3)
	for i := range 3 {
		go func() {
			if err := p.reserve(ctx, noTimer, "a"); err == nil {
				got <- i
			}
		}()
		testenv.WaitFor(t, 5*time.Second, "the waiter to queue", func() bool { return waiters() == i+1 })
	}
	// One more, whose deadline has passed: it leaves the queue.
	expired, cancel := context.WithDeadline(ctx, time.Now())
	defer cancel()
	err := p.reserve(ctx, func() context.Context { return expired }, "a")
	var cte *CheckoutTimeoutError
	if !errors.As(err, &cte) || cte.Held != 1 {
		t.Fatalf("expired waiter: %v", err)
	}
	if n := waiters(); n != 3 {
		t.Fatalf("%d waiters after the expired one left, want 3", n)
	}
	// Another holder is not held up by a's queue.
	if err := p.reserve(ctx, noTimer, "b"); err != nil {
		t.Fatal(err)
	}
	for want := range 3 {
		p.unreserve("a")
		if i := <-got; i != want {
			t.Fatalf("release %d went to waiter %d", want, i)
		}
		select {
		case i := <-got:
			t.Fatalf("release %d woke a second waiter (%d)", want, i)
		default:
		}
	}
	if h := p.held["a"]; h != 1 || waiters() != 0 {
		t.Fatalf("held %d, %d waiters; want 1 and 0", h, waiters())
	}
}
