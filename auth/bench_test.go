package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func benchToken(b *testing.B) string {
	return hs(b, with(claimsAt(), "scope", "mq.send:orders_* mq.read:orders_dlq"))
}

// BenchmarkVerifyWarmCache is the reconnecting-client path: the token was
// verified before.
func BenchmarkVerifyWarmCache(b *testing.B) {
	v := newTestVerifier(b, hsConfig())
	tok := benchToken(b)
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyWarmCacheParallel(b *testing.B) {
	v := newTestVerifier(b, hsConfig())
	tok := benchToken(b)
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyColdHS256(b *testing.B) {
	cfg := hsConfig()
	cfg.CacheSize = 0
	v := newTestVerifier(b, cfg)
	tok := benchToken(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyColdRS256(b *testing.B) {
	k := keys(b)
	cfg := hsConfig()
	cfg.CacheSize = 0
	cfg.HMACSecret = ""
	cfg.PublicKeyFiles = []string{writeFile(b, b.TempDir(), "rsa.pem", pemPKIX(b, &k.rsa.PublicKey))}
	v := newTestVerifier(b, cfg)
	tok := sign(b, jwt.SigningMethodRS256, k.rsa, nil, claimsAt())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGrantsAllows(b *testing.B) {
	g, err := ParseGrants([]byte(`{"grants":[{"queues":["orders","orders_*","billing_*_in"],"ops":["send","read"]}],"deny":[{"queues":["orders_admin*"],"ops":["*"]}]}`), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !g.Allows(OpSend, "orders_eu_west") {
			b.Fatal("denied")
		}
	}
}
