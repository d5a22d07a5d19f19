package backend

import (
	"context"
	"slices"
)

// The share of a pool one holder (a token) may have checked out at once
// (pool.max_share): counted per pool under its own lock.

// ShareLimit is how many connections of a pool of size one holder may have
// checked out at once: max_share of it, rounded down, and at least one.
func ShareLimit(size int, maxShare float64) int {
	return max(1, int(maxShare*float64(size)))
}

// shareWaiter is a checkout waiting for its holder's share. A share that
// comes free is handed to the first waiter of that holder: ready is closed
// under hmu, and the waiter owns the share from then on. (Waking every
// waiter to look again cost a thundering herd on each release when many
// clients of one token wait.)
type shareWaiter struct {
	ready chan struct{}
}

// granted reports whether the waiter was handed a share. hmu is held.
func (w *shareWaiter) granted() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// reserve counts one more connection for holder, waiting (under the
// context timer returns) while holder has its share of the pool checked
// out. On the timer's deadline it returns a *CheckoutTimeoutError with the
// share fields set (the caller fills in Key and Timeout).
func (p *pool) reserve(ctx context.Context, timer func() context.Context, holder string) error {
	p.hmu.Lock()
	n := p.held[holder]
	if n < p.limit && len(p.waiters[holder]) == 0 {
		p.held[holder] = n + 1
		p.hmu.Unlock()
		return nil
	}
	w := &shareWaiter{ready: make(chan struct{})}
	p.waiters[holder] = append(p.waiters[holder], w)
	p.hmu.Unlock()

	tctx := timer()
	p.m.mu.Lock()
	p.waiting++
	p.m.mu.Unlock()
	select {
	case <-w.ready:
	case <-tctx.Done():
	}
	p.m.mu.Lock()
	p.waiting--
	size, share := p.size, p.m.cfg.MaxShare
	p.m.mu.Unlock()

	p.hmu.Lock()
	defer p.hmu.Unlock()
	if w.granted() { // also when the deadline raced the grant: the share is ours
		return nil
	}
	p.dropWaiterLocked(holder, w)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &CheckoutTimeoutError{Size: size, Holder: holder, Held: p.held[holder], MaxShare: share}
}

// dropWaiterLocked removes w from holder's waiters. hmu is held.
func (p *pool) dropWaiterLocked(holder string, w *shareWaiter) {
	ws := slices.DeleteFunc(p.waiters[holder], func(x *shareWaiter) bool { return x == w })
	if len(ws) == 0 {
		delete(p.waiters, holder)
		return
	}
	p.waiters[holder] = ws
}

// grantLocked hands holder's free shares to its first waiters. hmu is held.
func (p *pool) grantLocked(holder string) {
	ws := p.waiters[holder]
	i := 0
	for ; i < len(ws) && p.held[holder] < p.limit; i++ {
		p.held[holder]++
		close(ws[i].ready)
	}
	if i == len(ws) {
		delete(p.waiters, holder)
	} else if i > 0 {
		p.waiters[holder] = slices.Delete(ws, 0, i)
	}
}

// setLimit applies a pool size or share change; waiting checkouts that now
// fit are granted. m.mu is held.
func (p *pool) setLimit(size int, maxShare float64) {
	p.hmu.Lock()
	defer p.hmu.Unlock()
	p.limit = ShareLimit(size, maxShare)
	for holder := range p.waiters {
		p.grantLocked(holder)
	}
}

// unreserve gives back one connection of holder's share, to holder's first
// waiter if it has one.
func (p *pool) unreserve(holder string) {
	p.hmu.Lock()
	defer p.hmu.Unlock()
	n := p.held[holder]
	switch {
	case n <= 0:
		panic("BUG: a share released that was not reserved")
	case n == 1:
		delete(p.held, holder)
	default:
		p.held[holder] = n - 1
	}
	p.grantLocked(holder)
}

// Held is how many connections of key's pool holder has checked out.
func (m *Manager) Held(key Key, holder string) int {
	m.mu.Lock()
	p := m.pools[key]
	m.mu.Unlock()
	if p == nil {
		return 0
	}
	p.hmu.Lock()
	defer p.hmu.Unlock()
	return p.held[holder]
}
