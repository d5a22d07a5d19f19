package testenv

import (
	"testing"
	"time"

	"mqstack/auth"
)

// Token signs a token with secret as auth.Mint does and fails the test when
// it cannot. Role defaults to "mq" and TTL to an hour; every other field of o
// is passed on as given (Now in the past makes a token that has already
// expired).
func Token(t testing.TB, secret []byte, o auth.MintOptions) string {
	t.Helper()
	if o.Role == "" {
		o.Role = "mq"
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	tok, err := auth.Mint(secret, o)
	if err != nil {
		t.Fatalf("testenv: minting a token: %v", err)
	}
	return tok
}
