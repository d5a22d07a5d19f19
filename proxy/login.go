package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"net"
	"slices"
	"sync"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/internal/backend"
	"mqstack/router"
)

// The phases before the command loop: the startup packet (negotiate), the
// token (authenticate) and the login to the client's pool (settleLogin).

// Caps from ../shared/spec/auth.md.
const (
	maxPasswordMessage = 16 << 10
	maxTokenLen        = 8 << 10
)

type cancelKey struct{ pid, secret uint32 }

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
			if err := s.client.startTLS(s.ctx, s.srv.tls); err != nil {
				return err
			}
		case kindGSSENC:
			if _, err := s.client.nc.Write([]byte{'N'}); err != nil {
				return err
			}
		case kindCancel:
			s.srv.cancel(p.pid, p.secret)
			return errCancelDone
		case kindStartup:
			return s.startup(p)
		}
	}
}

// startup takes the client's startup message: the protocol begins, and the
// client is admitted unless the proxy drains or is full.
func (s *session) startup(p *startupPacket) error {
	s.client.startProtocol()
	cs, err := interpretStartup(p)
	if err != nil {
		return err
	}
	s.login.start = cs
	// One logger for the session's life, made from the server's (not from
	// the one above, whose clone it would keep alive for each idle client).
	s.log = s.srv.log.WithLazy(zap.String("client", s.client.nc.RemoteAddr().String()),
		zap.String("user", cs.user), zap.String("database", cs.database))
	if p.minor > 0 || len(cs.unknownOptions) > 0 {
		s.client.write(false, &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: cs.unknownOptions})
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
	token, err := s.readToken()
	if err != nil {
		return err
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
	s.client.in.SetMaxBodyLen(int(cfg.MaxMessageBytes))
	return nil
}

// readToken asks for the password and reads it, within the caps.
func (s *session) readToken() (string, error) {
	if err := s.client.write(true, &pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return "", err
	}
	msg, err := s.client.in.Receive() // 'p' reads as a cleartext password

	if err != nil {
		var tooLong *pgproto3.ExceededMaxBodyLenErr
		if errors.As(err, &tooLong) {
			s.client.unreadInput = true
			s.srv.authAttempt(string(auth.ReasonTooLong))
			return "", fatalf(pgerrcode.InvalidPassword, "password authentication failed for user %q: password message too long", s.login.start.user)
		}
		return "", err
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return "", fatalf(pgerrcode.ProtocolViolation, "expected password response, got message type %T", msg)
	}
	if len(pm.Password) > maxTokenLen {
		s.srv.authAttempt(string(auth.ReasonTooLong))
		return "", fatalf(pgerrcode.InvalidPassword, "password authentication failed for user %q: token too long", s.login.start.user)
	}
	return pm.Password, nil
}

// poolLogin is what a login to a pool learned, so later logins with
// settings already seen need no backend connection: the parameters a
// backend reports at login, whether the role is a superuser, and each
// validated setting's value as the server reports it.
type poolLogin struct {
	params    map[string]string
	superuser bool
	norm      map[string]string // name + "\x00" + value -> reported value

	// wants are wanted settings as of login that sessions share (most
	// clients log in with the same few), at most maxSharedWants of them.
	mu    sync.Mutex
	wants []map[string]string
}

const maxSharedWants = 16

// shared is a map equal to want that other sessions may hold too; the
// caller must not write to it.
func (pl *poolLogin) shared(want map[string]string) map[string]string {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, w := range pl.wants {
		if maps.Equal(w, want) {
			return w
		}
	}
	if len(pl.wants) < maxSharedWants {
		pl.wants = append(pl.wants, want)
	}
	return want
}

func (pl *poolLogin) covers(settings map[string]string) bool {
	for k, v := range settings {
		if _, ok := pl.norm[k+"\x00"+v]; !ok {
			return false
		}
	}
	return true
}

// settleLogin settles what the client's backend connections must look
// like. The first login to a pool (or one with settings not seen before)
// checks a connection out: it proves the role can log in, applies the
// superuser rule, validates the startup settings and yields the parameters
// a real server reports.
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
		if pl, err = s.probe(); err != nil {
			return err
		}
	}
	if err := s.srv.verifier.CheckRole(s.login.id.Role, pl.superuser); err != nil {
		s.srv.authAttempt(string(auth.ReasonOf(err)))
		return err
	}
	params := s.settings.login(pl, s.login.start.settings)
	s.srv.issueKey(s)
	if err := s.client.write(true, s.greeting(params)...); err != nil {
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

// greeting is what a client reads once logged in: AuthenticationOk, the
// parameters by name, its cancel key and ReadyForQuery.
func (s *session) greeting(params map[string]string) []pgproto3.BackendMessage {
	msgs := make([]pgproto3.BackendMessage, 0, len(params)+3)
	msgs = append(msgs, &pgproto3.AuthenticationOk{})
	for _, k := range slices.Sorted(maps.Keys(params)) {
		msgs = append(msgs, &pgproto3.ParameterStatus{Name: k, Value: params[k]})
	}
	var secret [4]byte
	binary.BigEndian.PutUint32(secret[:], s.login.key.secret)
	return append(msgs, &pgproto3.BackendKeyData{ProcessID: s.login.key.pid, SecretKey: secret[:]},
		&pgproto3.ReadyForQuery{TxStatus: 'I'})
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
	s.settings.want, s.settings.owned = maps.Clone(s.login.start.settings), true
	if err := s.settings.apply(ctx, c); err != nil {
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
