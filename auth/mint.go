package auth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mqstack/configs"
)

// MintOptions describe a development token.
type MintOptions struct {
	Role      string        // required: the database role
	RoleClaim string        // claim carrying the role; default "role"
	Subject   string        // sub; default "mqstack-dev"
	Audience  string        // aud, when not empty
	Issuer    string        // iss, when not empty
	TTL       time.Duration // required: exp - iat
	Grants    []GrantEntry  // mq.grants; none means an unlimited token
	Deny      []GrantEntry  // mq.deny
	Now       time.Time     // iat; default time.Now()
}

// Mint signs a token with secret (HS256). It is for development and for the
// examples: `mqstack token` and the line `mqstack up` prints. The grants are
// checked as Verify would check them.
func Mint(secret []byte, o MintOptions) (string, error) {
	if len(secret) < configs.MinHMACSecretLen {
		return "", fmt.Errorf("HMAC secret of %d bytes: at least %d are required", len(secret), configs.MinHMACSecretLen)
	}
	if !configs.ValidRoleName(o.Role) {
		return "", fmt.Errorf("%q is not a valid role name", o.Role)
	}
	if o.TTL <= 0 {
		return "", fmt.Errorf("token lifetime must be positive")
	}
	if o.RoleClaim == "" {
		o.RoleClaim = "role"
	}
	if o.Subject == "" {
		o.Subject = "mqstack-dev"
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	c := jwt.MapClaims{
		"sub": o.Subject,
		"iat": jwt.NewNumericDate(o.Now),
		"exp": jwt.NewNumericDate(o.Now.Add(o.TTL)),
		"jti": hex.EncodeToString(jti[:]),
	}
	if o.Audience != "" {
		c["aud"] = o.Audience
	}
	if o.Issuer != "" {
		c["iss"] = o.Issuer
	}
	if len(o.Grants) > 0 || len(o.Deny) > 0 {
		mq, err := json.Marshal(grantClaim{Grants: o.Grants, Deny: o.Deny})
		if err != nil {
			return "", err
		}
		if _, err := ParseGrants(mq, nil); err != nil {
			return "", err
		}
		c["mq"] = json.RawMessage(mq)
	}
	c[o.RoleClaim] = o.Role
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", err
	}
	if len(tok) > MaxTokenLen {
		return "", fmt.Errorf("token of %d bytes is longer than the %d accepted", len(tok), MaxTokenLen)
	}
	return tok, nil
}

// DevSecretFile is the name of the development HMAC secret in the data
// directory.
const DevSecretFile = "jwt.secret"

// DevSecretPath is where the development secret of dataDir lives.
func DevSecretPath(dataDir string) string { return filepath.Join(dataDir, DevSecretFile) }

// ReadDevSecret reads the development secret of dataDir. When there is none
// the error wraps fs.ErrNotExist.
func ReadDevSecret(dataDir string) ([]byte, error) {
	// Stat first: the secret is created with a link, so once it exists it
	// is whole; checking after a failed read would race with its creation.
	if _, err := os.Stat(DevSecretPath(dataDir)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no development secret %s: %w", DevSecretPath(dataDir), fs.ErrNotExist)
	}
	return ConfiguredSecret(configs.AuthConfig{HMACSecretFile: DevSecretPath(dataDir)})
}

// EnsureDevSecret returns the development secret of dataDir, creating it
// (mode 0600, 32 random bytes as 64 hex digits) if it is missing. Creation is
// atomic: a concurrent caller sees either no file or the whole secret.
func EnsureDevSecret(dataDir string) ([]byte, error) {
	secret, err := ReadDevSecret(dataDir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("development secret: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dataDir, DevSecretFile+".*")
	if err != nil {
		return nil, fmt.Errorf("development secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("development secret: %w", err)
	}
	if _, err := fmt.Fprintf(tmp, "%s\n", hex.EncodeToString(raw[:])); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("development secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("development secret: %w", err)
	}
	// Link fails if another process created the secret meanwhile: use theirs.
	if err := os.Link(tmp.Name(), DevSecretPath(dataDir)); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("development secret: %w", err)
	}
	return ReadDevSecret(dataDir)
}

// EmbeddedConfig is the auth configuration `mqstack up` verifies tokens
// with: cfg.EmbeddedAuth() (auth.default_role falls back to
// postgres.default_role) and, when no key is configured, the development
// secret of data_dir as auth.hmac_secret_file, created if missing (so Reload
// re-reads it). Call it once the data directory may be created.
func EmbeddedConfig(cfg configs.Config) (configs.AuthConfig, error) {
	a := cfg.EmbeddedAuth()
	if a.HasKey() {
		return a, nil
	}
	if _, err := EnsureDevSecret(cfg.DataDir); err != nil {
		return a, err
	}
	a.HMACSecretFile = DevSecretPath(cfg.DataDir)
	return a, nil
}
