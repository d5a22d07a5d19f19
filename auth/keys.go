package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mqstack/configs"
)

// Limits on key material, so a mistaken file cannot make every token check
// try thousands of keys.
const (
	maxKeys        = 100
	maxKeyFileSize = 1 << 20
	minRSABits     = 2048
)

var (
	hmacAlgs    = []string{"HS256", "HS384", "HS512"}
	rsaAlgs     = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ed25519Algs = []string{"EdDSA"}
)

// verifyKey is one configured key and the algorithms it verifies.
type verifyKey struct {
	kid    string
	algs   []string
	pub    jwt.VerificationKey // []byte, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
	source string              // where it came from, for logs; never the key
}

func (k *verifyKey) does(alg string) bool { return slices.Contains(k.algs, alg) }

// keyLoadError is a key configuration problem: exit status 2 at start-up.
func keyLoadError(format string, args ...any) error {
	return &configs.Error{Msg: "auth: " + fmt.Sprintf(format, args...)}
}

// loadKeys reads every key the configuration names.
func loadKeys(cfg configs.AuthConfig) ([]verifyKey, error) {
	var keys []verifyKey
	secret, err := ConfiguredSecret(cfg)
	if err != nil {
		return nil, err
	}
	if secret != nil {
		src := "auth.hmac_secret"
		if cfg.HMACSecretFile != "" {
			src = cfg.HMACSecretFile
		}
		keys = append(keys, verifyKey{algs: hmacAlgs, pub: secret, source: src})
	}
	for _, f := range cfg.PublicKeyFiles {
		ks, err := loadKeyFile(f, false)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	if cfg.JWKSFile != "" {
		ks, err := loadKeyFile(cfg.JWKSFile, true)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	if len(keys) == 0 {
		return nil, keyLoadError("no key configured: set auth.hmac_secret, auth.hmac_secret_file, auth.public_key_files or auth.jwks_file")
	}
	if len(keys) > maxKeys {
		return nil, keyLoadError("%d keys configured, at most %d", len(keys), maxKeys)
	}
	return keys, nil
}

// ConfiguredSecret returns the HMAC secret of the configuration (hmac_secret,
// or the trimmed text of hmac_secret_file), or nil if none is configured. A
// secret shorter than configs.MinHMACSecretLen is an error.
func ConfiguredSecret(cfg configs.AuthConfig) ([]byte, error) {
	var secret []byte
	switch {
	case cfg.HMACSecret != "" && cfg.HMACSecretFile != "":
		return nil, keyLoadError("auth.hmac_secret and auth.hmac_secret_file are both set: use one")
	case cfg.HMACSecret != "":
		secret = []byte(cfg.HMACSecret)
	case cfg.HMACSecretFile != "":
		data, err := readKeyFile(cfg.HMACSecretFile)
		if err != nil {
			return nil, err
		}
		secret = bytes.TrimSpace(data)
	default:
		return nil, nil
	}
	if len(secret) < configs.MinHMACSecretLen {
		what := "auth.hmac_secret"
		if cfg.HMACSecretFile != "" {
			what = "auth.hmac_secret_file " + cfg.HMACSecretFile
		}
		return nil, keyLoadError("%s holds %d bytes: an HMAC secret needs at least %d", what, len(secret), configs.MinHMACSecretLen)
	}
	return secret, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, keyLoadError("%v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, keyLoadError("reading %s: %v", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, keyLoadError("%s is larger than %d bytes", path, maxKeyFileSize)
	}
	return data, nil
}

// loadKeyFile reads a PEM file, a JWK or a JWKS. jwksOnly insists on a JWKS.
func loadKeyFile(path string, jwksOnly bool) ([]verifyKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	var keys []verifyKey
	if len(trimmed) > 0 && trimmed[0] == '{' {
		keys, err = parseJWKFile(trimmed, jwksOnly)
	} else if jwksOnly {
		err = fmt.Errorf("not a JWKS (a JSON object with \"keys\")")
	} else {
		keys, err = parsePEM(trimmed)
	}
	if err != nil {
		return nil, keyLoadError("%s: %v", path, err)
	}
	if len(keys) == 0 {
		return nil, keyLoadError("%s: no usable signature verification key", path)
	}
	for i := range keys {
		keys[i].source = path
	}
	return keys, nil
}

func parsePEM(data []byte) ([]verifyKey, error) {
	var keys []verifyKey
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("holds a private key: configure only the public key")
			}
			return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", strings.ToLower(block.Type), err)
		}
		k, err := publicKey(pub, "")
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no PEM block found")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("unexpected data after the last PEM block")
	}
	return keys, nil
}

// publicKey wraps a parsed public key with the algorithms of its type, or the
// one alg a JWK names.
func publicKey(pub any, alg string) (verifyKey, error) {
	var k verifyKey
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return k, fmt.Errorf("RSA key of %d bits: at least %d are required", p.N.BitLen(), minRSABits)
		}
		k = verifyKey{algs: rsaAlgs, pub: p}
	case *ecdsa.PublicKey:
		var a string
		switch p.Curve {
		case elliptic.P256():
			a = "ES256"
		case elliptic.P384():
			a = "ES384"
		case elliptic.P521():
			a = "ES512"
		default:
			return k, fmt.Errorf("EC curve %s is not supported (P-256, P-384, P-521)", p.Curve.Params().Name)
		}
		k = verifyKey{algs: []string{a}, pub: p}
	case ed25519.PublicKey:
		k = verifyKey{algs: ed25519Algs, pub: p}
	case []byte:
		if len(p) < configs.MinHMACSecretLen {
			return k, fmt.Errorf("symmetric key of %d bytes: at least %d are required", len(p), configs.MinHMACSecretLen)
		}
		k = verifyKey{algs: hmacAlgs, pub: p}
	default:
		return k, fmt.Errorf("unsupported key type %T", pub)
	}
	if alg != "" {
		if alg == "Ed25519" { // RFC 9864's fully specified name for EdDSA with Ed25519
			alg = "EdDSA"
		}
		if !k.does(alg) {
			return k, fmt.Errorf("alg %q does not fit a key of this type", alg)
		}
		k.algs = []string{alg}
	}
	return k, nil
}

// jwk holds the members of RFC 7517/7518/8037 keys that we use.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	K      string   `json:"k"`
}

func parseJWKFile(data []byte, jwksOnly bool) ([]verifyKey, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("invalid JSON: %s", jsonProblem(err))
	}
	var list []jwk
	if probe.Keys != nil {
		if err := json.Unmarshal(probe.Keys, &list); err != nil {
			return nil, fmt.Errorf("keys: %s", jsonProblem(err))
		}
	} else if jwksOnly {
		return nil, fmt.Errorf("not a JWKS (a JSON object with \"keys\")")
	} else {
		var one jwk
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("%s", jsonProblem(err))
		}
		list = []jwk{one}
	}
	var keys []verifyKey
	for i, j := range list {
		if !j.forVerifying() {
			continue
		}
		pub, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %v", i, sanitize(j.Kid), err)
		}
		k, err := publicKey(pub, j.Alg)
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %v", i, sanitize(j.Kid), err)
		}
		k.kid = j.Kid
		keys = append(keys, k)
	}
	return keys, nil
}

// forVerifying skips encryption keys and keys not meant to verify.
func (j *jwk) forVerifying() bool {
	if j.Use != "" && j.Use != "sig" {
		return false
	}
	if len(j.KeyOps) > 0 {
		for _, op := range j.KeyOps {
			if op == "verify" {
				return true
			}
		}
		return false
	}
	return true
}

func (j *jwk) publicKey() (any, error) {
	switch j.Kty {
	case "RSA":
		n, err := b64(j.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64(j.E, "e")
		if err != nil {
			return nil, err
		}
		if len(e) > 4 {
			return nil, fmt.Errorf("exponent too large")
		}
		ev := int(new(big.Int).SetBytes(e).Int64())
		if ev < 3 || ev%2 == 0 {
			return nil, fmt.Errorf("bad exponent %d", ev)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}, nil
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("EC curve %q is not supported (P-256, P-384, P-521)", sanitize(j.Crv))
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64(j.X, "x")
		if err != nil {
			return nil, err
		}
		y, err := b64(j.Y, "y")
		if err != nil {
			return nil, err
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("x and y must be %d bytes for %s", size, j.Crv)
		}
		point := append(append([]byte{4}, x...), y...)
		return ecdsa.ParseUncompressedPublicKey(curve, point)
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("OKP curve %q is not supported (Ed25519)", sanitize(j.Crv))
		}
		x, err := b64(j.X, "x")
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("x must be %d bytes", ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	case "oct":
		k, err := b64(j.K, "k")
		if err != nil {
			return nil, err
		}
		return k, nil
	case "":
		return nil, fmt.Errorf("no kty")
	}
	return nil, fmt.Errorf("kty %q is not supported (RSA, EC, OKP, oct)", sanitize(j.Kty))
}

// b64 decodes a base64url member (unpadded, as RFC 7515 says; padding
// tolerated).
func b64(s, name string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("member %q is missing", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("member %q is not base64url", name)
	}
	return b, nil
}

// keySet is one immutable generation of keys with what a token check needs
// precomputed, and its own cache: a reload makes a new keySet, so a token
// verified with a retired key can never be cached after the reload.
type keySet struct {
	keys   []verifyKey
	algs   []string                          // every accepted alg, sorted
	byKID  map[string][]*verifyKey           // keys with a kid
	byAlg  map[string]jwt.VerificationKeySet // every key doing the alg
	single map[string]jwt.VerificationKey    // the key when an alg has just one
	parser *jwt.Parser
	cache  *tokenCache
}

func (v *Verifier) newKeySet(keys []verifyKey) *keySet {
	ks := &keySet{
		keys:   keys,
		byKID:  map[string][]*verifyKey{},
		byAlg:  map[string]jwt.VerificationKeySet{},
		single: map[string]jwt.VerificationKey{},
		cache:  newTokenCache(v.cfg.CacheSize),
	}
	for i := range keys {
		k := &keys[i]
		if k.kid != "" {
			ks.byKID[k.kid] = append(ks.byKID[k.kid], k)
		}
		for _, a := range k.algs {
			set := ks.byAlg[a]
			set.Keys = append(set.Keys, k.pub)
			ks.byAlg[a] = set
		}
	}
	for a, set := range ks.byAlg {
		ks.algs = append(ks.algs, a)
		if len(set.Keys) == 1 {
			ks.single[a] = set.Keys[0]
		}
	}
	sort.Strings(ks.algs)
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(ks.algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.clock() }),
		jwt.WithStrictDecoding(),
	}
	if v.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.cfg.Audience))
	}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	ks.parser = jwt.NewParser(opts...)
	return ks
}

// keyFunc picks the key(s) for a token: by kid when it has one (an unknown
// kid is refused), else every key doing its alg. Header members such as jku,
// x5u, jwk and x5c are never looked at: keys come from configuration only.
func (ks *keySet) keyFunc(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, newError(ReasonMalformed, "crit header names extensions we do not implement")
	}
	alg := t.Method.Alg()
	if raw, ok := t.Header["kid"]; ok {
		kid, ok := raw.(string)
		if !ok {
			return nil, newError(ReasonMalformed, "kid header is not a string")
		}
		cands := ks.byKID[kid]
		if len(cands) == 0 {
			return nil, &Error{Reason: ReasonUnknownKID, Detail: fmt.Sprintf("kid %q", sanitize(kid)), KeyID: sanitize(kid)}
		}
		var set jwt.VerificationKeySet
		for _, k := range cands {
			if k.does(alg) {
				set.Keys = append(set.Keys, k.pub)
			}
		}
		switch len(set.Keys) {
		case 0:
			return nil, &Error{Reason: ReasonBadAlgorithm, Detail: fmt.Sprintf("key %q does not verify %s", sanitize(kid), alg), KeyID: sanitize(kid)}
		case 1:
			return set.Keys[0], nil
		}
		return set, nil
	}
	if k, ok := ks.single[alg]; ok {
		return k, nil
	}
	if set, ok := ks.byAlg[alg]; ok {
		return set, nil
	}
	return nil, newError(ReasonBadAlgorithm, fmt.Sprintf("alg %s not accepted", alg))
}

// describe lists the key set for the log: sources, kids and algorithms.
func (ks *keySet) describe() (sources, kids []string) {
	seen := map[string]bool{}
	for _, k := range ks.keys {
		if !seen[k.source] {
			seen[k.source] = true
			sources = append(sources, k.source)
		}
		if k.kid != "" {
			kids = append(kids, sanitize(k.kid))
		}
	}
	return sources, kids
}
