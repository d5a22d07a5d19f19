package configs

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// AuthConfig configures how client tokens (JWTs) are verified and turned into
// a database role. The auth package applies it; ../shared/spec/auth.md is the
// policy. Every field's comment states its default.
type AuthConfig struct {
	// HMACSecret is a shared secret for HS256/384/512 tokens, at least 32
	// bytes. Never logged or printed. Default "" (none).
	HMACSecret Secret `yaml:"hmac_secret"`
	// HMACSecretFile names a file holding the HMAC secret (its text, with
	// leading and trailing white space removed). Read again on SIGHUP.
	// Default "" (none). Not together with HMACSecret.
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// PublicKeyFiles are PEM files (PUBLIC KEY, RSA PUBLIC KEY or
	// CERTIFICATE blocks) or JSON files holding one JWK or a JWKS, for
	// RS/PS/ES/EdDSA tokens. Read again on SIGHUP. Default none.
	PublicKeyFiles []string `yaml:"public_key_files"`
	// JWKSFile names a JWKS file (`{"keys": [...]}`); keys are chosen by
	// the token's kid. Read again on SIGHUP. Default "" (none).
	JWKSFile string `yaml:"jwks_file"`
	// RoleClaim is the top-level claim naming the database role. Default
	// "role".
	RoleClaim string `yaml:"role_claim"`
	// DefaultRole is the role of tokens without a role claim. Default "":
	// `mqstack up` (the embedded stack) uses postgres.default_role if
	// AllowedRoles admits it, see Config.EmbeddedAuth; elsewhere such tokens
	// are refused.
	DefaultRole string `yaml:"default_role"`
	// AllowedRoles, when not empty, lists the only roles tokens may name
	// (the default role included). Default none: any role.
	AllowedRoles []string `yaml:"allowed_roles"`
	// AllowSuperuserRoles lets tokens name superuser roles. Default false.
	AllowSuperuserRoles bool `yaml:"allow_superuser_roles"`
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 30s.
	Leeway time.Duration `yaml:"leeway"`
	// Audience, when set, must be in the token's aud claim. Default "".
	Audience string `yaml:"audience"`
	// Issuer, when set, must equal the token's iss claim. Default "".
	Issuer string `yaml:"issuer"`
	// MaxTokenLifetime, when not 0, refuses tokens whose exp - iat (or
	// exp - nbf, or exp - now without either) is longer. Default 0: no limit.
	MaxTokenLifetime time.Duration `yaml:"max_token_lifetime"`
	// CacheSize bounds the cache of verified tokens. 0 disables it.
	// Default 10000.
	CacheSize int `yaml:"cache_size"`
}

// MinHMACSecretLen is the shortest HMAC secret accepted (RFC 7518 3.2: a key
// at least as long as the HS256 hash output).
const MinHMACSecretLen = 32

// Secret is a configuration string that is never shown: fmt, YAML and JSON
// renderings print "[redacted]" (or "" when it is empty).
type Secret string

const redactedText = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redactedText
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalYAML renders the secret redacted.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON renders the secret redacted (zap.Any, encoding/json).
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func defaultAuth() AuthConfig {
	return AuthConfig{
		PublicKeyFiles: []string{},
		RoleClaim:      "role",
		AllowedRoles:   []string{},
		Leeway:         30 * time.Second,
		CacheSize:      10000,
	}
}

// HasKey reports whether any verification key is configured. Without one,
// `mqstack up` uses the development secret in data_dir and `mqstack serve`
// cannot verify tokens.
func (a AuthConfig) HasKey() bool {
	return a.HMACSecret != "" || a.HMACSecretFile != "" || len(a.PublicKeyFiles) > 0 || a.JWKSFile != ""
}

// EmbeddedAuth is the auth configuration of the embedded stack (`mqstack
// up`): when auth.default_role is empty, tokens without a role claim name
// postgres.default_role, the login role the stack creates, unless
// auth.allowed_roles leaves it out. An external Postgres (`mqstack serve`)
// uses c.Auth as it is.
func (c Config) EmbeddedAuth() AuthConfig {
	a := c.Auth
	if a.DefaultRole == "" && (len(a.AllowedRoles) == 0 || slices.Contains(a.AllowedRoles, c.Postgres.DefaultRole)) {
		a.DefaultRole = c.Postgres.DefaultRole
	}
	return a
}

// tokenRoleName is what a token may name as its role: a Postgres role name
// that needs no quoting apart from case and '-', at most 63 bytes.
var tokenRoleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$-]{0,62}$`)

// claimName is a JSON member name usable as the role claim.
var claimName = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)

// ValidRoleName reports whether name may be a token's role: 1-63 bytes of
// letters, digits, '_', '$' and '-', not starting with a digit, '$' or '-',
// and not in the reserved pg_ namespace.
func ValidRoleName(name string) bool {
	return tokenRoleName.MatchString(name) && !strings.HasPrefix(strings.ToLower(name), "pg_")
}

// validateAuth returns the problems of the auth section.
func validateAuth(a AuthConfig) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if a.HMACSecret != "" && a.HMACSecretFile != "" {
		bad("auth.hmac_secret and auth.hmac_secret_file are both set: use one")
	}
	if a.HMACSecret != "" && len(a.HMACSecret) < MinHMACSecretLen {
		bad("auth.hmac_secret is %d bytes: at least %d are required", len(a.HMACSecret), MinHMACSecretLen)
	}
	for i, f := range a.PublicKeyFiles {
		if f == "" {
			bad("auth.public_key_files[%d] is empty", i)
		}
	}
	if !claimName.MatchString(a.RoleClaim) {
		bad("auth.role_claim %q must be 1-128 printable characters without spaces", a.RoleClaim)
	}
	if a.DefaultRole != "" && !ValidRoleName(a.DefaultRole) {
		bad("auth.default_role %q is not a valid role name", a.DefaultRole)
	}
	for _, r := range a.AllowedRoles {
		if !ValidRoleName(r) {
			bad("auth.allowed_roles: %q is not a valid role name", r)
		}
	}
	if a.DefaultRole != "" && len(a.AllowedRoles) > 0 && !slices.Contains(a.AllowedRoles, a.DefaultRole) {
		bad("auth.default_role %q is not in auth.allowed_roles", a.DefaultRole)
	}
	if a.Leeway < 0 || a.Leeway > 10*time.Minute {
		bad("auth.leeway %s must be between 0 and 10m", a.Leeway)
	}
	if a.MaxTokenLifetime < 0 {
		bad("auth.max_token_lifetime must not be negative (0 means no limit)")
	}
	if a.CacheSize < 0 || a.CacheSize > 10_000_000 {
		bad("auth.cache_size %d must be between 0 (no cache) and 10000000", a.CacheSize)
	}
	return problems
}

// Validate checks the auth section alone (Config.Validate includes it).
func (a AuthConfig) Validate() error {
	if problems := validateAuth(a); len(problems) > 0 {
		return &Error{Msg: strings.Join(problems, "; ")}
	}
	return nil
}
