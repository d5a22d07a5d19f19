package backend

import "context"

// The share of a pool one holder (a token) may have checked out at once
// (pool.max_share): counted per pool under its own lock.

// ShareLimit is how many connections of a pool of size one holder may have
// checked out at once: max_share of it, rounded down, and at least one.
func ShareLimit(size int, maxShare float64) int {
	return max(1, int(maxShare*float64(size)))
}

// reserve counts one more connection for holder, waiting (under the
// context timer returns) while holder has its share of the pool checked
// out. On the timer's deadline it returns a *CheckoutTimeoutError with the
// share fields set (the caller fills in Key and Timeout).
func (p *pool) reserve(ctx context.Context, timer func() context.Context, holder string) error {
	p.hmu.Lock()
	for {
		n := p.held[holder]
		if n < p.limit {
			p.held[holder] = n + 1
			p.hmu.Unlock()
			return nil
		}
		if p.freed == nil {
			p.freed = make(chan struct{})
		}
		freed := p.freed
		p.hmu.Unlock()
		tctx := timer()
		p.m.mu.Lock()
		p.waiting++
		p.m.mu.Unlock()
		var timedOut bool
		select {
		case <-freed:
		case <-tctx.Done():
			timedOut = true
		}
		p.m.mu.Lock()
		p.waiting--
		size, share := p.size, p.m.cfg.MaxShare
		p.m.mu.Unlock()
		if timedOut {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &CheckoutTimeoutError{Size: size, Holder: holder, Held: n, MaxShare: share}
		}
		p.hmu.Lock()
	}
}

// setLimit applies a pool size or share change; waiting checkouts look
// again. m.mu is held.
func (p *pool) setLimit(size int, maxShare float64) {
	p.hmu.Lock()
	defer p.hmu.Unlock()
	p.limit = ShareLimit(size, maxShare)
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
}

// unreserve gives back one connection of holder's share.
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
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
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
