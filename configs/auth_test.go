package configs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

const goodSecret = "0123456789abcdef0123456789abcdef-auth-test"

func TestAuthDefaults(t *testing.T) {
	a := Default().Auth
	if a.RoleClaim != "role" || a.Leeway != 30*time.Second || a.CacheSize != 10000 || a.DefaultRole != "" ||
		a.AllowSuperuserRoles || a.MaxTokenLifetime != 0 || a.HasKey() {
		t.Fatalf("auth defaults %+v", a)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAuthValidate(t *testing.T) {
	cases := map[string]struct {
		mod  func(*AuthConfig)
		want string
	}{
		"short secret":        {func(a *AuthConfig) { a.HMACSecret = "too-short" }, "at least 32"},
		"secret and file":     {func(a *AuthConfig) { a.HMACSecret = goodSecret; a.HMACSecretFile = "/s" }, "both set"},
		"empty key file":      {func(a *AuthConfig) { a.PublicKeyFiles = []string{""} }, "public_key_files[0]"},
		"empty role claim":    {func(a *AuthConfig) { a.RoleClaim = "" }, "role_claim"},
		"bad default role":    {func(a *AuthConfig) { a.DefaultRole = "mq app" }, "default_role"},
		"pg_ default role":    {func(a *AuthConfig) { a.DefaultRole = "pg_monitor" }, "default_role"},
		"bad allowed role":    {func(a *AuthConfig) { a.AllowedRoles = []string{"ok", "not ok"} }, "allowed_roles"},
		"default not allowed": {func(a *AuthConfig) { a.DefaultRole = "mq"; a.AllowedRoles = []string{"app"} }, "not in auth.allowed_roles"},
		"negative leeway":     {func(a *AuthConfig) { a.Leeway = -time.Second }, "leeway"},
		"huge leeway":         {func(a *AuthConfig) { a.Leeway = time.Hour }, "leeway"},
		"negative lifetime":   {func(a *AuthConfig) { a.MaxTokenLifetime = -time.Second }, "max_token_lifetime"},
		"negative cache":      {func(a *AuthConfig) { a.CacheSize = -1 }, "cache_size"},
	}
	for name, c := range cases {
		cfg := Default()
		c.mod(&cfg.Auth)
		_, err := cfg.Validate()
		if !IsConfigError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a config error containing %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "too-short") {
			t.Errorf("%s: the error shows the secret", name)
		}
	}
	cfg := Default()
	cfg.Auth.HMACSecret = goodSecret
	cfg.Auth.DefaultRole = "App-1"
	cfg.Auth.AllowedRoles = []string{"App-1", "mq"}
	if _, err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAuthFromYAMLAndEnv(t *testing.T) {
	cfg := Default()
	y := `auth:
  hmac_secret_file: /etc/mq/secret
  public_key_files: [/etc/mq/a.pem, /etc/mq/b.jwk]
  role_claim: https://example.com/role
  allowed_roles: [app]
  leeway: 5s
  max_token_lifetime: 24h
`
	if err := Decode(strings.NewReader(y), &cfg); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"MQSTACK_AUTH_HMAC_SECRET_FILE=",
		"MQSTACK_AUTH_HMAC_SECRET=" + goodSecret,
		"MQSTACK_AUTH_ALLOWED_ROLES=app, mq",
		"MQSTACK_AUTH_ALLOW_SUPERUSER_ROLES=true",
		"MQSTACK_AUTH_LEEWAY=1m",
		"MQSTACK_AUTH_CACHE_SIZE=5",
		"MQSTACK_AUTH_AUDIENCE=mqstack",
	}
	if err := ApplyEnv(&cfg, env); err != nil {
		t.Fatal(err)
	}
	a := cfg.Auth
	if string(a.HMACSecret) != goodSecret || a.HMACSecretFile != "" || len(a.PublicKeyFiles) != 2 ||
		a.RoleClaim != "https://example.com/role" || fmt.Sprint(a.AllowedRoles) != "[app mq]" || !a.AllowSuperuserRoles ||
		a.Leeway != time.Minute || a.MaxTokenLifetime != 24*time.Hour || a.CacheSize != 5 || a.Audience != "mqstack" || !a.HasKey() {
		t.Fatalf("auth %+v", a)
	}
	if _, err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The HMAC secret never shows: not in Redacted, fmt, JSON or YAML.
func TestAuthSecretNeverShown(t *testing.T) {
	cfg := Default()
	cfg.Auth.HMACSecret = goodSecret
	shown := map[string]string{
		"Redacted": cfg.Redacted(),
		"%v":       fmt.Sprintf("%v", cfg),
		"%+v":      fmt.Sprintf("%+v", cfg),
		"%#v":      fmt.Sprintf("%#v", cfg),
		"%s":       fmt.Sprintf("%s", cfg.Auth.HMACSecret),
	}
	j, _ := json.Marshal(cfg)
	shown["json"] = string(j)
	for how, s := range shown {
		if strings.Contains(s, goodSecret) {
			t.Errorf("%s shows the secret:\n%s", how, s)
		}
	}
	if !strings.Contains(cfg.Redacted(), "hmac_secret: '[redacted]'") && !strings.Contains(cfg.Redacted(), `hmac_secret: "[redacted]"`) {
		t.Errorf("Redacted does not mark the secret:\n%s", cfg.Redacted())
	}
	if strings.Contains(Default().Redacted(), "redacted") {
		t.Error("an empty secret is shown as redacted")
	}
}

func TestEmbeddedAuth(t *testing.T) {
	cfg := Default()
	if got := cfg.EmbeddedAuth().DefaultRole; got != "mq" {
		t.Fatalf("embedded default role %q, want postgres.default_role", got)
	}
	cfg.Auth.DefaultRole = "app"
	if got := cfg.EmbeddedAuth().DefaultRole; got != "app" {
		t.Fatalf("embedded default role %q, want auth.default_role", got)
	}
	cfg.Auth.DefaultRole = ""
	cfg.Auth.AllowedRoles = []string{"app"}
	if got := cfg.EmbeddedAuth().DefaultRole; got != "" {
		t.Fatalf("embedded default role %q although allowed_roles leaves it out", got)
	}
	cfg.Auth.AllowedRoles = []string{"app", "mq"}
	if got := cfg.EmbeddedAuth().DefaultRole; got != "mq" {
		t.Fatalf("embedded default role %q, want mq (allowed)", got)
	}
	if cfg.Auth.DefaultRole != "" || Default().Auth.DefaultRole != "" {
		t.Fatal("EmbeddedAuth changed the config")
	}
}

func TestValidRoleName(t *testing.T) {
	for name, want := range map[string]bool{
		"mq": true, "mq_app": true, "App-1": true, "_x": true, "a$b": true,
		"": false, "1a": false, "-a": false, "a b": false, "a.b": false, `a"b`: false,
		"pg_monitor": false, "PG_x": false, strings.Repeat("a", 63): true, strings.Repeat("a", 64): false,
	} {
		if got := ValidRoleName(name); got != want {
			t.Errorf("ValidRoleName(%q) = %v", name, got)
		}
	}
}
