package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/puddle/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"mqstack/configs"
)

// Key identifies a pool: backend connections to one database of one backend,
// logged in as one role.
type Key struct {
	Backend, Database, Role string
}

func (k Key) String() string { return k.Backend + "/" + k.Database + "/" + k.Role }

// Options configure a Manager.
type Options struct {
	// Backends are the servers, in order; the first is the default.
	Backends []configs.BackendConfig
	Pool     configs.PoolConfig
	// MaxMessageBytes caps one message read from a backend (0: no cap).
	MaxMessageBytes int
	Log             *zap.Logger
	// Registerer receives the pool metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// LookupEnv resolves password_env entries; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Manager owns every pool. Pools are made on first use of their key.
type Manager struct {
	log       *zap.Logger
	maxBody   int
	lookupEnv func(string) (string, bool)
	metrics   *poolMetrics

	mu       sync.Mutex
	cfg      configs.PoolConfig
	backends []configs.BackendConfig
	pools    map[Key]*pool
	isClosed bool

	stop chan struct{}
	wg   sync.WaitGroup
}

type pool struct {
	key     Key
	m       *Manager
	backend configs.BackendConfig
	// p is swapped by Reload when the size changes; the old pool is closed
	// once its connections come back.
	p       *puddle.Pool[*Conn]
	size    int
	waiting int
	// The metric children every checkout updates, looked up once.
	checkoutOK   prometheus.Counter
	checkoutWait prometheus.Observer

	// hmu guards the share bookkeeping (share.go): held counts the
	// connections each holder (a token) has checked out, with an entry only
	// while the count is above 0, so it is bounded by the pool size;
	// waiters are the checkouts over their holder's share, first come
	// first served, each woken alone when a share comes free for it.
	// limit is ShareLimit of the pool's size and pool.max_share in force.
	hmu     sync.Mutex
	held    map[string]int
	waiters map[string][]*shareWaiter
	limit   int
}

// NewManager makes a manager and starts its health checker.
func NewManager(opts Options) (*Manager, error) {
	if len(opts.Backends) == 0 {
		return nil, errors.New("backend: no backends configured")
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	m := &Manager{
		log:       opts.Log,
		maxBody:   opts.MaxMessageBytes,
		lookupEnv: opts.LookupEnv,
		cfg:       opts.Pool,
		pools:     map[Key]*pool{},
		stop:      make(chan struct{}),
	}
	for _, b := range opts.Backends {
		m.backends = append(m.backends, b.WithBackendDefaults())
	}
	var err error
	if m.metrics, err = newPoolMetrics(m, opts.Registerer); err != nil {
		return nil, err
	}
	m.wg.Add(1)
	go m.healthLoop()
	return m, nil
}

// Backend returns the backend named name, or the default (first) backend
// when name names none; found tells which.
func (m *Manager) Backend(name string) (b configs.BackendConfig, found bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.backends {
		if b.Name == name {
			return b, true
		}
	}
	return m.backends[0], false
}

// Serves reports whether db names a backend or a backend's database.
func (m *Manager) Serves(db string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.backends {
		if b.Name == db || b.Database == db {
			return true
		}
	}
	return false
}

// SessionMode reports whether clients of key's pool keep their backend
// connection for their whole session.
func (m *Manager) SessionMode(key Key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mode := m.cfg.Mode
	for _, b := range m.backends {
		if b.Name == key.Backend && b.PoolMode != "" {
			mode = b.PoolMode
		}
	}
	return mode == "session" || slices.Contains(m.cfg.SessionRoles, key.Role)
}

// Config is the pool configuration in force.
func (m *Manager) Config() configs.PoolConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// Acquire checks out a connection of key's pool for holder, waiting at most
// pool.checkout_timeout (then *CheckoutTimeoutError). holder identifies the
// token the connection is for: no holder may have more than its share
// (pool.max_share, see ShareLimit) of the pool checked out at once, and a
// checkout over it waits, as for a full pool, until one of the holder's
// connections comes back. "" means no limit (the proxy's own uses).
// Connections that idled are checked for life first; dead ones are
// discarded.
func (m *Manager) Acquire(ctx context.Context, key Key, holder string) (*Conn, error) {
	start := time.Now()
	cfg := m.Config()
	// The checkout timer is made only when a client has to wait: most
	// checkouts find an idle connection, and a context with a deadline per
	// transaction showed in the proxy's CPU profile.
	var tctx context.Context
	var tcancel context.CancelFunc
	defer func() {
		if tcancel != nil {
			tcancel()
		}
	}()
	timer := func() context.Context {
		if tctx == nil {
			tctx, tcancel = context.WithDeadline(ctx, start.Add(cfg.CheckoutTimeout))
		}
		return tctx
	}
	p, _, err := m.pool(key)
	if err != nil {
		return nil, err
	}
	if holder != "" {
		if err := p.reserve(ctx, timer, holder); err != nil {
			var cte *CheckoutTimeoutError
			if errors.As(err, &cte) {
				cte.Key, cte.Timeout = key, cfg.CheckoutTimeout
				m.metrics.checkouts.WithLabelValues(key.Backend, "share_timeout").Inc()
			}
			return nil, err
		}
	}
	c, err := m.checkout(ctx, key, cfg, start, timer)
	if err != nil {
		if holder != "" {
			p.unreserve(holder)
		}
		return nil, err
	}
	c.holder = holder
	return c, nil
}

// checkout takes a connection of key's pool (the share, if any, is
// reserved).
func (m *Manager) checkout(ctx context.Context, key Key, cfg configs.PoolConfig, start time.Time, timer func() context.Context) (*Conn, error) {
	for attempt := 0; ; attempt++ {
		p, pp, err := m.pool(key)
		if err != nil {
			return nil, err
		}
		res, err := pp.TryAcquire(ctx)
		var tctx context.Context
		if errors.Is(err, puddle.ErrNotAvailable) {
			tctx = timer()
			m.mu.Lock()
			p.waiting++
			m.mu.Unlock()
			res, err = pp.Acquire(tctx)
			m.mu.Lock()
			p.waiting--
			m.mu.Unlock()
		}
		if err != nil {
			switch {
			case errors.Is(err, puddle.ErrClosedPool) && attempt < 3:
				continue // retired by Reload; take the new one
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(err, context.DeadlineExceeded) && tctx != nil && tctx.Err() != nil:
				m.metrics.checkouts.WithLabelValues(key.Backend, "timeout").Inc()
				return nil, &CheckoutTimeoutError{Key: key, Size: p.size, Timeout: cfg.CheckoutTimeout}
			}
			m.metrics.checkouts.WithLabelValues(key.Backend, "error").Inc()
			return nil, err
		}
		c := res.Value()
		c.res = res
		c.pool = p
		if m.expired(c) || (res.IdleDuration() > time.Second && !c.alive()) {
			m.closed(key, "broken")
			c.res = nil
			res.Destroy()
			continue
		}
		c.stmts.SetCap(cfg.StatementCacheSize)
		p.checkoutOK.Inc()
		p.checkoutWait.Observe(time.Since(start).Seconds())
		return c, nil
	}
}

func (m *Manager) pool(key Key) (*pool, *puddle.Pool[*Conn], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.isClosed {
		return nil, nil, ErrClosed
	}
	p := m.pools[key]
	if p == nil {
		var b configs.BackendConfig
		found := false
		for _, x := range m.backends {
			if x.Name == key.Backend {
				b, found = x, true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("backend %q is not configured", key.Backend)
		}
		p = &pool{key: key, m: m, backend: b, held: map[string]int{},
			waiters:      map[string][]*shareWaiter{},
			checkoutOK:   m.metrics.checkouts.WithLabelValues(key.Backend, "ok"),
			checkoutWait: m.metrics.wait.WithLabelValues(key.Backend)}
		var err error
		if p.p, err = m.newPuddle(p, m.cfg.Size); err != nil {
			return nil, nil, err
		}
		p.size = m.cfg.Size
		p.setLimit(p.size, m.cfg.MaxShare)
		m.pools[key] = p
	}
	return p, p.p, nil
}

func (m *Manager) newPuddle(p *pool, size int) (*puddle.Pool[*Conn], error) {
	return puddle.NewPool(&puddle.Config[*Conn]{
		Constructor: func(ctx context.Context) (*Conn, error) {
			c, err := dial(ctx, p.backend, p.key, m.password(p.backend), m.maxBody)
			if err != nil {
				return nil, err
			}
			c.stmts = NewStmtCache(m.Config().StatementCacheSize)
			c.pool = p
			return c, nil
		},
		Destructor: func(c *Conn) { c.nc.Close() },
		MaxSize:    int32(size),
	})
}

// ConnString returns how to log in to key's backend as key.Role outside the
// pools (for example the metrics depth query): a libpq connection string and
// the role's password ("" when none is configured).
func (m *Manager) ConnString(key Key) (conn string, password string, err error) {
	b, ok := m.Backend(key.Backend)
	if !ok {
		return "", "", fmt.Errorf("unknown backend %q", key.Backend)
	}
	pw, err := m.password(b)(key.Role)
	if err != nil {
		return "", "", err
	}
	return connString(b, key), pw, nil
}

func (m *Manager) password(b configs.BackendConfig) password {
	return func(role string) (string, error) {
		if pw, ok := b.Passwords[role]; ok {
			return string(pw), nil
		}
		if f, ok := b.PasswordFiles[role]; ok {
			return readPasswordFile(f)
		}
		if name, ok := b.PasswordEnv[role]; ok {
			pw, ok := m.lookupEnv(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			return pw, nil
		}
		return "", nil
	}
}

func (m *Manager) expired(c *Conn) bool {
	lt := m.Config().MaxLifetime
	return lt > 0 && time.Since(c.created) > lt
}

func (m *Manager) closed(key Key, reason string) {
	m.metrics.closed.WithLabelValues(key.Backend, reason).Inc()
}

// Reload applies new pool limits without dropping connections: pools whose
// size changed get a new puddle pool, and the old one closes its
// connections as they come back.
func (m *Manager) Reload(cfg configs.PoolConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = cfg
	for _, p := range m.pools {
		p.setLimit(cfg.Size, cfg.MaxShare)
		if p.size == cfg.Size {
			continue
		}
		np, err := m.newPuddle(p, cfg.Size)
		if err != nil {
			return err
		}
		old := p.p
		p.p, p.size = np, cfg.Size
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			old.Close()
		}()
	}
	m.log.Info("pool limits reloaded", zap.Int("size", cfg.Size), zap.Duration("checkout_timeout", cfg.CheckoutTimeout),
		zap.Float64("max_share", cfg.MaxShare))
	return nil
}

// Close stops the health checker and closes every pool, waiting for
// checked-out connections to come back.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.isClosed {
		m.mu.Unlock()
		return
	}
	m.isClosed = true
	pools := make([]*puddle.Pool[*Conn], 0, len(m.pools))
	for _, p := range m.pools {
		pools = append(pools, p.p)
	}
	m.mu.Unlock()
	close(m.stop)
	for _, p := range pools {
		p.Close()
	}
	m.wg.Wait()
}
