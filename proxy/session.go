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
//
// Locks. mu guards the state the client goroutine shares with the reader:
// phase and the fields of the parts marked "s.mu". client.wmu serialises
// writes to the client; backend.bw is held while a flush to the backend
// runs. No two of them are ever held at once (whoever holds mu releases it
// before writing to the client or flushing to the backend), so they have
// no order to keep. Server.mu may be held while a session is killed, which
// takes none of them.
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

	mu       sync.Mutex
	phase    phase // phaseClosed once the client goroutine is done
	stmts    statements
	backend  attachment
	obs      observer
	deny     denials
	settings wantedSettings
	idle     idleClock
}

// loginInfo is what the session learned before its command loop. The
// client goroutine sets it during login; it is read-only afterwards.
type loginInfo struct {
	start *clientStartup
	id    auth.Identity
	pool  backend.Key
	// key is the session's cancel key, issued at login; counted says the
	// client counts against proxy.max_clients. Server.mu guards both while
	// the server's maps hold the session.
	key     cancelKey
	counted bool
}

func newSession(srv *Server, nc net.Conn) *session {
	ctx, stop := context.WithCancel(context.Background())
	s := &session{
		srv:    srv,
		log:    srv.log.WithLazy(zap.String("client", nc.RemoteAddr().String())),
		client: clientConn{nc: nc, raw: nc},
		ctx:    ctx,
		stop:   stop,
		stmts:  statements{named: map[string]*stmt{}},
	}
	s.deny.param = s.bindParam
	return s
}

// serve runs the session's phases in order, then cleans up.
func (s *session) serve() {
	var reason closeReason = closeClientGone
	defer func() {
		s.cleanup()
		s.stop()
		s.client.nc.Close()
		s.srv.rec.ConnectionClosed(string(reason))
	}()
	cfg := s.srv.config()
	s.client.nc.SetDeadline(time.Now().Add(cfg.ClientLoginTimeout))
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
	if err := s.settleLogin(); err != nil {
		reason = s.fail(err, closeLoginFailed)
		return
	}
	s.client.nc.SetDeadline(time.Time{})
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
	s.client.wmu.Lock()
	if s.client.proto == nil {
		s.client.proto = pgproto3.NewBackend(s.client.nc, s.client.nc)
	}
	s.client.wmu.Unlock()
	s.writeClient(true, errorResponse(err, "FATAL", s.log))
	if s.client.unreadInput {
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
	if cw, ok := s.client.nc.(closeWriter); ok {
		cw.CloseWrite()
	}
	s.client.raw.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.CopyN(io.Discard, s.client.nc, maxLingerBytes)
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
		p, err := readStartup(s.client.nc)
		if err != nil {
			return err
		}
		switch p.kind {
		case kindSSL:
			if s.client.isTLS || s.srv.tls == nil {
				if _, err := s.client.nc.Write([]byte{'N'}); err != nil {
					return err
				}
				continue
			}
			if _, err := s.client.nc.Write([]byte{'S'}); err != nil {
				return err
			}
			tc := tls.Server(s.client.nc, s.srv.tls)
			if err := tc.HandshakeContext(s.ctx); err != nil {
				return err
			}
			s.client.wmu.Lock()
			s.client.nc, s.client.isTLS = tc, true
			s.client.wmu.Unlock()
		case kindGSSENC:
			if _, err := s.client.nc.Write([]byte{'N'}); err != nil {
				return err
			}
		case kindCancel:
			s.srv.cancel(p.pid, p.secret)
			return errCancelDone
		case kindStartup:
			s.client.wmu.Lock()
			s.client.proto = pgproto3.NewBackend(s.client.nc, s.client.nc)
			s.client.wmu.Unlock()
			s.client.proto.SetMaxBodyLen(maxPasswordMessage)
			cs, err := interpretStartup(p)
			if err != nil {
				return err
			}
			s.login.start = cs
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
	if !plaintextAllowed(s.client.nc.RemoteAddr(), s.client.isTLS, cfg.AllowPlaintextPassword) {
		s.srv.authAttempt("plaintext_refused")
		return &Error{Severity: "FATAL", Code: pgerrcode.InvalidAuthorizationSpecification,
			Message: "tokens are accepted from non-loopback addresses only over TLS",
			Hint:    "connect with sslmode=require"}
	}
	if err := s.writeClient(true, &pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return err
	}
	if err := s.client.proto.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return err
	}
	msg, err := s.client.proto.Receive()
	if err != nil {
		var tooLong *pgproto3.ExceededMaxBodyLenErr
		if errors.As(err, &tooLong) {
			s.client.unreadInput = true
			s.srv.authAttempt(string(auth.ReasonTooLong))
			return fatalf(pgerrcode.InvalidPassword, "password authentication failed for user %q: password message too long", s.login.start.user)
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
		return fatalf(pgerrcode.InvalidPassword, "password authentication failed for user %q: token too long", s.login.start.user)
	}
	id, err := s.srv.verifier.Verify(token)
	if err == nil {
		err = auth.MatchUser(id, s.login.start.user)
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
	s.login.id = id
	s.client.proto.SetMaxBodyLen(int(cfg.MaxMessageBytes))
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

// settleLogin settles what the client's backend connections must look like. The
// first login to a pool (or one with settings not seen before) checks a
// connection out: it proves the role can log in, applies the superuser
// rule, validates the startup settings and yields the parameters a real
// server reports.
func (s *session) settleLogin() error {
	if err := s.srv.checkDatabase(s.login.start.database); err != nil {
		return err
	}
	unreplayed, err := s.checkStartupSettings()
	if err != nil {
		return err
	}
	b, named := s.srv.backends.Backend(s.login.start.database)
	db := s.login.start.database
	if named {
		db = b.Database
	}
	s.login.pool = backend.Key{Backend: b.Name, Database: db, Role: s.login.id.Role}
	pl := s.srv.poolLogin(s.login.pool)
	if pl == nil || !pl.covers(s.login.start.settings) {
		var err error
		if pl, err = s.probe(); err != nil {
			return err
		}
	}
	if err := s.srv.verifier.CheckRole(s.login.id.Role, pl.superuser); err != nil {
		s.srv.authAttempt(string(auth.ReasonOf(err)))
		return err
	}
	params := maps.Clone(pl.params)
	s.settings.want = map[string]string{}
	for k, v := range s.login.start.settings {
		s.settings.want[k] = v
		if isReported(k) {
			s.settings.want[k] = pl.norm[k+"\x00"+v]
			params[k] = s.settings.want[k]
		}
	}
	// Every reported setting a client can change is wanted at some value,
	// so a backend another client left otherwise is put back.
	for _, name := range clientReported {
		if _, ok := s.settings.want[name]; !ok {
			s.settings.want[name] = pl.params[name]
		}
	}
	s.settings.base = maps.Clone(s.settings.want)
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
	binary.BigEndian.PutUint32(secret[:], s.login.key.secret)
	msgs = append(msgs, &pgproto3.BackendKeyData{ProcessID: s.login.key.pid, SecretKey: secret[:]}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := s.writeClient(true, msgs...); err != nil {
		return err
	}
	s.srv.authAttempt("ok")
	s.log.Debug("client logged in", zap.String("role", s.login.id.Role), zap.String("sub", s.login.id.Subject),
		zap.String("kid", s.login.id.KeyID), zap.Stringer("pool", s.login.pool))
	if s.srv.backends.SessionMode(s.login.pool) {
		s.mu.Lock()
		s.backend.pinned = pinSessionMode
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
	c, err := s.srv.backends.Acquire(ctx, s.login.pool, s.login.id.Holder())
	if err != nil {
		return nil, err
	}
	defer c.Release()
	pl := &poolLogin{params: maps.Clone(c.LoginParams()), superuser: c.LoginParams()["is_superuser"] == "on",
		norm: map[string]string{}}
	if pl.superuser {
		// Refused below unless allowed; never apply settings as a superuser
		// the policy refuses.
		if err := s.srv.verifier.CheckRole(s.login.id.Role, true); err != nil {
			return pl, nil
		}
	}
	s.settings.want = maps.Clone(s.login.start.settings)
	if err := s.applySettings(ctx, c); err != nil {
		return nil, err
	}
	for k, v := range s.login.start.settings {
		pl.norm[k+"\x00"+v] = v
		if isReported(k) {
			pl.norm[k+"\x00"+v] = c.Params[k]
		}
	}
	return s.srv.rememberLogin(s.login.pool, pl), nil
}

// settingsDiffer reports whether applySettings has anything to do on c. It
// runs at every checkout, so it allocates nothing and makes no context.
func (s *session) settingsDiffer(c *backend.Conn) bool {
	for name, v := range s.settings.want {
		if isReported(name) {
			if c.Params[name] != v {
				return true
			}
		} else if cur, ok := c.Applied[name]; !ok || cur != v {
			return true
		}
	}
	for name := range c.Applied {
		if _, ok := s.settings.want[name]; !ok {
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
	for name, v := range s.settings.want {
		if isReported(name) {
			if c.Params[name] != v {
				set[name] = v
			}
		} else if cur, ok := c.Applied[name]; !ok || cur != v {
			set[name] = v
		}
	}
	for name := range c.Applied {
		if _, ok := s.settings.want[name]; !ok {
			reset = append(reset, name)
		}
	}
	return c.Apply(ctx, set, reset, func(n string) bool { return !isReported(n) })
}

// writeClient sends messages to the client, flushing when flush is set.
func (s *session) writeClient(flush bool, msgs ...pgproto3.BackendMessage) error {
	s.client.wmu.Lock()
	defer s.client.wmu.Unlock()
	if s.client.proto == nil {
		return nil // before the startup packet: nothing can be said yet
	}
	for _, m := range msgs {
		s.client.proto.Send(m)
	}
	if flush {
		return s.client.proto.Flush()
	}
	return nil
}

// kill closes the client connection, after a FATAL message when err is set.
func (s *session) kill(reason closeReason) {
	s.client.closeOnce.Do(func() {
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
	s.writeClient(true, errorResponse(err, "FATAL", s.log))
	s.kill(reason)
}

// drain is Shutdown's request: an idle session is closed now, one in a
// transaction at its end.
func (s *session) drain() {
	s.mu.Lock()
	// One in a transaction sees the server draining at its end
	// (boundaryCheck, readyForQuery).
	idle := s.phase != phaseReady || s.backend.betweenTransactions()
	s.mu.Unlock()
	if idle {
		s.killWith(fatalf(pgerrcode.AdminShutdown, "terminating connection because the proxy is shutting down"), closeShutdown)
	}
}

// cancelBackend forwards a cancel to the backend running the client's
// statement now; false when it runs none.
func (s *session) cancelBackend() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend.conn == nil || s.backend.inflight == 0 && !s.backend.open {
		return false
	}
	if err := s.backend.conn.Cancel(s.ctx); err != nil {
		s.log.Warn("cancel not forwarded", zap.Error(err))
		return false
	}
	return true
}
