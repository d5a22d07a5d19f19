package clients

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

func signHS(t *testing.T, claims jwt.MapClaims, header map[string]any, secret []byte) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every bad token is refused at login with FATAL 28P01 (28000 for a role
// problem), and the message names the reason, never the token.
func TestTokenRefusalsOnTheWire(t *testing.T) {
	st := startStack(t, func(c *configs.Config) {
		c.Auth.Audience = "mqstack"
		c.Auth.Issuer = "https://issuer.test"
	})
	host, port := hostPort(t, st.ProxyAddr())
	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"role": "mq", "aud": "mqstack", "iss": "https://issuer.test",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := jwt.NewWithClaims(jwt.SigningMethodRS256, good()).SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, good()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := signHS(t, good(), nil, testSecret)
	badSig := valid[:len(valid)-4] + "AAAA"
	if badSig == valid {
		badSig = valid[:len(valid)-4] + "BBBB"
	}
	cases := []struct {
		name, user, token, code, reason string
	}{
		{"alg none", "mq", none, "28P01", "algorithm"},
		{"RS256 while only HMAC is configured", "mq", rs, "28P01", "algorithm"},
		{"bad signature", "mq", badSig, "28P01", "signature"},
		{"expired beyond leeway", "mq", signHS(t, with("exp", now.Add(-time.Minute).Unix()), nil, testSecret), "28P01", "expired"},
		{"not yet valid", "mq", signHS(t, with("nbf", now.Add(10*time.Minute).Unix()), nil, testSecret), "28P01", "not valid yet"},
		{"wrong audience", "mq", signHS(t, with("aud", "someone-else"), nil, testSecret), "28P01", "audience"},
		{"wrong issuer", "mq", signHS(t, with("iss", "https://evil.test"), nil, testSecret), "28P01", "issuer"},
		{"unknown kid", "mq", signHS(t, good(), map[string]any{"kid": "nope"}, testSecret), "28P01", "key id"},
		{"oversize", "mq", signHS(t, with("pad", strings.Repeat("x", 9000)), nil, testSecret), "28P01", ""},
		{"garbage", "mq", "not-a-jwt", "28P01", "malformed"},
		{"user differs from role", "postgres", valid, "28000", "mq"},
		{"superuser role", "postgres", signHS(t, with("role", "postgres"), nil, testSecret), "28000", "superuser"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := fmt.Sprintf("host=%s port=%s user=%s dbname=postgres sslmode=require password=%s connect_timeout=10", host, port, c.user, c.token)
			conn, err := pgx.Connect(ctxFor(t, 15*time.Second), cs)
			if err == nil {
				conn.Close(ctxFor(t, time.Second))
				t.Fatal("login succeeded")
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a server error: %v", err)
			}
			if pe.Code != c.code || pe.Severity != "FATAL" {
				t.Fatalf("got %s %s (%s), want FATAL %s", pe.Severity, pe.Code, pe.Message, c.code)
			}
			if c.reason != "" && !strings.Contains(pe.Message+pe.Detail, c.reason) {
				t.Errorf("message %q does not name %q", pe.Message, c.reason)
			}
			if len(c.token) > 20 && strings.Contains(pe.Message+pe.Detail+pe.Hint, c.token[len(c.token)-20:]) {
				t.Errorf("the error echoes the token")
			}
		})
	}
	// The valid token logs in.
	cs := fmt.Sprintf("host=%s port=%s user=mq dbname=postgres sslmode=require password=%s", host, port, valid)
	conn, err := pgx.Connect(ctxFor(t, 15*time.Second), cs)
	if err != nil {
		t.Fatalf("a valid token was refused: %v", err)
	}
	conn.Close(ctxFor(t, time.Second))
}

// No statement lets a session reach another role's rights: each attempt is
// refused by Postgres with 42501 and current_user stays the token's role,
// on every backend the pool hands out afterwards.
func TestRoleEscapesRefused(t *testing.T) {
	st := startStack(t, nil)
	host, port := hostPort(t, st.ProxyAddr())
	cs := fmt.Sprintf("host=%s port=%s user=mq dbname=postgres sslmode=disable password=%s", host, port, testenv.Token(t, testSecret, auth.MintOptions{}))
	conn, err := pgx.Connect(ctxFor(t, 15*time.Second), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctxFor(t, time.Second))
	ctx := ctxFor(t, 30*time.Second)
	for _, sql := range []string{
		"SET ROLE postgres",
		"SET SESSION AUTHORIZATION postgres",
		"SELECT set_config('role', 'postgres', false)",
		"SELECT set_config('session_authorization', 'postgres', false)",
		"SET LOCAL ROLE postgres",
	} {
		_, err := conn.Exec(ctx, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: err = %v, want 42501", sql, err)
		}
	}
	if _, err := conn.Exec(ctx, "RESET ROLE"); err != nil {
		t.Errorf("RESET ROLE: %v", err)
	}
	// Many statements, so that they land on every backend of the pool.
	for i := 0; i < 10; i++ {
		var who, super string
		if err := conn.QueryRow(ctx, "SELECT current_user, current_setting('is_superuser')").Scan(&who, &super); err != nil {
			t.Fatal(err)
		}
		if who != "mq" || super != "off" {
			t.Fatalf("statement %d ran as %s (superuser %s)", i, who, super)
		}
	}
}
