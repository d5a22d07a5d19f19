package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"mqstack/configs"
)

// TestKeyTypes verifies tokens with every supported key type and file form,
// and refuses tokens signed by another key of the same type or with an
// algorithm the key does not do.
func TestKeyTypes(t *testing.T) {
	k := keys(t)
	rsaPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	edPub := k.ed.Public().(ed25519.PublicKey)
	type tc struct {
		name   string
		file   func(t *testing.T) []byte
		jwks   bool
		priv   any // signs the good tokens
		other  any // another key of the same type
		algs   []jwt.SigningMethod
		refuse []jwt.SigningMethod // algs of other families signed with priv-compatible keys
		kid    string
	}
	rsaAll := []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodRS384, jwt.SigningMethodRS512,
		jwt.SigningMethodPS256, jwt.SigningMethodPS384, jwt.SigningMethodPS512}
	cases := []tc{
		{name: "RSA PKIX PEM", file: func(t *testing.T) []byte { return pemPKIX(t, &k.rsa.PublicKey) }, priv: k.rsa, other: k.rsa2, algs: rsaAll},
		{name: "RSA PKCS1 PEM", file: func(*testing.T) []byte { return rsaPKCS1 }, priv: k.rsa, other: k.rsa2, algs: rsaAll[:1]},
		{name: "RSA certificate", file: func(t *testing.T) []byte { return pemCert(t, k.rsa, &k.rsa.PublicKey) }, priv: k.rsa, other: k.rsa2, algs: rsaAll[3:4]},
		{name: "RSA JWK", file: func(t *testing.T) []byte { return jsonBytes(t, jwkOf(t, &k.rsa.PublicKey, "r1", "")) }, priv: k.rsa, other: k.rsa2, algs: rsaAll, kid: "r1"},
		{name: "RSA JWK alg RS256 only", file: func(t *testing.T) []byte { return jsonBytes(t, jwkOf(t, &k.rsa.PublicKey, "r1", "RS256")) },
			priv: k.rsa, other: k.rsa2, algs: rsaAll[:1], refuse: []jwt.SigningMethod{jwt.SigningMethodPS256}, kid: "r1"},
		{name: "P-256 PEM", file: func(t *testing.T) []byte { return pemPKIX(t, &k.p256.PublicKey) }, priv: k.p256, other: mustEC(t, elliptic.P256()),
			algs: []jwt.SigningMethod{jwt.SigningMethodES256}},
		{name: "P-384 JWK", file: func(t *testing.T) []byte { return jsonBytes(t, jwkOf(t, &k.p384.PublicKey, "e384", "")) }, priv: k.p384, other: mustEC(t, elliptic.P384()),
			algs: []jwt.SigningMethod{jwt.SigningMethodES384}, kid: "e384"},
		{name: "P-521 JWKS", jwks: true, file: func(t *testing.T) []byte {
			return jsonBytes(t, map[string]any{"keys": []any{jwkOf(t, &k.p521.PublicKey, "e521", "ES512")}})
		}, priv: k.p521, other: mustEC(t, elliptic.P521()), algs: []jwt.SigningMethod{jwt.SigningMethodES512}, kid: "e521"},
		{name: "P-521 certificate", file: func(t *testing.T) []byte { return pemCert(t, k.p521, &k.p521.PublicKey) }, priv: k.p521, other: mustEC(t, elliptic.P521()),
			algs: []jwt.SigningMethod{jwt.SigningMethodES512}},
		{name: "Ed25519 PEM", file: func(t *testing.T) []byte { return pemPKIX(t, edPub) }, priv: k.ed, other: k.ed2, algs: []jwt.SigningMethod{jwt.SigningMethodEdDSA}},
		{name: "Ed25519 JWK", file: func(t *testing.T) []byte { return jsonBytes(t, jwkOf(t, edPub, "ed", "EdDSA")) }, priv: k.ed, other: k.ed2,
			algs: []jwt.SigningMethod{jwt.SigningMethodEdDSA}, kid: "ed"},
		{name: "oct JWKS", jwks: true, file: func(t *testing.T) []byte {
			return jsonBytes(t, map[string]any{"keys": []any{jwkOf(t, testSecret, "h1", "")}})
		}, priv: testSecret, other: []byte("other-secret-0123456789abcdef-0123456"),
			algs: []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS512}, kid: "h1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := configs.Default().Auth
			p := writeFile(t, dir, "key", c.file(t))
			if c.jwks {
				cfg.JWKSFile = p
			} else {
				cfg.PublicKeyFiles = []string{p}
			}
			v := newTestVerifier(t, cfg)
			var hdr map[string]any
			if c.kid != "" {
				hdr = map[string]any{"kid": c.kid}
			}
			for _, m := range c.algs {
				id, err := v.Verify(sign(t, m, c.priv, hdr, claimsAt()))
				if err != nil {
					t.Fatalf("%s: %v", m.Alg(), err)
				}
				if id.KeyID != c.kid {
					t.Fatalf("kid %q, want %q", id.KeyID, c.kid)
				}
				if _, err := v.Verify(sign(t, m, c.other, hdr, claimsAt())); reasonOf(t, err) != ReasonBadSignature {
					t.Fatalf("%s by another key: %v", m.Alg(), err)
				}
			}
			for _, m := range c.refuse {
				if _, err := v.Verify(sign(t, m, c.priv, hdr, claimsAt())); reasonOf(t, err) != ReasonBadAlgorithm {
					t.Fatalf("%s: %v, want bad_algorithm", m.Alg(), err)
				}
			}
			// HS256 signed with the public key file's bytes (alg confusion).
			if _, ok := c.priv.([]byte); !ok {
				if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, c.file(t), hdr, claimsAt())); reasonOf(t, err) != ReasonBadAlgorithm {
					t.Fatalf("HS256 with the public key as secret: %v", err)
				}
			}
			if c.kid != "" {
				if _, err := v.Verify(sign(t, c.algs[0], c.priv, map[string]any{"kid": "nope"}, claimsAt())); reasonOf(t, err) != ReasonUnknownKID {
					t.Fatalf("unknown kid: %v", err)
				}
			}
		})
	}
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Algorithm confusion both ways with HMAC and RSA configured together: an
// HS256 token made with the RSA public key as secret fails the signature
// (only the HMAC secret verifies HS*), and RS256 with the wrong key fails.
func TestMixedKeysNoConfusion(t *testing.T) {
	k := keys(t)
	dir := t.TempDir()
	pubPEM := pemPKIX(t, &k.rsa.PublicKey)
	cfg := hsConfig()
	cfg.PublicKeyFiles = []string{writeFile(t, dir, "rsa.pem", pubPEM)}
	v := newTestVerifier(t, cfg)
	if got := strings.Join(v.Algorithms(), ","); got != "HS256,HS384,HS512,PS256,PS384,PS512,RS256,RS384,RS512" {
		t.Fatalf("algorithms %s", got)
	}
	for name, tok := range map[string]string{
		"HS256 keyed with the RSA public key": sign(t, jwt.SigningMethodHS256, pubPEM, nil, claimsAt()),
		"RS256 by another RSA key":            sign(t, jwt.SigningMethodRS256, k.rsa2, nil, claimsAt()),
	} {
		if _, err := v.Verify(tok); reasonOf(t, err) != ReasonBadSignature {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, tok := range map[string]string{
		"HS256":                   hs(t, claimsAt()),
		"RS256":                   sign(t, jwt.SigningMethodRS256, k.rsa, nil, claimsAt()),
		"ES256 is not configured": sign(t, jwt.SigningMethodES256, k.p256, nil, claimsAt()),
	} {
		_, err := v.Verify(tok)
		if (name == "ES256 is not configured") != (reasonOf(t, err) == ReasonBadAlgorithm) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An ES384 token against a P-256 key: the curve decides the algorithm.
	cfg = configs.Default().Auth
	cfg.PublicKeyFiles = []string{writeFile(t, dir, "p256.pem", pemPKIX(t, &k.p256.PublicKey))}
	v = newTestVerifier(t, cfg)
	if _, err := v.Verify(sign(t, jwt.SigningMethodES384, k.p384, nil, claimsAt())); reasonOf(t, err) != ReasonBadAlgorithm {
		t.Fatalf("ES384 with a P-256 key: %v", err)
	}
}

// A JWKS with several keys: the kid picks the key; a token without kid is
// tried with every key of its algorithm.
func TestJWKSKidSelection(t *testing.T) {
	k := keys(t)
	dir := t.TempDir()
	cfg := configs.Default().Auth
	cfg.JWKSFile = writeFile(t, dir, "jwks.json", jsonBytes(t, map[string]any{"keys": []any{
		jwkOf(t, &k.rsa.PublicKey, "a", "RS256"),
		jwkOf(t, &k.rsa2.PublicKey, "b", "RS256"),
		map[string]any{"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},        // skipped
		map[string]any{"kty": "EC", "crv": "P-256", "kid": "ops", "key_ops": []string{"encrypt"}}, // skipped
	}}))
	v := newTestVerifier(t, cfg)
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa2, map[string]any{"kid": "b"}, claimsAt())); err != nil {
		t.Fatalf("kid b: %v", err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa2, map[string]any{"kid": "a"}, claimsAt())); reasonOf(t, err) != ReasonBadSignature {
		t.Fatalf("key b under kid a: %v", err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa2, nil, claimsAt())); err != nil {
		t.Fatalf("no kid: %v", err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa2, map[string]any{"kid": "enc"}, claimsAt())); reasonOf(t, err) != ReasonUnknownKID {
		t.Fatalf("encryption key used: %v", err)
	}
}

func TestKeyFileErrors(t *testing.T) {
	k := keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.p256)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	cases := map[string]struct {
		data []byte
		jwks bool
		want string
	}{
		"private key":      {data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), want: "private key"},
		"small RSA":        {data: pemPKIX(t, &small.PublicKey), want: "2048"},
		"P-224":            {data: pemPKIX(t, &p224.PublicKey), want: "P-224"},
		"empty":            {data: nil, want: "no PEM block"},
		"garbage PEM":      {data: []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), want: "public key"},
		"trailing garbage": {data: append(pemPKIX(t, &k.rsa.PublicKey), "junk"...), want: "after the last PEM block"},
		"JWKS not JSON":    {data: []byte("{nope"), jwks: true, want: "invalid JSON"},
		"JWKS is a JWK":    {data: jsonBytes(t, jwkOf(t, &k.rsa.PublicKey, "a", "")), jwks: true, want: "not a JWKS"},
		"JWKS only enc":    {data: []byte(`{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}`), jwks: true, want: "no usable"},
		"bad kty":          {data: []byte(`{"kty":"XYZ"}`), want: "kty"},
		"EC off curve":     {data: []byte(`{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`), want: "key 0"},
		"EC short x":       {data: []byte(`{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`), want: "32 bytes"},
		"RSA even e":       {data: []byte(`{"kty":"RSA","n":"AQAB","e":"Ag"}`), want: "exponent"},
		"alg mismatch":     {data: jsonBytes(t, jwkOf(t, &k.p256.PublicKey, "a", "RS256")), want: "does not fit"},
		"short oct":        {data: []byte(`{"kty":"oct","k":"c2hvcnQ"}`), want: "at least 32"},
		"Ed448":            {data: []byte(`{"kty":"OKP","crv":"Ed448","x":"AAAA"}`), want: "Ed448"},
	}
	for name, c := range cases {
		dir := t.TempDir()
		cfg := configs.Default().Auth
		p := writeFile(t, dir, "k", c.data)
		if c.jwks {
			cfg.JWKSFile = p
		} else {
			cfg.PublicKeyFiles = []string{p}
		}
		_, err := NewVerifier(cfg, nil)
		if !configs.IsConfigError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a config error containing %q", name, err, c.want)
		}
	}
	// A secret file shorter than 32 bytes, and whitespace trimmed.
	dir := t.TempDir()
	cfg := configs.Default().Auth
	cfg.HMACSecretFile = writeFile(t, dir, "s", []byte("  too-short \n"))
	if _, err := NewVerifier(cfg, nil); !configs.IsConfigError(err) || !strings.Contains(err.Error(), "9 bytes") {
		t.Errorf("short secret file: %v", err)
	}
	cfg.HMACSecretFile = writeFile(t, dir, "s", append(append([]byte("\n"), testSecret...), "\r\n"...))
	v := newTestVerifier(t, cfg)
	if _, err := v.Verify(hs(t, claimsAt())); err != nil {
		t.Errorf("trimmed secret file: %v", err)
	}
}
