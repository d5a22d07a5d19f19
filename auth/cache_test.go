package auth

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mqstack/configs"
)

func TestCacheHit(t *testing.T) {
	v := newTestVerifier(t, hsConfig())
	tok := hs(t, claimsAt())
	id1, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Fatalf("cached identity differs: %+v vs %+v", id1, id2)
	}
	if st := v.CacheStats(); st.Hits != 1 || st.Misses != 1 || st.Size != 1 {
		t.Fatalf("stats %+v, want 1 hit, 1 miss, size 1", st)
	}
	// Refused tokens are not cached.
	bad := sign(t, jwt.SigningMethodHS256, []byte("wrong-secret-0123456789abcdef-0123456"), nil, claimsAt())
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(bad); reasonOf(t, err) != ReasonBadSignature {
			t.Fatal(err)
		}
	}
	if st := v.CacheStats(); st.Hits != 1 || st.Misses != 3 || st.Size != 1 {
		t.Fatalf("stats %+v after refusals", st)
	}
}

// A token expiring after 2262 (past UnixNano) stays valid when cached.
func TestCacheFarFuture(t *testing.T) {
	v := newTestVerifier(t, hsConfig())
	tok := hs(t, with(claimsAt(), "exp", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()))
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	if v.CacheStats().Hits != 1 {
		t.Fatal("not served from the cache")
	}
}

// A cached token that expires meanwhile is refused and dropped.
func TestCachedTokenExpires(t *testing.T) {
	v := newTestVerifier(t, hsConfig())
	tok := hs(t, claimsAt())
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	v.clock = func() time.Time { return testNow.Add(time.Hour + 29*time.Second) }
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	v.clock = func() time.Time { return testNow.Add(time.Hour + 30*time.Second) }
	_, err := v.Verify(tok)
	if !IsExpired(err) {
		t.Fatalf("expired cached token: %v", err)
	}
	if st := v.CacheStats(); st.Hits != 2 || st.Size != 0 {
		t.Fatalf("stats %+v: the expired entry should be hit then dropped", st)
	}
	if _, err := v.Verify(tok); !IsExpired(err) {
		t.Fatalf("after drop: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	cfg := hsConfig()
	cfg.CacheSize = 64
	v := newTestVerifier(t, cfg)
	for i := 0; i < 1000; i++ {
		if _, err := v.Verify(hs(t, with(claimsAt(), "jti", fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if st := v.CacheStats(); st.Size > 64 || st.Size < 32 {
		t.Fatalf("cache size %d, want at most 64 (and well used)", st.Size)
	}
	cfg.CacheSize = 0
	v = newTestVerifier(t, cfg)
	tok := hs(t, claimsAt())
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if st := v.CacheStats(); st != (CacheStats{}) {
		t.Fatalf("disabled cache counted %+v", st)
	}
}

func TestCacheLRU(t *testing.T) {
	c := newTokenCache(3)
	k := func(i byte) *[32]byte { return &[32]byte{i} }
	for i := byte(1); i <= 3; i++ {
		c.put(k(i), Identity{Role: fmt.Sprint(i)}, 1)
	}
	c.get(k(1)) // 1 is now the most recent; 2 the least
	c.put(k(4), Identity{Role: "4"}, 1)
	if _, _, ok := c.get(k(2)); ok {
		t.Fatal("least recently used entry not evicted")
	}
	for _, i := range []byte{1, 3, 4} {
		if id, _, ok := c.get(k(i)); !ok || id.Role != fmt.Sprint(i) {
			t.Fatalf("entry %d lost", i)
		}
	}
	c.put(k(3), Identity{Role: "3b"}, 2)
	if id, d, _ := c.get(k(3)); id.Role != "3b" || d != 2 || c.len() != 3 {
		t.Fatal("update in place")
	}
	c.remove(k(3))
	if _, _, ok := c.get(k(3)); ok || c.len() != 2 {
		t.Fatal("remove")
	}
}

func TestCacheConcurrent(t *testing.T) {
	cfg := hsConfig()
	cfg.CacheSize = 100
	v := newTestVerifier(t, cfg)
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = hs(t, with(claimsAt(), "jti", fmt.Sprint(i)))
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 400; i++ {
				id, err := v.Verify(toks[(i*7+g)%len(toks)])
				if err != nil || id.Role != "mq_app" {
					t.Errorf("verify: %v", err)
					return
				}
				if i%100 == 0 && g == 0 {
					if err := v.Reload(); err != nil {
						t.Errorf("reload: %v", err)
					}
				}
			}
		}(g)
	}
	wg.Wait()
	if st := v.CacheStats(); st.Size > 100 {
		t.Fatalf("size %d over bound", st.Size)
	}
}

// Reload rotates keys from the files, empties the cache, and keeps the old
// keys when the new files are bad.
func TestReload(t *testing.T) {
	k := keys(t)
	dir := t.TempDir()
	secretA := []byte("secret-A-0123456789abcdef-0123456789")
	secretB := []byte("secret-B-0123456789abcdef-0123456789")
	cfg := configs.Default().Auth
	cfg.HMACSecretFile = writeFile(t, dir, "secret", secretA)
	cfg.JWKSFile = writeFile(t, dir, "jwks.json", jsonBytes(t, map[string]any{"keys": []any{jwkOf(t, &k.rsa.PublicKey, "k1", "RS256")}}))
	v := newTestVerifier(t, cfg)

	tokA := sign(t, jwt.SigningMethodHS256, secretA, nil, claimsAt())
	tokB := sign(t, jwt.SigningMethodHS256, secretB, nil, claimsAt())
	tokK1 := sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, claimsAt())
	tokK2 := sign(t, jwt.SigningMethodRS256, k.rsa2, map[string]any{"kid": "k2"}, claimsAt())
	for _, tok := range []string{tokA, tokK1} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Verify(tokK2); reasonOf(t, err) != ReasonUnknownKID {
		t.Fatalf("k2 before rotation: %v", err)
	}
	if v.CacheStats().Size != 2 {
		t.Fatal("tokens not cached")
	}

	// Rotate: secret B, and k1 replaced by k2.
	writeFile(t, dir, "secret", secretB)
	writeFile(t, dir, "jwks.json", jsonBytes(t, map[string]any{"keys": []any{jwkOf(t, &k.rsa2.PublicKey, "k2", "RS256")}}))
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if v.CacheStats().Size != 0 {
		t.Fatal("reload kept the cache")
	}
	if _, err := v.Verify(tokA); reasonOf(t, err) != ReasonBadSignature {
		t.Fatalf("old secret after rotation: %v", err)
	}
	if _, err := v.Verify(tokK1); reasonOf(t, err) != ReasonUnknownKID {
		t.Fatalf("retired kid after rotation: %v", err)
	}
	for _, tok := range []string{tokB, tokK2} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("new key: %v", err)
		}
	}

	// A broken file: Reload fails, the keys of the last good load stay.
	writeFile(t, dir, "jwks.json", []byte(`{"keys": [{"kty": "RSA"`))
	if err := v.Reload(); !configs.IsConfigError(err) {
		t.Fatalf("broken reload: %v", err)
	}
	os.Remove(cfg.HMACSecretFile)
	if err := v.Reload(); err == nil {
		t.Fatal("reload without the secret file succeeded")
	}
	for _, tok := range []string{tokB, tokK2} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("after failed reload: %v", err)
		}
	}
	if _, err := v.Verify(tokA); reasonOf(t, err) != ReasonBadSignature {
		t.Fatalf("failed reload brought back old key: %v", err)
	}
}
