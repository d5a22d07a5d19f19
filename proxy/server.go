package proxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/backend"
	"mqstack/internal/notify"
	"mqstack/router"
)

// Verifier is what the proxy needs of auth: *auth.Verifier implements it.
type Verifier interface {
	Verify(token string) (auth.Identity, error)
	CheckRole(role string, isSuperuser bool) error
	StillValid(id auth.Identity, now time.Time) bool
}

var _ Verifier = (*auth.Verifier)(nil)

// Options configure a Server.
type Options struct {
	Proxy    configs.ProxyConfig
	Backends *backend.Manager
	Verifier Verifier
	// TLS is offered to clients that send SSLRequest; nil refuses TLS.
	TLS        *tls.Config
	Log        *zap.Logger
	Registerer prometheus.Registerer
	// Router classifies statements (shared with REST, so the parse cache
	// is one); nil makes a private one.
	Router *router.Router
	// Recorder receives the counts the proxy shares with REST (token
	// checks, closed connections, denials, pins, calls on queues). Required:
	// internal/metrics owns those metrics, and internal/stack adapts it.
	Recorder Recorder
	// Hub is the shared LISTEN connection per (backend, database): clients'
	// LISTEN and UNLISTEN are answered by the proxy and never pin. Required.
	Hub Hub
	// OnSend, when set, is called after a transaction that sent messages
	// ends, once per queue sent to ("" for topic sends, whose queues are not
	// known), so REST long polls in this process wake at once.
	OnSend func(queue string)
}

// Hub is what the proxy needs of internal/notify's *notify.Hub.
type Hub interface {
	Subscribe(ctx context.Context, key notify.Key, channel string, sub notify.Subscriber) error
	Unsubscribe(key notify.Key, channel string, sub notify.Subscriber)
	UnsubscribeAll(key notify.Key, sub notify.Subscriber)
}

// Server is the wire-protocol proxy. It is made by New, serves listeners
// with Serve and stops with Shutdown.
type Server struct {
	log      *zap.Logger
	backends *backend.Manager
	verifier Verifier
	tls      *tls.Config
	metrics  *proxyMetrics
	rec      Recorder
	router   *router.Router
	onSend   func(queue string)
	hub      Hub
	cfg      atomic.Pointer[configs.ProxyConfig]
	// notifiers maps a backend pid to the session whose notifying
	// transaction ran there last (clientPID); listeningSessions counts
	// sessions with channels (the listening-clients gauge reads it), so
	// nobody pays for notifiers while none listens.
	notifiers         sync.Map
	listeningSessions atomic.Int32
	// parks counts sessions parked (park.go), for tests.
	parks atomic.Int64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	cancelKey map[uint32]*session
	draining  bool
	clients   int
	logins    map[backend.Key]*poolLogin

	wg   sync.WaitGroup // sessions (CancelRequest connections too)
	done chan struct{}  // closed by Shutdown
}

// New makes a server. It does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.Backends == nil || opts.Verifier == nil || opts.Recorder == nil || opts.Hub == nil {
		return nil, errors.New("proxy: Backends, Verifier, Recorder and Hub are required")
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Router == nil {
		opts.Router = router.New(1000)
	}
	s := &Server{
		log:       opts.Log,
		backends:  opts.Backends,
		verifier:  opts.Verifier,
		tls:       opts.TLS,
		rec:       opts.Recorder,
		router:    opts.Router,
		onSend:    opts.OnSend,
		hub:       opts.Hub,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		cancelKey: map[uint32]*session{},
		logins:    map[backend.Key]*poolLogin{},
		done:      make(chan struct{}),
	}
	m, err := newMetrics(opts.Registerer, func() float64 { return float64(s.listeningSessions.Load()) })
	if err != nil {
		return nil, err
	}
	s.metrics = m
	cfg := opts.Proxy
	s.cfg.Store(&cfg)
	return s, nil
}

// Reload applies new proxy limits (max_clients, allow_plaintext_password,
// timeouts) to new clients; open sessions are kept.
func (s *Server) Reload(cfg configs.ProxyConfig) {
	s.cfg.Store(&cfg)
}

func (s *Server) config() *configs.ProxyConfig { return s.cfg.Load() }

// checkDatabase refuses a database clients may not ask for: only the
// backends' names and databases and those in proxy.databases are served.
// It runs after authentication, as in Postgres, so unauthenticated clients
// learn nothing of what is served.
func (s *Server) checkDatabase(db string) error {
	if s.backends.Serves(db) || slices.Contains(s.config().Databases, db) {
		return nil
	}
	return &Error{Severity: "FATAL", Code: pgerrcode.InvalidCatalogName,
		Message: fmt.Sprintf("database %q is not served by this proxy", db),
		Hint:    "connect to a backend's database, or list the database in proxy.databases"}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts clients on ln until Shutdown; it always returns a non-nil
// error (ErrServerClosed after Shutdown).
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if !s.startSession(nc) {
			continue
		}
	}
}

func (s *Server) startSession(nc net.Conn) bool {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	sess := newSession(s, nc)
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go sess.serve()
	return true
}

// sessionEnded forgets a session that has ended (session.end).
func (s *Server) sessionEnded(sess *session) {
	defer s.wg.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	if sess.login.key.pid != 0 && s.cancelKey[sess.login.key.pid] == sess {
		delete(s.cancelKey, sess.login.key.pid)
	}
	if sess.login.counted {
		s.clients--
		s.metrics.clients.Set(float64(s.clients))
	}
}

// admit counts a client against max_clients once it passed the startup
// packet; false means too many.
func (s *Server) admit(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients >= s.config().MaxClients {
		return false
	}
	s.clients++
	sess.login.counted = true
	s.metrics.clients.Set(float64(s.clients))
	return true
}

// issueKey gives a session its cancel key (process id and secret).
func (s *Server) issueKey(sess *session) {
	var b [8]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 || s.cancelKey[pid] != nil {
			continue
		}
		sess.login.key = cancelKey{pid: pid, secret: binary.BigEndian.Uint32(b[4:])}
		s.cancelKey[pid] = sess
		return
	}
}

// cancel forwards a CancelRequest to the backend serving that client now.
func (s *Server) cancel(pid uint32, secret []byte) {
	s.mu.Lock()
	sess := s.cancelKey[pid]
	s.mu.Unlock()
	if sess == nil || len(secret) != 4 {
		s.metrics.cancels.WithLabelValues("unknown").Inc()
		return
	}
	if subtle.ConstantTimeEq(int32(binary.BigEndian.Uint32(secret)), int32(sess.login.key.secret)) != 1 {
		s.metrics.cancels.WithLabelValues("unknown").Inc()
		return
	}
	if sess.cancelBackend() {
		s.metrics.cancels.WithLabelValues("forwarded").Inc()
	} else {
		s.metrics.cancels.WithLabelValues("idle").Inc()
	}
}

// Shutdown stops accepting clients, closes idle sessions at once, lets
// sessions in a transaction finish it (each is closed at its transaction
// boundary), and when ctx ends closes whatever is left. It returns when
// every session has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.draining {
		s.draining = true
		close(s.done)
	}
	for ln := range s.listeners {
		ln.Close()
	}
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.drain()
	}
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for sess := range s.sessions {
		sess.kill(closeShutdown)
	}
	s.mu.Unlock()
	<-finished
	return ctx.Err()
}

func (s *Server) isDraining() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Clients is the number of clients past the startup packet.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients
}

// authAttempt counts one token verification; reason "ok" is a success.
func (s *Server) authAttempt(reason string) {
	if reason == "" {
		reason = "error"
	}
	outcome := "refused"
	if reason == "ok" {
		outcome = "ok"
	}
	s.rec.AuthAttempt(outcome, reason)
}

func (s *Server) poolLogin(k backend.Key) *poolLogin {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins[k]
}

// rememberLogin merges what a probe learned into the pool's record and
// returns the record (copy-on-write: readers keep their snapshot).
func (s *Server) rememberLogin(k backend.Key, pl *poolLogin) *poolLogin {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.logins[k]; old != nil {
		for n, v := range old.norm {
			if _, ok := pl.norm[n]; !ok {
				pl.norm[n] = v
			}
		}
	}
	s.logins[k] = pl
	return pl
}
