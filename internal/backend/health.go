package backend

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// The health checker: idle connections are expired, checked for life and
// pinged on pool.health_check_period.

func (m *Manager) healthLoop() {
	defer m.wg.Done()
	for {
		period := m.Config().HealthCheckPeriod
		select {
		case <-m.stop:
			return
		case <-time.After(period):
		}
		m.checkIdle(period)
	}
}

// checkIdle closes idle connections past idle_timeout or max_lifetime and
// pings those idle for more than a period.
func (m *Manager) checkIdle(period time.Duration) {
	cfg := m.Config()
	m.mu.Lock()
	var pools []*pool
	for _, p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	for _, p := range pools {
		m.mu.Lock()
		pp := p.p
		m.mu.Unlock()
		for _, res := range pp.AcquireAllIdle() {
			c := res.Value()
			switch {
			case cfg.IdleTimeout > 0 && res.IdleDuration() > cfg.IdleTimeout:
				m.closed(p.key, "idle")
				res.Destroy()
			case m.expired(c):
				m.closed(p.key, "lifetime")
				res.Destroy()
			case res.IdleDuration() > period && !m.ping(c):
				m.closed(p.key, "health")
				res.Destroy()
			default:
				res.ReleaseUnused()
			}
		}
	}
}

func (m *Manager) ping(c *Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Exec(ctx, ";"); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			m.log.Warn("backend health check failed", zap.Stringer("pool", c.Key), zap.Error(err))
		}
		return false
	}
	return !c.broken.Load()
}
