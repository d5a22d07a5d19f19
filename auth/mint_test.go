package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mqstack/configs"
)

func TestMintRoundTrip(t *testing.T) {
	cfg := hsConfig()
	cfg.RoleClaim = "db_role"
	cfg.Audience = "mqstack"
	cfg.Issuer = "dev"
	v := newTestVerifier(t, cfg)
	tok, err := Mint(testSecret, MintOptions{
		Role: "mq_app", RoleClaim: "db_role", Subject: "billing", Audience: "mqstack", Issuer: "dev",
		TTL: 10 * time.Minute, Now: testNow,
		Grants: []GrantEntry{{Queues: []string{"orders_*"}, Ops: []string{"send"}}, {Topics: []string{"orders.#"}, Ops: []string{"publish"}}},
		Deny:   []GrantEntry{{Queues: []string{"orders_admin*"}, Ops: []string{"*"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != "mq_app" || id.Subject != "billing" || len(id.JTI) != 24 || !id.ExpiresAt.Equal(testNow.Add(10*time.Minute)) {
		t.Fatalf("identity %+v", id)
	}
	g := id.Grants
	if !g.Allows(OpSend, "orders_1") || g.Allows(OpSend, "orders_admin") || g.Allows(OpRead, "orders_1") || !g.AllowsTopic("orders.#") {
		t.Fatal("grants lost")
	}
	hdr, _, _ := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if hdr.Method.Alg() != "HS256" {
		t.Fatalf("alg %s", hdr.Method.Alg())
	}

	tok, err = Mint(testSecret, MintOptions{Role: "mq", TTL: time.Hour, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	id, err = newTestVerifier(t, hsConfig()).Verify(tok)
	if err != nil || id.Grants != nil || id.Subject != "mqstack-dev" {
		t.Fatalf("plain token: %+v %v", id, err)
	}

	for name, o := range map[string]MintOptions{
		"bad role":  {Role: "a b", TTL: time.Hour},
		"no ttl":    {Role: "mq"},
		"bad grant": {Role: "mq", TTL: time.Hour, Grants: []GrantEntry{{Queues: []string{"q"}, Ops: []string{"sned"}}}},
	} {
		if _, err := Mint(testSecret, o); err == nil {
			t.Errorf("%s: minted", name)
		}
	}
	if _, err := Mint([]byte("short"), MintOptions{Role: "mq", TTL: time.Hour}); err == nil {
		t.Error("short secret accepted")
	}
}

func TestDevSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := ReadDevSecret(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing secret: %v", err)
	}
	var wg sync.WaitGroup
	secrets := make([][]byte, 8)
	for i := range secrets {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := EnsureDevSecret(dir)
			if err != nil {
				t.Error(err)
			}
			secrets[i] = s
		}(i)
	}
	wg.Wait()
	for _, s := range secrets[1:] {
		if string(s) != string(secrets[0]) {
			t.Fatal("concurrent EnsureDevSecret made different secrets")
		}
	}
	if len(secrets[0]) != 64 {
		t.Fatalf("secret of %d bytes", len(secrets[0]))
	}
	st, err := os.Stat(DevSecretPath(dir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("stray files: %v", entries)
	}
	again, err := ReadDevSecret(dir)
	if err != nil || string(again) != string(secrets[0]) {
		t.Fatal("ReadDevSecret differs")
	}
	os.WriteFile(DevSecretPath(dir), []byte("short\n"), 0o600)
	if _, err := EnsureDevSecret(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("short dev secret: %v", err)
	}
}

func TestEmbeddedConfig(t *testing.T) {
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	a, err := EmbeddedConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.DefaultRole != "mq" || a.HMACSecretFile != DevSecretPath(cfg.DataDir) {
		t.Fatalf("embedded auth %+v", a)
	}
	v := newTestVerifier(t, a)
	secret, _ := ReadDevSecret(cfg.DataDir)
	tok, _ := Mint(secret, MintOptions{Role: "mq", TTL: time.Hour, Now: testNow})
	if id, err := v.Verify(tok); err != nil || id.Role != "mq" {
		t.Fatalf("dev token: %v", err)
	}
	// A configured key wins; no dev secret is made.
	cfg.DataDir = filepath.Join(t.TempDir(), "other")
	cfg.Auth.HMACSecret = configs.Secret(testSecret)
	cfg.Auth.DefaultRole = "app"
	a, err = EmbeddedConfig(cfg)
	if err != nil || a.HMACSecretFile != "" || a.DefaultRole != "app" {
		t.Fatalf("configured key: %+v %v", a, err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("dev secret made although a key is configured")
	}
	if strings.Contains(a.HMACSecret.String(), string(testSecret)) {
		t.Fatal("secret printed")
	}
}
