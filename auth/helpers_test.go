package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mqstack/configs"
)

// testNow is the fixed clock of most tests.
var testNow = time.Unix(1_900_000_000, 0)

var testSecret = []byte("test-secret-0123456789abcdef-0123456789")

// testKeys are generated once: RSA generation is slow under -race.
type testKeys struct {
	rsa, rsa2  *rsa.PrivateKey
	p256, p384 *ecdsa.PrivateKey
	p521       *ecdsa.PrivateKey
	ed, ed2    ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func keys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		keysVal.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		keysVal.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		keysVal.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(err)
		_, keysVal.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		_, keysVal.ed2, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
	return &keysVal
}

// newTestVerifier builds a verifier with the fixed clock testNow.
func newTestVerifier(t testing.TB, cfg configs.AuthConfig) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg, nil)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	v.clock = func() time.Time { return testNow }
	return v
}

// hsConfig is the default auth config with the test HMAC secret.
func hsConfig() configs.AuthConfig {
	c := configs.Default().Auth
	c.HMACSecret = configs.Secret(testSecret)
	return c
}

// claimsAt are valid claims at testNow: role mq_app, one hour left.
func claimsAt() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":  "svc",
		"jti":  "id-1",
		"role": "mq_app",
		"iat":  testNow.Unix(),
		"exp":  testNow.Add(time.Hour).Unix(),
	}
}

// sign signs claims with key using method, with extra header members.
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

func hs(t testing.TB, claims jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodHS256, testSecret, nil, claims)
}

// with returns a copy of c with changes applied; a nil value deletes.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// unsigned builds a token from raw header and payload JSON and a signature.
func unsigned(header, payload string, sig string) string {
	e := base64.RawURLEncoding.EncodeToString
	return e([]byte(header)) + "." + e([]byte(payload)) + "." + sig
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemPKIX(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func pemCert(t testing.TB, priv any, pub any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// jwkOf renders a public key as a JWK map.
func jwkOf(t testing.TB, pub any, kid, alg string) map[string]any {
	t.Helper()
	e := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"use": "sig"}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", e(p.N.Bytes()), e(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		raw, err := p.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m["kty"], m["crv"] = "EC", p.Curve.Params().Name
		m["x"], m["y"] = e(raw[1:1+size]), e(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", e(p)
	case []byte:
		m["kty"], m["k"] = "oct", e(p)
	default:
		t.Fatalf("jwkOf %T", pub)
	}
	if kid != "" {
		m["kid"] = kid
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func jsonBytes(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reasonOf fails the test unless err is an *Error, and returns its reason.
func reasonOf(t testing.TB, err error) Reason {
	t.Helper()
	if err == nil {
		return ""
	}
	r := ReasonOf(err)
	if r == "" {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	return r
}
