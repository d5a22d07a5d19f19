package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgerrcode"
	"go.uber.org/zap"

	"mqstack/auth"
)

type phase int

const (
	phaseStartup phase = iota // TLS negotiation and the startup message
	phaseAuth                 // waiting for the password (the token)
	phaseLogin                // first backend checkout, parameters, key data
	phaseReady                // command loop
	phaseClosed               // the client goroutine is done
)

// session is one client connection. The client goroutine runs serve; while a
// backend connection is attached, a reader goroutine (owned by the session,
// waited for before serve returns) relays the backend's messages.
//
// Its state is kept in parts, one concept each:
//
//	client    the client's connection and the writer toward it (client.go)
//	login     startup message, identity, pool and cancel key (login.go)
//	stmts     the client's prepared statements and portals (statements.go)
//	backend   the attached backend connection and its relay state (attachment.go)
//	obs       the statements whose results the reader accounts (observe.go)
//	deny      denials on their way to the client, the Bind being checked (denials.go)
//	settings  the settings the client's backend must have (settings.go)
//	idle      the idle-in-transaction clock (idle.go)
//	listen    the channels the client listens on, and changes waiting for COMMIT (listen.go)
//	inbox     notifications on their way to the client (inbox.go)
//
// The client goroutine reads client messages in command.go and hands each
// to its handler (query.go, parse.go, bind.go, command.go); the reader is
// reader.go.
//
// Locks. mu guards the state the client goroutine shares with the reader:
// phase and the fields of the parts marked "s.mu". client.wmu serialises
// writes to the client; backend.bw is held while a flush to the backend
// runs. Whoever holds mu releases it before writing to the client or
// flushing to the backend. One goroutine nests two of them: the inbox's
// delivery (inbox.go) takes mu inside client.wmu, to check that the session
// is between transactions while no answer can be written; nobody takes
// client.wmu inside mu, so the order is client.wmu, then mu. Server.mu may
// be held while a session is killed, which takes none of them. The inbox
// has its own lock, taken last.
type session struct {
	srv  *Server
	log  *zap.Logger
	ctx  context.Context // ends when the session is killed
	stop context.CancelFunc

	client clientConn
	login  loginInfo
	// skipUntilSync discards client messages after an error the proxy
	// reported in an extended-protocol cycle, as Postgres does. Client
	// goroutine only.
	skipUntilSync bool
	// parked: the session has parked since its last message (park.go).
	// Client goroutine only.
	parked bool
	// parkArmed: the park deadline is set on the client connection.
	parkArmed atomic.Bool

	mu       sync.Mutex
	phase    phase
	stmts    statements
	backend  attachment
	obs      observer
	deny     denials
	settings wantedSettings
	idle     idleClock
	listen   listens
	inbox    inbox
	// notifiedOn are the backends (pids) the session last sent a
	// statement that may notify on (client goroutine; see clientPID).
	notifiedOn []uint32
}

func newSession(srv *Server, nc net.Conn) *session {
	ctx, stop := context.WithCancel(context.Background())
	s := &session{
		srv:    srv,
		log:    srv.log.WithLazy(zap.String("client", nc.RemoteAddr().String())), // startup adds user and database
		client: clientConn{nc: nc, raw: nc},
		ctx:    ctx,
		stop:   stop,
	}
	s.deny.param = s.bindParam
	s.inbox.s = s
	return s
}

// serve runs the session's login phases, then its command loop, which may
// go on in other goroutines (park.go); end closes the session.
func (s *session) serve() {
	if reason, ok := s.logIn(); !ok {
		s.end(reason)
		return
	}
	s.run()
}

// logIn runs the phases up to the command loop; it returns why the
// session ends when one fails.
func (s *session) logIn() (closeReason, bool) {
	cfg := s.srv.config()
	s.client.nc.SetDeadline(time.Now().Add(cfg.ClientLoginTimeout))
	if err := s.negotiate(); err != nil {
		return s.fail(err, closeClientError), false
	}
	s.setPhase(phaseAuth)
	if err := s.authenticate(); err != nil {
		return s.fail(err, closeAuthFailed), false
	}
	s.setPhase(phaseLogin)
	if err := s.settleLogin(); err != nil {
		return s.fail(err, closeLoginFailed), false
	}
	s.client.nc.SetDeadline(time.Time{})
	s.setPhase(phaseReady)
	return "", true
}

// run runs the command loop on the calling goroutine until the session
// ends, or parks it: the loop goes on in a fresh goroutine and this one
// ends (park.go).
func (s *session) run() {
	reason, parked := s.commandLoop()
	if parked {
		go s.run()
		return
	}
	s.end(reason)
}

// end closes the session once its command loop (or login) is over: the
// backend is brought back and released, channels dropped, the connection
// closed and counted under the first reason it was given.
func (s *session) end(reason closeReason) {
	s.cleanup()
	s.endListening()
	s.stop()
	s.client.nc.Close()
	if first := s.client.closedFor.Load(); first != nil {
		reason = *first
	}
	s.srv.rec.ConnectionClosed(string(reason))
	s.srv.sessionEnded(s)
}

func (s *session) setPhase(p phase) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// limited reports whether the client's token carries grants.
func (s *session) limited() bool { return s.login.id.Grants.Limited() }

// fail reports a startup-time error to the client (when it speaks the
// protocol by then) and returns the close reason: the one err carries, else
// what the failed phase and the kind of error say.
func (s *session) fail(err error, reason closeReason) closeReason {
	var ce *closeError
	if errors.As(err, &ce) {
		if !ce.report {
			return ce.reason
		}
		reason = ce.reason
	}
	var pxe *Error
	var ae *auth.Error
	isReport := errors.As(err, &pxe) || errors.As(err, &ae)
	var ne net.Error
	if !isReport && errors.As(err, &ne) && ne.Timeout() {
		return closeLoginTimeout
	}
	if !isReport && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isNetErr(err)) {
		return closeClientGone
	}
	s.client.startProtocol()
	s.client.write(true, errorResponse(err, "FATAL", s.log))
	if s.client.unreadInput {
		s.client.lingerClose()
	}
	s.log.Debug("client refused", zap.String("reason", string(reason)), zap.Error(err))
	return reason
}

// kill closes the client connection.
func (s *session) kill(reason closeReason) {
	s.client.closeOnce.Do(func() {
		s.client.noteEnd(reason)
		s.log.Debug("closing client", zap.String("reason", string(reason)))
		s.stop()
		s.client.raw.Close()
	})
}

// killWith sends err as FATAL, then closes the client connection.
func (s *session) killWith(err error, reason closeReason) {
	// The deadline first: it unblocks a write stuck on a client that does
	// not read, which holds wmu.
	s.client.raw.SetWriteDeadline(time.Now().Add(time.Second))
	s.client.write(true, errorResponse(err, "FATAL", s.log))
	s.kill(reason)
}

// errShuttingDown is what a client hears when the proxy drains.
func errShuttingDown() *Error {
	return fatalf(pgerrcode.AdminShutdown, "terminating connection because the proxy is shutting down")
}

// drain is Shutdown's request: an idle session is closed now; one in a
// transaction sees the server draining at its end (boundaryCheck,
// readyForQuery).
func (s *session) drain() {
	s.mu.Lock()
	idle := s.phase != phaseReady || s.backend.betweenTransactions()
	s.mu.Unlock()
	if idle {
		s.killWith(errShuttingDown(), closeShutdown)
	}
}

// cancelBackend forwards a cancel to the backend running the client's
// statement now; false when it runs none.
func (s *session) cancelBackend() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend.conn == nil || !s.backend.busy() {
		return false
	}
	if err := s.backend.conn.Cancel(s.ctx); err != nil {
		s.log.Warn("cancel not forwarded", zap.Error(err))
		return false
	}
	return true
}
