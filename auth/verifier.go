package auth

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"mqstack/configs"
)

// MaxTokenLen caps a token's length in bytes (spec: 8 KiB).
const MaxTokenLen = 8 << 10

// Identity is who a verified token says the client is.
type Identity struct {
	Role      string    // database role the client acts as
	Subject   string    // sub claim, for logs
	KeyID     string    // kid of the key that verified the token, "" if none
	JTI       string    // jti claim, for logs
	ExpiresAt time.Time // exp claim (the leeway is not added: see Verifier.StillValid)
	// Grants are the token's queue grants; nil when it carries no grant
	// claim, so that only the role's Postgres privileges limit it.
	Grants *Grants
}

// Holder identifies the token for its share of a backend pool: its jti,
// else its sub, else (neither claim set) its role, so that such tokens
// share one share rather than escape the limit.
func (id Identity) Holder() string {
	switch {
	case id.JTI != "":
		return id.JTI
	case id.Subject != "":
		return id.Subject
	}
	return "role " + id.Role
}

// Verifier checks tokens against the configured keys and policy. It is safe
// for concurrent use; Reload swaps its keys atomically.
type Verifier struct {
	cfg   configs.AuthConfig
	log   *zap.Logger
	clock func() time.Time // time.Now; tests move it

	keys     atomic.Pointer[keySet]
	reloadMu sync.Mutex

	hits, misses atomic.Uint64
}

// NewVerifier loads the keys cfg names. Key and configuration problems are
// *configs.Error (exit status 2 at start-up). A nil log logs nothing.
func NewVerifier(cfg configs.AuthConfig, log *zap.Logger) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	v := &Verifier{cfg: cfg, log: log, clock: time.Now}
	keys, err := loadKeys(cfg)
	if err != nil {
		return nil, err
	}
	ks := v.newKeySet(keys)
	v.keys.Store(ks)
	v.logKeys("auth keys loaded", ks)
	return v, nil
}

// Config returns the configuration the verifier was built from.
func (v *Verifier) Config() configs.AuthConfig { return v.cfg }

// Algorithms lists the algorithms accepted with the current keys.
func (v *Verifier) Algorithms() []string {
	return append([]string(nil), v.keys.Load().algs...)
}

// Reload reads the key files again (on SIGHUP) and, when that works, swaps
// the keys in and empties the cache of verified tokens. When it fails the old
// keys stay in use and the error says why.
func (v *Verifier) Reload() error {
	v.reloadMu.Lock()
	defer v.reloadMu.Unlock()
	keys, err := loadKeys(v.cfg)
	if err != nil {
		return fmt.Errorf("auth keys not reloaded, the previous keys stay in use: %w", err)
	}
	ks := v.newKeySet(keys)
	v.keys.Store(ks)
	v.logKeys("auth keys reloaded", ks)
	return nil
}

func (v *Verifier) logKeys(msg string, ks *keySet) {
	sources, kids := ks.describe()
	v.log.Info(msg, zap.Int("keys", len(ks.keys)), zap.Strings("algorithms", ks.algs),
		zap.Strings("sources", sources), zap.Strings("kids", kids))
}

// CacheStats counts cache hits and misses since the verifier was made, and
// the tokens cached now.
type CacheStats struct {
	Hits, Misses uint64
	Size         int
}

// CacheStats reports the verified-token cache's use.
func (v *Verifier) CacheStats() CacheStats {
	st := CacheStats{Hits: v.hits.Load(), Misses: v.misses.Load()}
	if c := v.keys.Load().cache; c != nil {
		st.Size = c.len()
	}
	return st
}

// StillValid reports whether id's token has not yet expired at now, with the
// configured leeway, as Verify would judge it.
func (v *Verifier) StillValid(id Identity, now time.Time) bool {
	return now.Before(id.ExpiresAt.Add(v.cfg.Leeway))
}

// CheckRole applies the superuser rule once the caller has looked the role
// up: a superuser role is refused unless auth.allow_superuser_roles is set.
func (v *Verifier) CheckRole(role string, isSuperuser bool) error {
	if isSuperuser && !v.cfg.AllowSuperuserRoles {
		return &Error{Reason: ReasonSuperuserRole,
			Detail: fmt.Sprintf("role %q is a superuser (auth.allow_superuser_roles is false)", sanitize(role))}
	}
	return nil
}

// MatchUser checks the wire rule that the startup user names the token's
// role; the message names both (wire: FATAL 28000).
func MatchUser(id Identity, user string) error {
	if user == id.Role {
		return nil
	}
	return &Error{Reason: ReasonRoleMismatch, Subject: id.Subject, JTI: id.JTI, KeyID: id.KeyID,
		Detail: fmt.Sprintf("user %q does not match the token role %q", sanitize(user), id.Role)}
}

// Verify checks token and returns the identity it carries. A token verified
// before is answered from the cache (by SHA-256 of the token) until it
// expires. Errors are *Error; their text never contains the token.
func (v *Verifier) Verify(token string) (Identity, error) {
	if len(token) > MaxTokenLen {
		return Identity{}, newError(ReasonTooLong, fmt.Sprintf("%d bytes, at most %d", len(token), MaxTokenLen))
	}
	if token == "" {
		return Identity{}, newError(ReasonMalformed, "empty token")
	}
	ks := v.keys.Load()
	now := v.clock()
	if ks.cache == nil {
		id, _, err := v.verify(ks, token, now)
		return id, err
	}
	key := tokenKey(token)
	if id, deadline, ok := ks.cache.get(&key); ok {
		v.hits.Add(1)
		if now.UnixNano() < deadline {
			return id, nil
		}
		ks.cache.remove(&key)
		return Identity{}, &Error{Reason: ReasonExpired, Subject: id.Subject, JTI: id.JTI, KeyID: id.KeyID,
			Detail: "expired at " + id.ExpiresAt.UTC().Format(time.RFC3339)}
	}
	v.misses.Add(1)
	id, deadline, err := v.verify(ks, token, now)
	if err != nil {
		return Identity{}, err
	}
	ks.cache.put(&key, id, deadline)
	return id, nil
}

// tokenKey is the cache key of a token: its SHA-256, computed over the
// string's bytes without copying them (Sum256 neither keeps nor writes its
// argument), which saves the hot path its only allocation.
func tokenKey(token string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// claims is the typed payload. The role claim's name is configurable, so its
// value is picked out of the payload by UnmarshalJSON.
type claims struct {
	jwt.RegisteredClaims
	MQ    json.RawMessage `json:"mq,omitempty"`
	Scope json.RawMessage `json:"scope,omitempty"`

	roleClaim string          // name of the role claim
	role      json.RawMessage // its value, nil when absent
}

func (c *claims) UnmarshalJSON(b []byte) error {
	type plain claims // without this method
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	// Exact (case-sensitive) member name, unlike encoding/json's field match.
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	c.role = all[c.roleClaim]
	return nil
}

func (v *Verifier) verify(ks *keySet, token string, now time.Time) (Identity, int64, error) {
	c := claims{roleClaim: v.cfg.RoleClaim}
	tok, err := ks.parser.ParseWithClaims(token, &c, ks.keyFunc)
	if err != nil {
		return Identity{}, 0, v.refusal(ks, tok, &c, err)
	}
	id := Identity{Subject: c.Subject, JTI: c.ID, ExpiresAt: c.ExpiresAt.Time}
	if kid, ok := tok.Header["kid"].(string); ok {
		id.KeyID = kid
	}
	fail := func(r Reason, detail string) (Identity, int64, error) {
		return Identity{}, 0, &Error{Reason: r, Detail: detail, Subject: sanitize(id.Subject), JTI: sanitize(id.JTI), KeyID: sanitize(id.KeyID)}
	}

	if max := v.cfg.MaxTokenLifetime; max > 0 {
		start := now
		if c.IssuedAt != nil {
			start = c.IssuedAt.Time
		} else if c.NotBefore != nil {
			start = c.NotBefore.Time
		}
		if life := c.ExpiresAt.Sub(start); life > max {
			return fail(ReasonLifetimeTooLong, fmt.Sprintf("%s, at most %s", life.Round(time.Second), max))
		}
	}

	switch {
	case c.role == nil || string(c.role) == "null":
		if v.cfg.DefaultRole == "" {
			return fail(ReasonNoRole, fmt.Sprintf("no %q claim and no auth.default_role", v.cfg.RoleClaim))
		}
		id.Role = v.cfg.DefaultRole
	default:
		var role string
		if err := json.Unmarshal(c.role, &role); err != nil {
			return fail(ReasonRoleNotAllowed, fmt.Sprintf("%q claim is not a string", v.cfg.RoleClaim))
		}
		if role == "" {
			return fail(ReasonNoRole, fmt.Sprintf("%q claim is empty", v.cfg.RoleClaim))
		}
		id.Role = role
	}
	if !configs.ValidRoleName(id.Role) {
		return fail(ReasonRoleNotAllowed, fmt.Sprintf("%q is not a valid role name", clip(sanitize(id.Role))))
	}
	if len(v.cfg.AllowedRoles) > 0 && !slices.Contains(v.cfg.AllowedRoles, id.Role) {
		return fail(ReasonRoleNotAllowed, fmt.Sprintf("role %q is not in auth.allowed_roles", id.Role))
	}

	scope, err := scopeItems(c.Scope)
	if err != nil {
		return fail(ReasonBadGrants, err.Error())
	}
	g, err := ParseGrants(c.MQ, scope)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return fail(ae.Reason, ae.Detail)
		}
		return fail(ReasonBadGrants, "")
	}
	id.Grants = g
	return id, unixNanoSat(c.ExpiresAt.Add(v.cfg.Leeway)), nil
}

// maxNanoTime is the last instant UnixNano can represent (year 2262).
var maxNanoTime = time.Unix(0, math.MaxInt64)

// unixNanoSat is t.UnixNano, saturated for far-future expiries so that they
// cannot overflow into the past.
func unixNanoSat(t time.Time) int64 {
	if t.After(maxNanoTime) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// scopeItems splits the scope claim: a space-separated string (RFC 8693), or
// tolerated, an array of strings.
func scopeItems(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.Fields(s), nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("scope claim is neither a string nor a list of strings")
	}
	var items []string
	for _, s := range list {
		items = append(items, strings.Fields(s)...)
	}
	return items, nil
}

// refusal maps a jwt error to an *Error. Sub and jti are only reported when
// the signature verified (claims errors come after the signature check).
func (v *Verifier) refusal(ks *keySet, tok *jwt.Token, c *claims, err error) *Error {
	kid := ""
	if tok != nil {
		if s, ok := tok.Header["kid"].(string); ok {
			kid = sanitize(s)
		}
	}
	mk := func(r Reason, detail string) *Error {
		return &Error{Reason: r, Detail: detail, KeyID: kid, err: err}
	}
	var ae *Error
	if errors.As(err, &ae) {
		e := *ae
		if e.KeyID == "" {
			e.KeyID = kid
		}
		return &e
	}
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return mk(ReasonMalformed, "")
	}
	if tok != nil && tok.Method != nil && !slices.Contains(ks.algs, tok.Method.Alg()) {
		return mk(ReasonBadAlgorithm, fmt.Sprintf("alg %s not accepted", sanitize(tok.Method.Alg())))
	}
	if tok != nil && tok.Method == nil {
		alg, ok := tok.Header["alg"].(string)
		if !ok {
			return mk(ReasonBadAlgorithm, "no alg header")
		}
		return mk(ReasonBadAlgorithm, fmt.Sprintf("alg %q not accepted", clip(sanitize(alg))))
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return mk(ReasonBadSignature, "")
	}
	if !errors.Is(err, jwt.ErrTokenInvalidClaims) {
		return mk(ReasonMalformed, "")
	}
	// The signature verified: the claims are the issuer's.
	e := mk(ReasonMalformed, "")
	e.Subject, e.JTI = sanitize(c.Subject), sanitize(c.ID)
	leeway := v.cfg.Leeway
	switch {
	case c.ExpiresAt == nil:
		e.Reason = ReasonMissingExp
	case errors.Is(err, jwt.ErrTokenExpired):
		e.Reason, e.Detail = ReasonExpired, "expired at "+c.ExpiresAt.UTC().Format(time.RFC3339)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		e.Reason, e.Detail = ReasonNotYetValid, "valid from "+c.NotBefore.UTC().Format(time.RFC3339)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		e.Reason, e.Detail = ReasonIssuedInFuture, fmt.Sprintf("issued at %s (leeway %s)", c.IssuedAt.UTC().Format(time.RFC3339), leeway)
	case v.cfg.Audience != "" && !slices.Contains(c.Audience, v.cfg.Audience):
		e.Reason, e.Detail = ReasonWrongAudience, fmt.Sprintf("want %q", v.cfg.Audience)
	case v.cfg.Issuer != "" && c.Issuer != v.cfg.Issuer:
		e.Reason, e.Detail = ReasonWrongIssuer, fmt.Sprintf("want %q", v.cfg.Issuer)
	}
	return e
}
