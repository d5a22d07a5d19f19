package rest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/errorid"
	"mqstack/internal/notify"
	"mqstack/router"
)

// Verifier checks bearer tokens; *auth.Verifier is the implementation, the
// same instance the proxy uses.
type Verifier interface {
	Verify(token string) (auth.Identity, error)
	CheckRole(role string, isSuperuser bool) error
}

// Options are what a Server needs.
type Options struct {
	// Config is the rest section (validated).
	Config configs.RESTConfig
	// Verifier verifies tokens. Required.
	Verifier Verifier
	// Pools gives backend connections of a role. Required.
	Pools Pools
	// ReadyRole is the role /readyz checks a backend with. Required.
	ReadyRole string
	// Router classifies the statements REST builds; share the proxy's to
	// share its cache. Default: a private one.
	Router *router.Router
	// Metrics records every call. Default: nothing is recorded.
	Metrics Recorder
	// Logger logs requests at debug, refusals at info and server errors at
	// error. Default: no logging.
	Logger *zap.Logger
	// Console, when set, serves the web console under /console/
	// (console.Handler); Stats feeds its charts and service page. Both nil:
	// no console (rest.console: false); the browse endpoints stay.
	Console http.Handler
	Stats   Stats
	// Hub, when set, wakes long polls on their queue's insert
	// notifications (pgmq.enable_notify_insert), whoever sent the message;
	// Pools must then implement ListenKey (BackendPools does). Default:
	// only sends through this process wake a poll early.
	Hub Hub
}

// Server serves the HTTP API.
type Server struct {
	cfg       configs.RESTConfig
	verifier  Verifier
	pools     Pools
	readyRole string
	router    *router.Router
	metrics   Recorder
	log       *zap.Logger
	handler   http.Handler
	waiters   *notifier
	stats     Stats
	hub       Hub
	hubKey    notify.Key // the listener of the database Pools reach

	// stopping is closed by Shutdown: long polls answer at once.
	stopping chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	servers []*http.Server
}

// New makes a Server; it serves nothing until Serve (or Handler is mounted).
func New(o Options) (*Server, error) {
	if o.Verifier == nil || o.Pools == nil {
		return nil, errors.New("rest: Verifier and Pools are required")
	}
	if o.ReadyRole == "" {
		return nil, errors.New("rest: ReadyRole is required")
	}
	if o.Config.MaxBodyBytes <= 0 {
		return nil, errors.New("rest: max_body_bytes must be positive")
	}
	s := &Server{
		cfg: o.Config, verifier: o.Verifier, pools: o.Pools, readyRole: o.ReadyRole,
		router: o.Router, metrics: o.Metrics, log: o.Logger, stats: o.Stats,
		waiters: newNotifier(), stopping: make(chan struct{}),
	}
	if o.Hub != nil {
		k, ok := o.Pools.(listenKeyer)
		if !ok {
			return nil, errors.New("rest: a Hub needs Pools that name their backend and database (ListenKey)")
		}
		s.hub, s.hubKey = o.Hub, k.ListenKey()
	}
	if s.router == nil {
		s.router = router.New(1024)
	}
	if s.metrics == nil {
		s.metrics = nopRecorder{}
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.HandleFunc("GET /pgmq/v1/{$}", s.serveOpenAPI)
	mux.HandleFunc("GET /pgmq/v1", s.serveOpenAPI)
	mux.HandleFunc("GET /pgmq/v1/openapi.json", s.serveOpenAPI)
	mux.HandleFunc("/pgmq/v1/{function}", s.serveCall)
	s.routeBrowse(mux, o.Console)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		setRequestID(w, r)
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "PGRST125", Message: "no such path: the API is under /pgmq/v1/ (and /mqstack/v1/ for the console)"})
	})
	s.handler = mux
	return s, nil
}

// Handler serves every path of the API.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln with the configured timeouts until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	s.mu.Lock()
	select {
	case <-s.stopping:
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	default:
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// NotifySend wakes the long polls waiting on queue, as a send through this
// process does; "" wakes every waiting poll (a topic send, whose queues are
// not known). The wiring calls it for sends committed through the proxy.
func (s *Server) NotifySend(queue string) {
	if !s.waiters.any() {
		return
	}
	if queue == "" {
		s.waiters.notifyAll()
		return
	}
	s.waiters.notify(queue)
}

// Shutdown ends waiting long polls (they answer with what they have, []),
// stops accepting, and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.mu.Lock()
	servers := append([]*http.Server(nil), s.servers...)
	s.mu.Unlock()
	var first error
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	writeBody(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

// serveReady answers 200 when a backend runs a query for ReadyRole.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	reqID := setRequestID(w, r)
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	err := s.ping(ctx)
	if err != nil {
		e := toAPIError(&errUnavailable{err})
		if e.Status < 500 {
			e.Status = http.StatusServiceUnavailable
		}
		s.fail(w, r, reqID, e)
		return
	}
	writeBody(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

func (s *Server) ping(ctx context.Context) error {
	conn, err := s.pools.Acquire(ctx, s.readyRole, "")
	if err != nil {
		return err
	}
	defer conn.Release()
	_, err = conn.QueryRow(ctx, "SELECT 1", nil)
	return err
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// setRequestID echoes a sane X-Request-Id or makes one, and returns it.
func setRequestID(w http.ResponseWriter, r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if !saneRequestID(id) {
		id = errorid.New()
	}
	w.Header().Set("X-Request-Id", id)
	return id
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// fail sends e; a 5xx gets an error id, logged with its cause.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, reqID string, e *apiError) {
	if e.Status >= 500 {
		if e.id == "" {
			e.id = errorid.New()
		}
		s.log.Error("rest: server error", zap.String("error_id", e.id), zap.String("path", r.URL.Path),
			zap.String("request_id", reqID), zap.Int("status", e.Status), zap.String("code", e.Code),
			zap.Error(e.cause))
	}
	writeError(w, e)
}
