package auth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mqstack/configs"
)

// TestVerifyRules runs every verification rule of the spec against an HMAC
// verifier (leeway 30s) with the fixed clock testNow.
func TestVerifyRules(t *testing.T) {
	base := claimsAt()
	at := func(d time.Duration) int64 { return testNow.Add(d).Unix() }
	attacker := []byte("attacker-secret-0123456789abcdef-0123")
	type tc struct {
		name  string
		cfg   func(*configs.AuthConfig)
		token func(t *testing.T) string
		want  Reason // "" = accepted
		role  string // expected role when accepted
	}
	tok := func(c jwt.MapClaims) func(*testing.T) string {
		return func(t *testing.T) string { return hs(t, c) }
	}
	cases := []tc{
		{name: "valid", token: tok(base), role: "mq_app"},
		{name: "expired within leeway", token: tok(with(base, "exp", at(-29*time.Second))), role: "mq_app"},
		{name: "expired after leeway", token: tok(with(base, "exp", at(-31*time.Second), "iat", at(-time.Hour))), want: ReasonExpired},
		{name: "expired, leeway 0", cfg: func(c *configs.AuthConfig) { c.Leeway = 0 }, token: tok(with(base, "exp", at(-time.Second))), want: ReasonExpired},
		{name: "missing exp", token: tok(with(base, "exp", nil)), want: ReasonMissingExp},
		{name: "exp not a number", token: tok(with(base, "exp", "tomorrow")), want: ReasonMalformed},
		{name: "nbf within leeway", token: tok(with(base, "nbf", at(20*time.Second))), role: "mq_app"},
		{name: "nbf after leeway", token: tok(with(base, "nbf", at(40*time.Second))), want: ReasonNotYetValid},
		{name: "iat in future within leeway", token: tok(with(base, "iat", at(20*time.Second))), role: "mq_app"},
		{name: "iat in future", token: tok(with(base, "iat", at(40*time.Second))), want: ReasonIssuedInFuture},
		{name: "audience ok (list)", cfg: aud("mqstack"), token: tok(with(base, "aud", []string{"x", "mqstack"})), role: "mq_app"},
		{name: "audience ok (string)", cfg: aud("mqstack"), token: tok(with(base, "aud", "mqstack")), role: "mq_app"},
		{name: "audience wrong", cfg: aud("mqstack"), token: tok(with(base, "aud", "other")), want: ReasonWrongAudience},
		{name: "audience missing", cfg: aud("mqstack"), token: tok(base), want: ReasonWrongAudience},
		{name: "audience not configured", token: tok(with(base, "aud", "anything")), role: "mq_app"},
		{name: "issuer ok", cfg: iss("https://idp"), token: tok(with(base, "iss", "https://idp")), role: "mq_app"},
		{name: "issuer wrong", cfg: iss("https://idp"), token: tok(with(base, "iss", "https://evil")), want: ReasonWrongIssuer},
		{name: "issuer missing", cfg: iss("https://idp"), token: tok(base), want: ReasonWrongIssuer},
		{name: "lifetime ok", cfg: life(time.Hour), token: tok(base), role: "mq_app"},
		{name: "lifetime too long", cfg: life(time.Hour), token: tok(with(base, "exp", at(2*time.Hour))), want: ReasonLifetimeTooLong},
		{name: "lifetime without iat from nbf", cfg: life(time.Hour), token: tok(with(base, "iat", nil, "nbf", at(-2*time.Hour))), want: ReasonLifetimeTooLong},
		{name: "lifetime without iat from now", cfg: life(time.Hour), token: tok(with(base, "iat", nil, "exp", at(90*time.Minute))), want: ReasonLifetimeTooLong},
		{name: "lifetime without iat ok", cfg: life(time.Hour), token: tok(with(base, "iat", nil, "exp", at(30*time.Minute))), role: "mq_app"},
		{name: "alg none", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, base)
		}, want: ReasonBadAlgorithm},
		{name: "alg none by hand", token: func(*testing.T) string {
			return unsigned(`{"alg":"none","typ":"JWT"}`, `{"role":"mq_app","exp":1900003600}`, "")
		}, want: ReasonBadAlgorithm},
		{name: "alg unknown", token: func(*testing.T) string {
			return unsigned(`{"alg":"HS1024"}`, `{"role":"mq_app","exp":1900003600}`, "c2ln")
		}, want: ReasonBadAlgorithm},
		{name: "alg missing", token: func(*testing.T) string {
			return unsigned(`{"typ":"JWT"}`, `{"role":"mq_app","exp":1900003600}`, "c2ln")
		}, want: ReasonBadAlgorithm},
		{name: "HS384 accepted", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodHS384, testSecret, nil, base) }, role: "mq_app"},
		{name: "HS512 accepted", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodHS512, testSecret, nil, base) }, role: "mq_app"},
		{name: "RS256 when only HMAC configured", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, keys(t).rsa, nil, base)
		}, want: ReasonBadAlgorithm},
		{name: "bad signature (other secret)", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, attacker, nil, base)
		}, want: ReasonBadSignature},
		{name: "tampered payload", token: func(t *testing.T) string {
			good := strings.Split(hs(t, base), ".")
			evil := strings.Split(hs(t, with(base, "role", "admin")), ".")
			return good[0] + "." + evil[1] + "." + good[2]
		}, want: ReasonBadSignature},
		{name: "kid with kid-less keys", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"kid": "k1"}, base)
		}, want: ReasonUnknownKID},
		{name: "kid not a string", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"kid": 7}, base)
		}, want: ReasonMalformed},
		{name: "jku, x5u, jwk, x5c ignored (own key)", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{
				"jku": "http://127.0.0.1:1/jwks.json", "x5u": "http://127.0.0.1:1/c.pem",
				"jwk": map[string]any{"kty": "oct", "k": "YXR0YWNrZXI"}, "x5c": []string{"MIIB"}}, base)
		}, role: "mq_app"},
		{name: "jwk header with attacker key not used", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, attacker, map[string]any{
				"jwk": map[string]any{"kty": "oct", "k": "YXR0YWNrZXItc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWYtMDEyMw"}}, base)
		}, want: ReasonBadSignature},
		{name: "crit header", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"crit": []string{"b64"}, "b64": false}, base)
		}, want: ReasonMalformed},
		{name: "oversized", token: func(t *testing.T) string {
			return hs(t, with(base, "pad", strings.Repeat("x", MaxTokenLen)))
		}, want: ReasonTooLong},
		{name: "empty", token: func(*testing.T) string { return "" }, want: ReasonMalformed},
		{name: "garbage", token: func(*testing.T) string { return "not a token" }, want: ReasonMalformed},
		{name: "four segments", token: func(t *testing.T) string { return hs(t, base) + ".x" }, want: ReasonMalformed},
		{name: "bad base64", token: func(*testing.T) string { return "e30.e30!.c2ln" }, want: ReasonMalformed},
		{name: "padded base64", token: func(t *testing.T) string {
			p := strings.Split(hs(t, base), ".")
			return p[0] + "==." + p[1] + "." + p[2]
		}, want: ReasonMalformed},
		{name: "payload not JSON", token: func(*testing.T) string { return unsigned(`{"alg":"HS256"}`, `[1,2`, "c2ln") }, want: ReasonMalformed},
		{name: "custom role claim", cfg: func(c *configs.AuthConfig) { c.RoleClaim = "https://mq.example/role" },
			token: tok(with(base, "role", nil, "https://mq.example/role", "billing")), role: "billing"},
		{name: "custom role claim ignores role", cfg: func(c *configs.AuthConfig) { c.RoleClaim = "db_role" },
			token: tok(base), want: ReasonNoRole},
		{name: "role claim name is case-sensitive", token: tok(with(base, "role", nil, "Role", "admin")), want: ReasonNoRole},
		{name: "default role", cfg: func(c *configs.AuthConfig) { c.DefaultRole = "mq" }, token: tok(with(base, "role", nil)), role: "mq"},
		{name: "role claim beats default", cfg: func(c *configs.AuthConfig) { c.DefaultRole = "mq" }, token: tok(base), role: "mq_app"},
		{name: "null role uses default", cfg: func(c *configs.AuthConfig) { c.DefaultRole = "mq" }, token: tok(with(base, "role", json.RawMessage("null"))), role: "mq"},
		{name: "no role, no default", token: tok(with(base, "role", nil)), want: ReasonNoRole},
		{name: "empty role", cfg: func(c *configs.AuthConfig) { c.DefaultRole = "mq" }, token: tok(with(base, "role", "")), want: ReasonNoRole},
		{name: "role not a string", token: tok(with(base, "role", 42)), want: ReasonRoleNotAllowed},
		{name: "role with space", token: tok(with(base, "role", "mq app")), want: ReasonRoleNotAllowed},
		{name: "role with quote", token: tok(with(base, "role", `mq"; drop`)), want: ReasonRoleNotAllowed},
		{name: "role too long", token: tok(with(base, "role", strings.Repeat("r", 64))), want: ReasonRoleNotAllowed},
		{name: "reserved pg_ role", token: tok(with(base, "role", "pg_read_server_files")), want: ReasonRoleNotAllowed},
		{name: "allowed role", cfg: allowed("mq_app", "mq"), token: tok(base), role: "mq_app"},
		{name: "role not allowed", cfg: allowed("mq"), token: tok(base), want: ReasonRoleNotAllowed},
		{name: "default role must be allowed too", cfg: func(c *configs.AuthConfig) { c.AllowedRoles = []string{"mq"}; c.DefaultRole = "mq" },
			token: tok(with(base, "role", nil)), role: "mq"},
		{name: "grants parsed", token: tok(with(base, "scope", "openid mq.send:orders_*")), role: "mq_app"},
		{name: "bad grants: unknown op", token: tok(with(base, "scope", "mq.sned:orders")), want: ReasonBadGrants},
		{name: "bad grants: mq not an object", token: tok(with(base, "mq", "all")), want: ReasonBadGrants},
		{name: "bad scope type", token: tok(with(base, "scope", 5)), want: ReasonBadGrants},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := hsConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			v := newTestVerifier(t, cfg)
			token := c.token(t)
			id, err := v.Verify(token)
			if got := reasonOf(t, err); got != c.want {
				t.Fatalf("reason %q, want %q (err %v)", got, c.want, err)
			}
			if err != nil {
				t.Logf("refused: %v", err)
				if len(token) > 10 && strings.Contains(err.Error(), token) {
					t.Fatalf("error message contains the token")
				}
				for _, part := range strings.Split(token, ".") {
					if len(part) > 10 && strings.Contains(err.Error(), part) {
						t.Fatalf("error message contains a token segment: %v", err)
					}
				}
				if id != (Identity{}) {
					t.Fatalf("refused token returned identity %+v", id)
				}
				return
			}
			if id.Role != c.role {
				t.Fatalf("role %q, want %q", id.Role, c.role)
			}
		})
	}
}

func aud(a string) func(*configs.AuthConfig) { return func(c *configs.AuthConfig) { c.Audience = a } }
func iss(s string) func(*configs.AuthConfig) { return func(c *configs.AuthConfig) { c.Issuer = s } }
func life(d time.Duration) func(*configs.AuthConfig) {
	return func(c *configs.AuthConfig) { c.MaxTokenLifetime = d }
}
func allowed(r ...string) func(*configs.AuthConfig) {
	return func(c *configs.AuthConfig) { c.AllowedRoles = r }
}

func TestVerifyIdentity(t *testing.T) {
	v := newTestVerifier(t, hsConfig())
	id, err := v.Verify(hs(t, with(claimsAt(), "mq", map[string]any{
		"grants": []any{map[string]any{"queues": []string{"orders"}, "ops": []string{"send"}}},
	})))
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != "mq_app" || id.Subject != "svc" || id.JTI != "id-1" || id.KeyID != "" ||
		!id.ExpiresAt.Equal(testNow.Add(time.Hour)) || id.Grants == nil {
		t.Fatalf("identity %+v", id)
	}
	if !id.Grants.Allows(OpSend, "orders") || id.Grants.Allows(OpRead, "orders") {
		t.Fatal("grants not carried")
	}
	id, err = v.Verify(hs(t, claimsAt()))
	if err != nil || id.Grants != nil {
		t.Fatalf("token without grant claim: grants %v, err %v", id.Grants, err)
	}
	if !v.StillValid(id, testNow.Add(time.Hour+29*time.Second)) || v.StillValid(id, testNow.Add(time.Hour+30*time.Second)) {
		t.Fatal("StillValid ignores the leeway")
	}
}

func TestIdentityHolder(t *testing.T) {
	for _, c := range []struct {
		id   Identity
		want string
	}{
		{Identity{Role: "mq", Subject: "svc", JTI: "id-1"}, "id-1"},
		{Identity{Role: "mq", Subject: "svc"}, "svc"},
		{Identity{Role: "mq"}, "role mq"},
	} {
		if got := c.id.Holder(); got != c.want {
			t.Errorf("%+v.Holder() = %q, want %q", c.id, got, c.want)
		}
	}
}

// Errors carry sub/jti only when the signature verified.
func TestErrorFields(t *testing.T) {
	v := newTestVerifier(t, hsConfig())
	_, err := v.Verify(hs(t, with(claimsAt(), "exp", testNow.Add(-time.Hour).Unix(), "iat", testNow.Add(-2*time.Hour).Unix())))
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != ReasonExpired || ae.Subject != "svc" || ae.JTI != "id-1" {
		t.Fatalf("expired: %#v", err)
	}
	if !IsExpired(err) || !errors.Is(err, jwt.ErrTokenExpired) || IsRoleRefused(err) || !IsTokenError(err) {
		t.Fatal("predicates")
	}
	_, err = v.Verify(sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-012345"), map[string]any{"kid": "\x01evil\nkid"}, claimsAt()))
	if !errors.As(err, &ae) || ae.Subject != "" || ae.JTI != "" {
		t.Fatalf("unverified token reported claims: %#v", err)
	}
	if strings.ContainsAny(ae.Error()+ae.KeyID, "\x01\n") {
		t.Fatalf("kid not sanitised: %q %q", ae.Error(), ae.KeyID)
	}
	if IsTokenError(errors.New("x")) || ReasonOf(nil) != "" {
		t.Fatal("ReasonOf of a foreign error")
	}
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if seen[r] || reasonText[r] == "" {
			t.Fatalf("reason %q duplicated or without text", r)
		}
		seen[r] = true
	}
	if len(seen) != len(reasonText) {
		t.Fatal("Reasons() and reasonText differ")
	}
}

func TestCheckRoleAndMatchUser(t *testing.T) {
	v := newTestVerifier(t, hsConfig())
	if err := v.CheckRole("mq_app", false); err != nil {
		t.Fatal(err)
	}
	err := v.CheckRole("postgres", true)
	if ReasonOf(err) != ReasonSuperuserRole || !IsRoleRefused(err) || !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("superuser: %v", err)
	}
	cfg := hsConfig()
	cfg.AllowSuperuserRoles = true
	if err := newTestVerifier(t, cfg).CheckRole("postgres", true); err != nil {
		t.Fatalf("allowed superuser: %v", err)
	}
	id := Identity{Role: "mq_app", Subject: "svc"}
	if err := MatchUser(id, "mq_app"); err != nil {
		t.Fatal(err)
	}
	err = MatchUser(id, "postgres")
	if ReasonOf(err) != ReasonRoleMismatch || !strings.Contains(err.Error(), `"postgres"`) || !strings.Contains(err.Error(), `"mq_app"`) {
		t.Fatalf("mismatch: %v", err)
	}
}

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*configs.AuthConfig){
		"no key":       func(c *configs.AuthConfig) { c.HMACSecret = "" },
		"short secret": func(c *configs.AuthConfig) { c.HMACSecret = "short" },
		"empty claim":  func(c *configs.AuthConfig) { c.RoleClaim = "" },
		"missing file": func(c *configs.AuthConfig) { c.HMACSecret = ""; c.JWKSFile = "/nonexistent/jwks.json" },
	} {
		cfg := hsConfig()
		mod(&cfg)
		if _, err := NewVerifier(cfg, nil); !configs.IsConfigError(err) {
			t.Errorf("%s: err %v, want a configs.Error", name, err)
		}
	}
}
