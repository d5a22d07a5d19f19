// Package stack wires mqstack's front ends together: the token verifier, the
// backend pools, the router and the metrics they share, the wire proxy, the
// REST adapter and the /metrics endpoint. `mqstack up`, `mqstack serve` and
// the end-to-end tests and benchmarks all start the same Stack, so what the
// tests measure is what runs.
//
// It imports every front-end package; nothing imports it but cmd and tests.
package stack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/console"
	"mqstack/internal/backend"
	"mqstack/internal/metrics"
	"mqstack/internal/notify"
	"mqstack/proxy"
	"mqstack/rest"
	"mqstack/router"
)

// Options are what a Stack is made from.
type Options struct {
	Config *configs.Validated
	// Backends are the Postgres servers served; the first is the default.
	Backends []configs.BackendConfig
	// Auth is the verification policy (for `up`, auth.EmbeddedConfig).
	Auth configs.AuthConfig
	// DevTLSDir, when set and no certificate is configured, is where a
	// self-signed certificate is made for the proxy (`mqstack up`).
	DevTLSDir string
	// DefaultRole is the role /readyz and the depth query use when
	// metrics.role is not set.
	DefaultRole string
	Logger      *zap.Logger
	// ConsoleInterval is how often the console samples the counters it
	// charts (default 5s; tests shorten it).
	ConsoleInterval time.Duration
}

// Stack is the running front ends.
type Stack struct {
	Verifier *auth.Verifier
	Backends *backend.Manager
	Router   *router.Router
	Queues   *metrics.Queues
	Service  *metrics.Service
	Registry *prometheus.Registry
	Proxy    *proxy.Server
	// Hub is the shared LISTEN connection per (backend, database).
	Hub  *notify.Hub
	REST *rest.Server
	// History is the console's sampled counters; nil when rest.console is
	// off.
	History *console.History

	log       *zap.Logger
	proxyLn   net.Listener
	restLn    net.Listener
	metricsLn net.Listener
	metrics   *http.Server
	depthDB   *pgxpool.Pool

	errc     chan error
	stopOnce sync.Once
}

// Start builds the stack and starts serving on the configured addresses.
// Listen failures are configs.Errors (exit status 2).
func Start(opts Options) (_ *Stack, err error) {
	v := opts.Config
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if len(opts.Backends) == 0 {
		return nil, &configs.Error{Msg: "no backends to serve"}
	}
	s := &Stack{log: log, errc: make(chan error, 3), Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.Router = router.New(10000)
	s.Queues = metrics.NewQueues(s.Registry, v.Metrics.MaxQueues)
	s.Service = metrics.NewService(s.Registry, s.Router.CacheStats)

	if s.Verifier, err = auth.NewVerifier(opts.Auth, log.Named("auth")); err != nil {
		return nil, err
	}
	tlsCfg, err := proxyTLS(v, opts.DevTLSDir)
	if err != nil {
		return nil, err
	}
	if s.Backends, err = backend.NewManager(backend.Options{
		Backends:        opts.Backends,
		Pool:            v.Pool,
		MaxMessageBytes: int(v.Proxy.MaxMessageBytes),
		Log:             log.Named("pool"),
		Registerer:      s.Registry,
	}); err != nil {
		return nil, err
	}
	s.Hub = s.newHub(v.Proxy.ListenerRole, opts.DefaultRole, log)
	if s.Proxy, err = proxy.New(proxy.Options{Proxy: v.Proxy, Backends: s.Backends, Verifier: s.Verifier, TLS: tlsCfg,
		Log: log.Named("proxy"), Registerer: s.Registry, Router: s.Router, Recorder: newProxyRecorder(s.Queues, s.Service),
		Hub: s.Hub,
		// Sends committed through the proxy wake REST long polls at once
		// (REST is built below; the hook runs only once serving).
		OnSend: func(queue string) { s.REST.NotifySend(queue) }}); err != nil {
		return nil, err
	}
	role := v.Metrics.Role
	if role == "" {
		role = opts.DefaultRole
	}
	consoleHandler, consoleStats := s.consoleParts(v.REST.Console, opts.ConsoleInterval)
	if s.REST, err = rest.New(rest.Options{
		Config:    v.REST,
		Verifier:  s.Verifier,
		Pools:     rest.BackendPools{Manager: s.Backends, Backend: opts.Backends[0].Name, Database: opts.Backends[0].Database},
		ReadyRole: opts.DefaultRole,
		Router:    s.Router,
		Metrics:   restRecorder{q: s.Queues, front: s.Service.Front("rest", nil, nil)},
		Logger:    log.Named("rest"),
		Console:   consoleHandler,
		Stats:     consoleStats,
		Hub:       s.Hub,
	}); err != nil {
		return nil, err
	}
	if err := s.startDepth(opts.Backends[0], role, v.Metrics); err != nil {
		return nil, err
	}

	if s.proxyLn, err = listen("proxy.listen", v.Proxy.Listen); err != nil {
		return nil, err
	}
	if s.restLn, err = listen("rest.listen", v.REST.Listen); err != nil {
		return nil, err
	}
	if v.Metrics.Listen != "" {
		if s.metricsLn, err = listen("metrics.listen", v.Metrics.Listen); err != nil {
			return nil, err
		}
	}
	s.serve()
	if s.History != nil {
		s.History.Start()
	}
	log.Info("mqstack serving", zap.String("proxy", s.ProxyAddr()), zap.Bool("tls", tlsCfg != nil),
		zap.String("rest", s.RESTAddr()), zap.String("metrics", s.MetricsAddr()),
		zap.String("pool_mode", v.Pool.Mode), zap.Int("pool_size", v.Pool.Size))
	return s, nil
}

func proxyTLS(v *configs.Validated, devDir string) (*tls.Config, error) {
	cert, key := v.Proxy.TLSCertFile, v.Proxy.TLSKeyFile
	if cert == "" && devDir != "" {
		var err error
		if cert, key, err = proxy.EnsureSelfSigned(devDir); err != nil {
			return nil, err
		}
	}
	if cert == "" {
		return nil, nil
	}
	cfg, err := proxy.TLSConfig(cert, key)
	if err != nil {
		return nil, &configs.Error{Msg: err.Error()}
	}
	return cfg, nil
}

// startDepth gives the scrape-time depth collector its own small pool,
// logged in as the metrics role.
func (s *Stack) startDepth(b configs.BackendConfig, role string, m configs.MetricsConfig) error {
	cs, pw, err := s.Backends.ConnString(backend.Key{Backend: b.Name, Database: b.Database, Role: role})
	if err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(cs)
	if err != nil {
		return err
	}
	if pw != "" {
		cfg.ConnConfig.Password = pw
	}
	cfg.MaxConns = 1
	cfg.MaxConnIdleTime = time.Minute
	if s.depthDB, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		return err
	}
	s.Registry.MustRegister(metrics.NewDepthCollector(s.depthDB, s.log.Named("depth"), m.MaxQueues, m.DepthTimeout, m.DepthCacheTTL).
		LabelQueues(s.Queues))
	return nil
}

func listen(key, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &configs.Error{Msg: fmt.Sprintf("%s %s: %v (another mqstack or service may hold the port: choose another %s)", key, addr, err, key)}
	}
	return ln, nil
}

func (s *Stack) serve() {
	go func() {
		err := s.Proxy.Serve(s.proxyLn)
		if errors.Is(err, proxy.ErrServerClosed) {
			err = nil
		}
		if err != nil {
			s.errc <- fmt.Errorf("proxy: %w", err)
		}
	}()
	go func() {
		if err := s.REST.Serve(s.restLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("rest: %w", err)
		}
	}()
	if s.metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry, Timeout: 30 * time.Second}))
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := s.metrics.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
	}
}

// Err delivers the first failure of a server after Start.
func (s *Stack) Err() <-chan error { return s.errc }

// ProxyAddr, RESTAddr and MetricsAddr are the bound addresses ("" if none).
func (s *Stack) ProxyAddr() string   { return addr(s.proxyLn) }
func (s *Stack) RESTAddr() string    { return addr(s.restLn) }
func (s *Stack) MetricsAddr() string { return addr(s.metricsLn) }

func addr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// Reload applies a reloaded configuration (SIGHUP): token keys, pool limits
// and proxy limits; open connections stay.
func (s *Stack) Reload(v *configs.Validated) {
	if err := s.Verifier.Reload(); err != nil {
		s.log.Error("auth keys not reloaded", zap.Error(err))
	}
	if err := s.Backends.Reload(v.Pool); err != nil {
		s.log.Error("pool limits not reloaded", zap.Error(err))
	}
	s.Proxy.Reload(v.Proxy)
}

// Shutdown stops accepting, lets transactions and requests in flight finish
// within timeout, then closes everything.
func (s *Stack) Shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := s.Proxy.Shutdown(ctx); err != nil {
			s.log.Warn("proxy drain cut short", zap.Duration("shutdown_timeout", timeout))
		}
	}()
	go func() {
		defer wg.Done()
		if err := s.REST.Shutdown(ctx); err != nil {
			s.log.Warn("REST drain cut short", zap.Duration("shutdown_timeout", timeout))
		}
	}()
	wg.Wait()
	s.close()
}

// close releases what Start made; safe on a half-built stack.
func (s *Stack) close() {
	s.stopOnce.Do(func() {
		if s.History != nil {
			s.History.Stop()
		}
		for _, ln := range []net.Listener{s.proxyLn, s.restLn} {
			if ln != nil {
				ln.Close()
			}
		}
		if s.metrics != nil {
			s.metrics.Close()
		} else if s.metricsLn != nil {
			s.metricsLn.Close()
		}
		if s.depthDB != nil {
			s.depthDB.Close()
		}
		if s.Hub != nil {
			s.Hub.Close()
		}
		if s.Backends != nil {
			s.Backends.Close()
		}
	})
}

// newHub makes the shared LISTEN connections, logged in as the listener
// role (proxy.listener_role, else the default role).
func (s *Stack) newHub(role, defaultRole string, log *zap.Logger) *notify.Hub {
	if role == "" {
		role = defaultRole
	}
	return notify.New(notify.Options{Log: log.Named("notify"), Registerer: s.Registry,
		ConnString: func(k notify.Key) (string, string, error) {
			return s.Backends.ConnString(backend.Key{Backend: k.Backend, Database: k.Database, Role: role})
		}})
}
