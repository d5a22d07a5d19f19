package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mqstack/auth"
	"mqstack/configs"
)

// verifierFor verifies tokens as the embedded stack on dataDir would.
func verifierFor(t *testing.T, a configs.AuthConfig) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func devAuth(dir string) configs.AuthConfig {
	a := configs.Default().Auth
	a.HMACSecretFile = auth.DevSecretPath(dir)
	return a
}

func TestTokenWithDevSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := auth.EnsureDevSecret(dir); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCmd(t, "token", "--data-dir", dir, "--role", "mq_app", "--sub", "billing", "--ttl", "10m",
		"--grant", "send:orders_*", "--grant", "read:orders_dlq", "--grant", "delete:orders_dlq", "--grant", "publish:orders.*",
		"--deny", "*:orders_admin*")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || strings.Count(out, ".") != 2 || errOut != "" {
		t.Fatalf("want only the token and a newline on stdout, got %q (stderr %q)", out, errOut)
	}
	before := time.Now()
	id, err := verifierFor(t, devAuth(dir)).Verify(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != "mq_app" || id.Subject != "billing" {
		t.Fatalf("identity %+v", id)
	}
	if left := id.ExpiresAt.Sub(before); left < 9*time.Minute || left > 10*time.Minute+time.Second {
		t.Fatalf("expires in %s, want 10m", left)
	}
	g := id.Grants
	for _, c := range []struct {
		op    auth.Op
		queue string
		want  bool
	}{
		{auth.OpSend, "orders_eu", true}, {auth.OpSend, "orders_admin_x", false}, {auth.OpRead, "orders_eu", false},
		{auth.OpPop, "orders_dlq", true}, {auth.OpPublish, "orders.created", true}, {auth.OpPublish, "orders_admin_x.y", false},
	} {
		if got := g.Allows(c.op, c.queue); got != c.want {
			t.Errorf("Allows(%s, %s) = %v", c.op, c.queue, got)
		}
	}

	// Without --role: the default role, postgres.default_role unless
	// auth.default_role is set; without --grant: no grant claim.
	out, errOut, code = runCmd(t, "token", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	id, err = verifierFor(t, devAuth(dir)).Verify(strings.TrimSpace(out))
	if err != nil || id.Role != "mq" || id.Grants != nil {
		t.Fatalf("default token: %+v %v", id, err)
	}
	if left := time.Until(id.ExpiresAt); left < 59*time.Minute || left > time.Hour+time.Second {
		t.Fatalf("default ttl: expires in %s", left)
	}
	t.Setenv("MQSTACK_AUTH_DEFAULT_ROLE", "app")
	out, _, code = runCmd(t, "token", "--data-dir", dir, "--aud", "mqstack")
	if code != 0 {
		t.Fatal(code)
	}
	a := devAuth(dir)
	a.Audience = "mqstack"
	if id, err := verifierFor(t, a).Verify(strings.TrimSpace(out)); err != nil || id.Role != "app" {
		t.Fatalf("auth.default_role token: %+v %v", id, err)
	}
}

func TestTokenWithConfiguredSecret(t *testing.T) {
	secret := "configured-secret-0123456789abcdef-0123"
	t.Setenv("MQSTACK_AUTH_HMAC_SECRET", secret)
	t.Setenv("MQSTACK_AUTH_AUDIENCE", "mqstack")
	t.Setenv("MQSTACK_AUTH_ISSUER", "mq-dev")
	t.Setenv("MQSTACK_AUTH_ROLE_CLAIM", "db_role")
	dir := filepath.Join(t.TempDir(), "none") // no dev secret needed, none made
	out, errOut, code := runCmd(t, "token", "--data-dir", dir, "--role", "worker")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	a := configs.Default().Auth
	a.HMACSecret = configs.Secret(secret)
	a.Audience, a.Issuer, a.RoleClaim = "mqstack", "mq-dev", "db_role"
	id, err := verifierFor(t, a).Verify(strings.TrimSpace(out))
	if err != nil || id.Role != "worker" {
		t.Fatalf("%+v %v", id, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("token made a data directory")
	}
	if strings.Contains(out+errOut, secret) {
		t.Fatal("secret printed")
	}
}

func TestTokenRefusals(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	_, errOut, code := runCmd(t, "token", "--data-dir", empty)
	if code != 2 || !strings.Contains(errOut, "mqstack up") || !strings.Contains(errOut, "auth.hmac_secret") {
		t.Fatalf("no key: exit %d, stderr %q", code, errOut)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := auth.EnsureDevSecret(dir); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"superuser role":     {"--role", "postgres"},
		"bad role":           {"--role", "no such role"},
		"unknown op":         {"--grant", "sned:orders"},
		"grant without glob": {"--grant", "send"},
		"deny without grant": {"--deny", "drop:*"},
		"zero ttl":           {"--ttl", "0s"},
		"stray argument":     {"extra"},
	} {
		out, errOut, code := runCmd(t, append([]string{"token", "--data-dir", dir}, args...)...)
		if code != 2 || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out, errOut)
		}
	}
	t.Run("policy", func(t *testing.T) {
		t.Setenv("MQSTACK_AUTH_ALLOWED_ROLES", "mq")
		t.Setenv("MQSTACK_AUTH_MAX_TOKEN_LIFETIME", "1h")
		for name, args := range map[string][]string{
			"role not allowed":  {"--role", "other"},
			"lifetime too long": {"--ttl", "2h"},
		} {
			out, errOut, code := runCmd(t, append([]string{"token", "--data-dir", dir}, args...)...)
			if code != 2 || out != "" || !strings.Contains(errOut, "would refuse") {
				t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out, errOut)
			}
		}
	})
	t.Run("no default role allowed", func(t *testing.T) {
		t.Setenv("MQSTACK_AUTH_ALLOWED_ROLES", "app")
		if out, errOut, code := runCmd(t, "token", "--data-dir", dir); code != 2 || out != "" || !strings.Contains(errOut, "--role") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
		if out, errOut, code := runCmd(t, "token", "--data-dir", dir, "--role", "app"); code != 0 || out == "" {
			t.Errorf("allowed --role: exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("short secret", func(t *testing.T) {
		t.Setenv("MQSTACK_AUTH_HMAC_SECRET", "short")
		if _, errOut, code := runCmd(t, "token", "--data-dir", dir); code != 2 || strings.Contains(errOut, "short\"") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("public keys only", func(t *testing.T) {
		t.Setenv("MQSTACK_AUTH_JWKS_FILE", filepath.Join(dir, "jwks.json"))
		if _, errOut, code := runCmd(t, "token", "--data-dir", dir); code != 2 || !strings.Contains(errOut, "public keys") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("superuser allowed", func(t *testing.T) {
		t.Setenv("MQSTACK_AUTH_ALLOW_SUPERUSER_ROLES", "true")
		if out, errOut, code := runCmd(t, "token", "--data-dir", dir, "--role", "postgres"); code != 0 || out == "" {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}
