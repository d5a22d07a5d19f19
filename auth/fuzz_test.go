package auth

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary strings to Verify: it must not panic, must
// answer with an *Error or an identity with a valid role, and must never echo
// the token in its message.
func FuzzVerify(f *testing.F) {
	f.Add(hs(f, claimsAt()))
	f.Add(hs(f, with(claimsAt(), "scope", "mq.send:orders_* mq.publish:a.*", "mq", map[string]any{
		"grants": []any{map[string]any{"queues": []string{"q*"}, "ops": []string{"read", "delete"}}},
		"deny":   []any{map[string]any{"topics": []string{"x"}, "ops": []string{"publish"}}},
	})))
	f.Add("e30.e30.")
	f.Add(unsigned(`{"alg":"none"}`, `{"role":"x","exp":1900003600}`, ""))
	v := newTestVerifier(f, hsConfig())
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(token)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error %v is not an *Error", err)
			}
			if len(token) >= 16 && strings.Contains(err.Error(), token) {
				t.Fatalf("error echoes the token")
			}
			return
		}
		if id.Role == "" || id.ExpiresAt.IsZero() {
			t.Fatalf("accepted token with identity %+v", id)
		}
		id.Grants.Allows(OpPop, "q1")
		id.Grants.AllowsTopic("a.b")
	})
}

// FuzzGrantParse feeds arbitrary mq claims and scopes to ParseGrants: no
// panic, a *Error on refusal, and consistent answers on success.
func FuzzGrantParse(f *testing.F) {
	f.Add([]byte(`{"grants":[{"queues":["orders","orders_*"],"ops":["send"]}],"deny":[{"queues":["orders_admin*"],"ops":["*"]}]}`), "mq.send:orders_* mq.read:orders_dlq")
	f.Add([]byte(`{"grants":[{"topics":["a.*"],"ops":["publish"]}]}`), "")
	f.Add([]byte(`null`), "openid mq.*:*")
	f.Add([]byte(`{"grants":[{"queues":["*a*a*a*b"],"ops":["pop"]}]}`), "mq.list:Q*")
	f.Fuzz(func(t *testing.T, mq []byte, scope string) {
		g, err := ParseGrants(json.RawMessage(mq), strings.Fields(scope))
		if err != nil {
			if ReasonOf(err) != ReasonBadGrants || g != nil {
				t.Fatalf("refusal %v (%T) with grants %v", err, err, g)
			}
			return
		}
		for _, name := range []string{"", "q", "orders_admin", "ORDERS", "a.b", strings.Repeat("a", 300)} {
			for _, o := range opNames {
				allowed := g.Allows(o.op, name)
				if g != nil && allowed && o.op != OpPublish && !g.AllowsAny(o.op) {
					t.Fatalf("Allows(%s, %q) but not AllowsAny", o.op, name)
				}
				if g.AllowsAll(o.op) && !allowed {
					t.Fatalf("AllowsAll(%s) but not Allows(%q)", o.op, name)
				}
			}
			if g.Allows(OpPop, name) && !g.Allows(OpPop, strings.ToUpper(name)) && name == strings.ToLower(name) {
				t.Fatalf("queue case folding broken for %q", name)
			}
		}
	})
}
