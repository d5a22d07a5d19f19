package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/internal/backend"
	"mqstack/router"
)

// Caps from ../shared/spec/auth.md.
const (
	maxPasswordMessage = 16 << 10
	maxTokenLen        = 8 << 10
)

type phase int

const (
	phaseStartup phase = iota // TLS negotiation and the startup message
	phaseAuth                 // waiting for the password (the token)
	phaseLogin                // first backend checkout, parameters, key data
	phaseReady                // command loop
	phaseClosed
)

type cancelKey struct{ pid, secret uint32 }

// session is one client connection. The client goroutine runs serve; while a
// backend connection is attached, a reader goroutine (owned by the session,
// waited for before serve returns) relays the backend's messages.
type session struct {
	srv    *Server
	log    *zap.Logger
	nc     net.Conn
	client *pgproto3.Backend
	isTLS  bool
	ctx    context.Context // ends when the session is killed
	stop   context.CancelFunc

	counted bool
	key     cancelKey
	start   *clientStartup
	id      auth.Identity
	pool    backend.Key
	// skipUntilSync discards client messages after an error the proxy
	// reported in an extended-protocol cycle, as Postgres does.
	skipUntilSync bool
	pending       int // bytes sent to the backend since its last flush
	// bind is the Bind being authorized, read by bindParamFn.
	bind        bindValues
	bindParamFn router.Params
	// portal and portals are what the client's Binds fixed for its
	// Executes (the unnamed portal, named ones).
	portal  portal
	portals map[string]portal

	// mu guards the relay state shared with the reader goroutine.
	mu         sync.Mutex
	phase      phase
	conn       *backend.Conn // attached backend connection, nil when none
	inflight   int           // sync points (Sync, Query, FunctionCall) sent, ReadyForQuery not yet seen
	open       bool          // messages sent since the last sync point
	pinned     string        // pin cause; "" while the session is pooled
	cycle      uint64        // sync points sent on conn
	doneCycles uint64        // ReadyForQuery seen on conn
	parseq     []pqEntry     // how to relay each ParseComplete/CloseComplete to come
	copyIn     bool
	clientGone bool
	drainReq   bool
	readerDone chan struct{}
	want       map[string]string // settings the client's backend must have
	baseWant   map[string]string // want as of login (DISCARD ALL returns to it)
	discarding bool              // a DISCARD ALL ran in this cycle
	// tainted: the attached backend ran something the router cannot vouch
	// for (or settings the proxy replays changed on it): it is reset
	// before it goes back to the pool.
	tainted bool
	// sqlPrepared are the names of SQL PREPAREs of a pinned session: the
	// only statements besides its protocol ones it may DEALLOCATE, Bind,
	// Describe or Close by name.
	sqlPrepared map[string]bool
	stmts       map[string]*stmt // the client's named statements
	unnamed     *stmt            // the client's unnamed statement
	unnamedGen  uint64
	denials     []denial     // denials waiting for their marker's error
	obs         []obsEntry   // statements the reader accounts, in answer order
	obsLen      atomic.Int32 // len(obs), read by the reader without s.mu
	execSeq     int          // Executes sent in the open cycle
	// idleArmed is set while the idle-in-transaction read deadline (idle.go)
	// is armed: since idleSince, for idleFor. Written with mu held.
	idleArmed atomic.Bool
	idleSince time.Time
	idleFor   time.Duration

	wmu sync.Mutex // client writes, and changes of nc and client
	// raw is the accepted connection; nc may become a TLS connection over
	// it. Deadlines and Close act on raw, so other goroutines never read
	// nc while the session goroutine replaces it.
	raw net.Conn
	// bw is held while the client goroutine flushes to the backend; the
	// reader takes it before releasing the connection, so a flush that
	// delivered its last byte has also finished with the buffer.
	bw       sync.Mutex
	killOnce sync.Once
	// unreadInput: the client was refused while it may still be sending.
	unreadInput bool
}

func newSession(srv *Server, nc net.Conn) *session {
	ctx, stop := context.WithCancel(context.Background())
	s := &session{
		srv:   srv,
		log:   srv.log.WithLazy(zap.String("client", nc.RemoteAddr().String())),
		nc:    nc,
		raw:   nc,
		ctx:   ctx,
		stop:  stop,
		stmts: map[string]*stmt{},
	}
	s.bindParamFn = s.bindParam
	return s
}

// serve runs the session's phases in order, then cleans up.
func (s *session) serve() {
	var reason closeReason = closeClientGone
	defer func() {
		s.cleanup()
		s.stop()
		s.nc.Close()
		s.srv.rec.ConnectionClosed(string(reason))
	}()
	cfg := s.srv.config()
	s.nc.SetDeadline(time.Now().Add(cfg.ClientLoginTimeout))
	if err := s.negotiate(); err != nil {
		reason = s.fail(err, closeClientError)
		return
	}
	s.setPhase(phaseAuth)
	if err := s.authenticate(); err != nil {
		reason = s.fail(err, closeAuthFailed)
		return
	}
	s.setPhase(phaseLogin)
	if err := s.login(); err != nil {
		reason = s.fail(err, closeLoginFailed)
		return
	}
	s.nc.SetDeadline(time.Time{})
	s.setPhase(phaseReady)
	reason = s.commandLoop()
}

func (s *session) setPhase(p phase) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

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
	s.wmu.Lock()
	if s.client == nil {
		s.client = pgproto3.NewBackend(s.nc, s.nc)
	}
	s.wmu.Unlock()
	s.writeClient(true, errorResponse(err, "FATAL", s.log))
	if s.unreadInput {
		s.lingerClose()
	}
	s.log.Debug("client refused", zap.String("reason", string(reason)), zap.Error(err))
	return reason
}

// lingerClose ends a refused connection whose client may still be sending
// (a password message over the cap): closing a socket with unread input
// resets it, and the client would see "connection reset" instead of the
// FATAL error just written. So the proxy half-closes and reads what still
// comes, bounded in bytes and time, before the caller closes.
func (s *session) lingerClose() {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := s.nc.(closeWriter); ok {
		cw.CloseWrite()
	}
	s.raw.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.CopyN(io.Discard, s.nc, maxLingerBytes)
}

// maxLingerBytes bounds what lingerClose reads from a refused client.
const maxLingerBytes = 4 << 20

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}

// negotiate handles SSLRequest, GSSENCRequest and CancelRequest and reads the
// startup message.
func (s *session) negotiate() error {
	for {
		p, err := readStartup(s.nc)
		if err != nil {
			return err
		}
		switch p.kind {
		case kindSSL:
			if s.isTLS || s.srv.tls == nil {
				if _, err := s.nc.Write([]byte{'N'}); err != nil {
					return err
				}
				continue
			}
			if _, err := s.nc.Write([]byte{'S'}); err != nil {
				return err
			}
			tc := tls.Server(s.nc, s.srv.tls)
			if err := tc.HandshakeContext(s.ctx); err != nil {
				return err
			}
			s.wmu.Lock()
			s.nc, s.isTLS = tc, true
			s.wmu.Unlock()
		case kindGSSENC:
			if _, err := s.nc.Write([]byte{'N'}); err != nil {
				return err
			}
		case kindCancel:
			s.srv.cancel(p.pid, p.secret)
			return errCancelDone
		case kindStartup:
			s.wmu.Lock()
			s.client = pgproto3.NewBackend(s.nc, s.nc)
			s.wmu.Unlock()
			s.client.SetMaxBodyLen(maxPasswordMessage)
			cs, err := interpretStartup(p)
			if err != nil {
				return err
			}
			s.start = cs
			s.log = s.log.WithLazy(zap.String("user", cs.user), zap.String("database", cs.database))
			if p.minor > 0 || len(cs.unknownOptions) > 0 {
				s.writeClient(false, &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: cs.unknownOptions})
			}
			if s.srv.isDraining() {
				return closeWith(closeShutdown, fatalf(pgerrcode.CannotConnectNow, "the proxy is shutting down"))
			}
			if !s.srv.admit(s) {
				return closeWith(closeTooManyClients, fatalf(pgerrcode.TooManyConnections,
					"sorry, too many clients already (proxy.max_clients %d)", s.srv.config().MaxClients))
			}
			return nil
		}
	}
}

// plaintextAllowed is the transport rule for a password: inside TLS, from
// loopback or a Unix socket, or when the operator allowed plaintext.
func plaintextAllowed(remote net.Addr, isTLS, allowPlaintext bool) bool {
	if isTLS || allowPlaintext {
		return true
	}
	if ta, ok := remote.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	return remote == nil || remote.Network() == "unix"
}

// authenticate asks for the password (the JWT) and verifies it.
func (s *session) authenticate() error {
	cfg := s.srv.config()
	if !plaintextAllowed(s.nc.RemoteAddr(), s.isTLS, cfg.AllowPlaintextPassword) {
		s.srv.authAttempt("plaintext_refused")
		return &Error{Severity: "FATAL", Code: pgerrcode.InvalidAuthorizationSpecification,
			Message: "tokens are accepted from non-loopback addresses only over TLS",
			Hint:    "connect with sslmode=require"}
	}
	if err := s.writeClient(true, &pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return err
	}
	if err := s.client.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return err
	}
	msg, err := s.client.Receive()
	if err != nil {
		var tooLong *pgproto3.ExceededMaxBodyLenErr
		if errors.As(err, &tooLong) {
			s.unreadInput = true
			s.srv.authAttempt(string(auth.ReasonTooLong))
			return fatalf(pgerrcode.InvalidPassword, "password authentication failed for user %q: password message too long", s.start.user)
		}
		return err
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return fatalf(pgerrcode.ProtocolViolation, "expected password response, got message type %T", msg)
	}
	token := pm.Password
	if len(token) > maxTokenLen {
		s.srv.authAttempt(string(auth.ReasonTooLong))
		return fatalf(pgerrcode.InvalidPassword, "password authentication failed for user %q: token too long", s.start.user)
	}
	id, err := s.srv.verifier.Verify(token)
	if err == nil {
		err = auth.MatchUser(id, s.start.user)
	}
	if err != nil {
		reason := string(auth.ReasonOf(err))
		if reason == "" {
			reason = "error"
		}
		s.srv.authAttempt(reason)
		var ae *auth.Error
		if errors.As(err, &ae) {
			s.log.Info("token refused", zap.String("reason", reason), zap.String("sub", ae.Subject),
				zap.String("kid", ae.KeyID), zap.String("jti", ae.JTI))
		}
		return err
	}
	s.id = id
	s.client.SetMaxBodyLen(int(cfg.MaxMessageBytes))
	return nil
}

// poolLogin is what a login to a pool learned, so later logins with
// settings already seen need no backend connection: the parameters a
// backend reports at login, whether the role is a superuser, and each
// validated setting's value as the server reports it.
type poolLogin struct {
	params    map[string]string
	superuser bool
	norm      map[string]string // name + "\x00" + value -> reported value
}

func (pl *poolLogin) covers(settings map[string]string) bool {
	for k, v := range settings {
		if _, ok := pl.norm[k+"\x00"+v]; !ok {
			return false
		}
	}
	return true
}

// login settles what the client's backend connections must look like. The
// first login to a pool (or one with settings not seen before) checks a
// connection out: it proves the role can log in, applies the superuser
// rule, validates the startup settings and yields the parameters a real
// server reports.
func (s *session) login() error {
	if err := s.srv.checkDatabase(s.start.database); err != nil {
		return err
	}
	unreplayed, err := s.checkStartupSettings()
	if err != nil {
		return err
	}
	b, named := s.srv.backends.Backend(s.start.database)
	db := s.start.database
	if named {
		db = b.Database
	}
	s.pool = backend.Key{Backend: b.Name, Database: db, Role: s.id.Role}
	pl := s.srv.poolLogin(s.pool)
	if pl == nil || !pl.covers(s.start.settings) {
		var err error
		if pl, err = s.probe(); err != nil {
			return err
		}
	}
	if err := s.srv.verifier.CheckRole(s.id.Role, pl.superuser); err != nil {
		s.srv.authAttempt(string(auth.ReasonOf(err)))
		return err
	}
	params := maps.Clone(pl.params)
	s.want = map[string]string{}
	for k, v := range s.start.settings {
		s.want[k] = v
		if isReported(k) {
			s.want[k] = pl.norm[k+"\x00"+v]
			params[k] = s.want[k]
		}
	}
	// Every reported setting a client can change is wanted at some value,
	// so a backend another client left otherwise is put back.
	for _, name := range clientReported {
		if _, ok := s.want[name]; !ok {
			s.want[name] = pl.params[name]
		}
	}
	s.baseWant = maps.Clone(s.want)
	s.srv.issueKey(s)
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	msgs := make([]pgproto3.BackendMessage, 0, len(names)+3)
	msgs = append(msgs, &pgproto3.AuthenticationOk{})
	for _, k := range names {
		msgs = append(msgs, &pgproto3.ParameterStatus{Name: k, Value: params[k]})
	}
	var secret [4]byte
	binary.BigEndian.PutUint32(secret[:], s.key.secret)
	msgs = append(msgs, &pgproto3.BackendKeyData{ProcessID: s.key.pid, SecretKey: secret[:]}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := s.writeClient(true, msgs...); err != nil {
		return err
	}
	s.srv.authAttempt("ok")
	s.log.Debug("client logged in", zap.String("role", s.id.Role), zap.String("sub", s.id.Subject),
		zap.String("kid", s.id.KeyID), zap.Stringer("pool", s.pool))
	if s.srv.backends.SessionMode(s.pool) {
		s.mu.Lock()
		s.pinned = pinSessionMode
		s.mu.Unlock()
	} else if unreplayed {
		// A full token's startup settings the proxy does not replay stay
		// on its backend, which no other client gets until it is reset.
		s.mu.Lock()
		s.pinLocked(string(router.PinSessionSet))
		s.mu.Unlock()
	}
	return nil
}

// probe checks a connection of the client's pool out to learn its login
// parameters and to validate the client's startup settings.
func (s *session) probe() (*poolLogin, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.config().ClientLoginTimeout)
	defer cancel()
	c, err := s.srv.backends.Acquire(ctx, s.pool, s.id.Holder())
	if err != nil {
		return nil, err
	}
	defer c.Release()
	pl := &poolLogin{params: maps.Clone(c.LoginParams()), superuser: c.LoginParams()["is_superuser"] == "on",
		norm: map[string]string{}}
	if pl.superuser {
		// Refused below unless allowed; never apply settings as a superuser
		// the policy refuses.
		if err := s.srv.verifier.CheckRole(s.id.Role, true); err != nil {
			return pl, nil
		}
	}
	s.want = maps.Clone(s.start.settings)
	if err := s.applySettings(ctx, c); err != nil {
		return nil, err
	}
	for k, v := range s.start.settings {
		pl.norm[k+"\x00"+v] = v
		if isReported(k) {
			pl.norm[k+"\x00"+v] = c.Params[k]
		}
	}
	return s.srv.rememberLogin(s.pool, pl), nil
}

// settingsDiffer reports whether applySettings has anything to do on c. It
// runs at every checkout, so it allocates nothing and makes no context.
func (s *session) settingsDiffer(c *backend.Conn) bool {
	for name, v := range s.want {
		if isReported(name) {
			if c.Params[name] != v {
				return true
			}
		} else if cur, ok := c.Applied[name]; !ok || cur != v {
			return true
		}
	}
	for name := range c.Applied {
		if _, ok := s.want[name]; !ok {
			return true
		}
	}
	return false
}

// applySettings makes c's settings those the client wants: reported ones
// compared with what c reports, the others with what the proxy applied.
func (s *session) applySettings(ctx context.Context, c *backend.Conn) error {
	set := map[string]string{}
	var reset []string
	for name, v := range s.want {
		if isReported(name) {
			if c.Params[name] != v {
				set[name] = v
			}
		} else if cur, ok := c.Applied[name]; !ok || cur != v {
			set[name] = v
		}
	}
	for name := range c.Applied {
		if _, ok := s.want[name]; !ok {
			reset = append(reset, name)
		}
	}
	return c.Apply(ctx, set, reset, func(n string) bool { return !isReported(n) })
}

// writeClient sends messages to the client, flushing when flush is set.
func (s *session) writeClient(flush bool, msgs ...pgproto3.BackendMessage) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.client == nil {
		return nil // before the startup packet: nothing can be said yet
	}
	for _, m := range msgs {
		s.client.Send(m)
	}
	if flush {
		return s.client.Flush()
	}
	return nil
}

// kill closes the client connection, after a FATAL message when err is set.
func (s *session) kill(reason closeReason) {
	s.killOnce.Do(func() {
		s.log.Debug("closing client", zap.String("reason", string(reason)))
		s.stop()
		s.raw.Close()
	})
}

// killWith sends err as FATAL, then closes the client connection.
func (s *session) killWith(err error, reason closeReason) {
	// The deadline first: it unblocks a write stuck on a client that does
	// not read, which holds wmu.
	s.raw.SetWriteDeadline(time.Now().Add(time.Second))
	s.writeClient(true, errorResponse(err, "FATAL", s.log))
	s.kill(reason)
}

// drain is Shutdown's request: an idle session is closed now, one in a
// transaction at its end.
func (s *session) drain() {
	s.mu.Lock()
	idle := s.phase != phaseReady || s.idleLocked()
	if !idle {
		s.drainReq = true
	}
	s.mu.Unlock()
	if idle {
		s.killWith(fatalf(pgerrcode.AdminShutdown, "terminating connection because the proxy is shutting down"), closeShutdown)
	}
}

// idleLocked reports whether the session is between transactions.
func (s *session) idleLocked() bool {
	return s.conn == nil || (s.inflight == 0 && !s.open && s.conn.TxStatus == 'I')
}

// cancelBackend forwards a cancel to the backend running the client's
// statement now; false when it runs none.
func (s *session) cancelBackend() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || s.inflight == 0 && !s.open {
		return false
	}
	if err := s.conn.Cancel(s.ctx); err != nil {
		s.log.Warn("cancel not forwarded", zap.Error(err))
		return false
	}
	return true
}
