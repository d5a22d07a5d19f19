package auth

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"orders", "orders", true},
		{"orders", "orders2", false},
		{"orders", "order", false},
		{"*", "", true},
		{"*", "anything", true},
		{"orders_*", "orders_", true},
		{"orders_*", "orders_eu", true},
		{"orders_*", "orders", false},
		{"*_dlq", "orders_dlq", true},
		{"*_dlq", "orders_dlq2", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"a*b*c", "abcb", false},
		{"a*b*c", "abcbc", true},
		{"ab*ba", "aba", false}, // prefix and suffix must not overlap
		{"ab*ba", "abba", true},
		{"**", "x", true},
		{"a**b", "ab", true},
		{"*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"*a*a*a*a*b", strings.Repeat("a", 200) + "b", true},
	}
	for _, c := range cases {
		g := compileGlob(c.pat)
		if got := g.match(c.name); got != c.want {
			t.Errorf("%q ~ %q: %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

// Matching stays linear on inputs that make backtracking matchers explode.
func TestGlobLinear(t *testing.T) {
	pat := strings.Repeat("*a", 127) + "*b"
	name := strings.Repeat("a", 10000)
	g := compileGlob(pat)
	start := time.Now()
	for i := 0; i < 100; i++ {
		if g.match(name) {
			t.Fatal("matched")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("100 pathological matches took %s", d)
	}
}

func mustGrants(t *testing.T, mq string, scope ...string) *Grants {
	t.Helper()
	var raw json.RawMessage
	if mq != "" {
		raw = json.RawMessage(mq)
	}
	g, err := ParseGrants(raw, scope)
	if err != nil {
		t.Fatalf("ParseGrants(%s, %q): %v", mq, scope, err)
	}
	return g
}

func TestGrantsSpecExample(t *testing.T) {
	g := mustGrants(t, `{
	  "grants": [
	    {"queues": ["orders", "orders_*"], "ops": ["send"]},
	    {"queues": ["orders_dlq"], "ops": ["read", "delete", "archive"]}
	  ],
	  "deny": [{"queues": ["orders_admin*"], "ops": ["*"]}]
	}`, strings.Fields("openid profile mq.send:orders_* mq.read:orders_dlq mq.list:*")...)
	check := []struct {
		op    Op
		queue string
		want  bool
	}{
		{OpSend, "orders", true},
		{OpSend, "orders_eu", true},
		{OpSend, "ORDERS_EU", true}, // pgmq folds queue names
		{OpSend, "Orders", true},
		{OpSend, "order", false},
		{OpSend, "invoices", false},
		{OpRead, "orders", false},
		{OpRead, "orders_dlq", true},
		{OpDelete, "orders_dlq", true},
		{OpArchive, "orders_dlq", true},
		{OpPop, "orders_dlq", true}, // read + delete
		{OpPop, "orders", false},
		{OpSend | OpRead, "orders_dlq", true}, // send via orders_*
		{OpSend | OpDrop, "orders_dlq", false},
		{OpSend, "orders_admin", false}, // deny beats allow
		{OpSend, "ORDERS_ADMIN_X", false},
		{OpList, "orders_admin", false},
		{OpList, "invoices", true},
		{OpCreate, "orders", false},
		{OpDrop, "orders", false},
		{0, "orders", false},
		{Op(1 << 12), "orders", false},
	}
	for _, c := range check {
		if got := g.Allows(c.op, c.queue); got != c.want {
			t.Errorf("Allows(%s, %q) = %v, want %v", c.op, c.queue, got, c.want)
		}
	}
	if !g.CanList("orders") || g.CanList("orders_admin1") {
		t.Error("CanList")
	}
	if !g.Limited() || !g.AllowsAny(OpList) || g.AllowsAny(OpCreate) || !g.AllowsAny(OpPop) {
		t.Error("Limited / AllowsAny")
	}
	if g.AllowsAll(OpList) { // a deny of * on orders_admin* covers list
		t.Error("AllowsAll(list) despite a deny")
	}
	if g.AllowsAll(OpSend) {
		t.Error("AllowsAll(send) on orders_* only")
	}
}

func TestGrantsPop(t *testing.T) {
	cases := []struct {
		mq   string
		want bool
	}{
		{`{"grants":[{"queues":["q"],"ops":["pop"]}]}`, true},
		{`{"grants":[{"queues":["q"],"ops":["read","delete"]}]}`, true},
		{`{"grants":[{"queues":["q"],"ops":["read"]},{"queues":["*"],"ops":["delete"]}]}`, true},
		{`{"grants":[{"queues":["q"],"ops":["read"]}]}`, false},
		{`{"grants":[{"queues":["q"],"ops":["delete"]}]}`, false},
		{`{"grants":[{"queues":["q"],"ops":["*"]}]}`, true},
		{`{"grants":[{"queues":["q"],"ops":["pop"]}],"deny":[{"queues":["q"],"ops":["read"]}]}`, false},
		{`{"grants":[{"queues":["q"],"ops":["pop"]}],"deny":[{"queues":["q"],"ops":["delete"]}]}`, false},
		{`{"grants":[{"queues":["q"],"ops":["read","delete"]}],"deny":[{"queues":["q"],"ops":["pop"]}]}`, false},
	}
	for _, c := range cases {
		if got := mustGrants(t, c.mq).Allows(OpPop, "q"); got != c.want {
			t.Errorf("%s: pop %v, want %v", c.mq, got, c.want)
		}
	}
}

func TestGrantsTopics(t *testing.T) {
	g := mustGrants(t, `{
	  "grants": [
	    {"topics": ["orders.*"], "ops": ["publish"]},
	    {"queues": ["logs.*"], "ops": ["publish", "read"]},
	    {"topics": ["Audit.*"], "ops": ["*"]}
	  ],
	  "deny": [{"topics": ["orders.secret*"], "ops": ["publish"]}]
	}`, "mq.publish:metrics.cpu")
	check := []struct {
		key  string
		want bool
	}{
		{"orders.created", true},
		{"orders.secret.x", false},
		{"orders.SECRET.x", false}, // denies match routing keys in any case
		{"ORDERS.created", false},  // allows match as written (pgmq routing is case-sensitive)
		{"logs.app", true},         // queue globs of an entry with publish are routing-key globs too
		{"Audit.login", true},
		{"audit.login", false},
		{"metrics.cpu", true},
		{"metrics.mem", false},
		{"billing.x", false},
	}
	for _, c := range check {
		if got := g.AllowsTopic(c.key); got != c.want {
			t.Errorf("AllowsTopic(%q) = %v, want %v", c.key, got, c.want)
		}
		if got := g.Allows(OpPublish, c.key); got != c.want {
			t.Errorf("Allows(publish, %q) = %v, want %v", c.key, got, c.want)
		}
	}
	if g.Allows(OpSend, "orders.created") || !g.Allows(OpRead, "LOGS.app") {
		t.Error("topic entries leak into queue ops")
	}
	if g.AllowsAll(OpPublish) || !g.AllowsAny(OpPublish) {
		t.Error("AllowsAll / AllowsAny publish")
	}
	if all := mustGrants(t, "", "mq.publish:*"); !all.AllowsAll(OpPublish) || !all.AllowsTopic("x.y") {
		t.Error("publish on *")
	}
}

func TestGrantsAllowsAll(t *testing.T) {
	cases := []struct {
		mq   string
		op   Op
		want bool
	}{
		{`{"grants":[{"queues":["*"],"ops":["create"]}]}`, OpCreate, true},
		{`{"grants":[{"queues":["*"],"ops":["*"]}]}`, OpCreate | OpDrop, true},
		{`{"grants":[{"queues":["*"],"ops":["create"]}],"deny":[{"queues":["x"],"ops":["create"]}]}`, OpCreate, false},
		{`{"grants":[{"queues":["*"],"ops":["create"]}],"deny":[{"queues":["x"],"ops":["drop"]}]}`, OpCreate, true},
		{`{"grants":[{"queues":["**"],"ops":["create"]}]}`, OpCreate, false}, // exactly "*"
		{`{"grants":[{"queues":["q*"],"ops":["create"]}]}`, OpCreate, false},
		{`{"grants":[{"queues":["*"],"ops":["read","delete"]}]}`, OpPop, true},
		{`{"grants":[{"queues":["*"],"ops":["read"]}]}`, OpPop, false},
	}
	for _, c := range cases {
		if got := mustGrants(t, c.mq).AllowsAll(c.op); got != c.want {
			t.Errorf("%s: AllowsAll(%s) = %v, want %v", c.mq, c.op, got, c.want)
		}
	}
}

func TestGrantsAbsentAndEmpty(t *testing.T) {
	for _, tc := range []struct {
		mq    string
		scope []string
	}{{"", nil}, {"null", nil}, {"", []string{"openid", "profile"}}} {
		if g := mustGrants(t, tc.mq, tc.scope...); g != nil {
			t.Fatalf("%q %q: grants %v, want nil", tc.mq, tc.scope, g)
		}
	}
	var none *Grants
	if none.Limited() || !none.Allows(OpDrop, "x") || !none.AllowsTopic("x") || !none.AllowsAll(OpCreate) || !none.CanList("x") || !none.AllowsAny(OpSend) {
		t.Fatal("nil grants must allow everything (no grant claim)")
	}
	for _, mq := range []string{`{}`, `{"grants":[]}`, `{"deny":[{"queues":["x"],"ops":["send"]}]}`} {
		g := mustGrants(t, mq)
		if g == nil || g.Allows(OpSend, "anything") || g.AllowsAny(OpSend) {
			t.Fatalf("%s: an empty grant claim must allow nothing", mq)
		}
	}
}

func TestGrantsInvalid(t *testing.T) {
	cases := []struct {
		mq    string
		scope string
	}{
		{mq: `{"grants":[{"queues":["q"],"ops":["sned"]}]}`},
		{mq: `{"grants":[{"queues":["q"],"ops":["SEND"]}]}`},
		{mq: `{"grants":[{"queues":["q"],"ops":[]}]}`},
		{mq: `{"grants":[{"queues":["q"]}]}`},
		{mq: `{"grants":[{"ops":["send"]}]}`},
		{mq: `{"grants":[{"queues":[""],"ops":["send"]}]}`},
		{mq: `{"grants":[{"queues":["a b"],"ops":["send"]}]}`},
		{mq: `{"grants":[{"queues":["a\u0000"],"ops":["send"]}]}`},
		{mq: `{"grants":[{"queues":["` + strings.Repeat("q", 256) + `"],"ops":["send"]}]}`},
		{mq: `{"grants":[{"topics":["a.*"],"ops":["send"]}]}`},
		{mq: `{"grants":[{"queue":["q"],"ops":["send"]}]}`}, // unknown member: fail closed
		{mq: `{"grant":[]}`},
		{mq: `{"grants":{}}`},
		{mq: `{"grants":[{"queues":"q","ops":["send"]}]}`},
		{mq: `[]`},
		{mq: `"all"`},
		{mq: `{"grants":[]} {}`},
		{mq: `{"deny":[{"queues":["q"],"ops":["nope"]}]}`},
		{scope: "mq.sned:q"},
		{scope: "mq.send"},
		{scope: "mq.send:"},
		{scope: "mq.:q"},
		{scope: "mq.send:a mq.drop:b mq.Read:c"},
	}
	for _, c := range cases {
		var raw json.RawMessage
		if c.mq != "" {
			raw = json.RawMessage(c.mq)
		}
		g, err := ParseGrants(raw, strings.Fields(c.scope))
		if ReasonOf(err) != ReasonBadGrants || g != nil {
			t.Errorf("%s %q: %v, %v; want bad_grants", c.mq, c.scope, g, err)
		}
	}
}

// A claim with 10,000 grants is refused, quickly.
func TestGrantsTooMany(t *testing.T) {
	entries := make([]string, 10000)
	for i := range entries {
		entries[i] = fmt.Sprintf(`{"queues":["q%d"],"ops":["send"]}`, i)
	}
	big := `{"grants":[` + strings.Join(entries, ",") + `]}`
	small := `{"grants":[` + strings.Join(entries[:MaxGrantEntries+1], ",") + `]}`
	patterns := `{"grants":[{"queues":[` + strings.Repeat(`"q",`, MaxGrantPatterns) + `"q"],"ops":["send"]}]}`
	scope := make([]string, 10000)
	for i := range scope {
		scope[i] = fmt.Sprintf("mq.send:q%d", i)
	}
	start := time.Now()
	for name, f := range map[string]func() (*Grants, error){
		"10000 entries":        func() (*Grants, error) { return ParseGrants(json.RawMessage(big), nil) },
		"1001 entries":         func() (*Grants, error) { return ParseGrants(json.RawMessage(small), nil) },
		"1001 patterns":        func() (*Grants, error) { return ParseGrants(json.RawMessage(patterns), nil) },
		"10000 scope grants":   func() (*Grants, error) { return ParseGrants(nil, scope) },
		"1001 scope grants":    func() (*Grants, error) { return ParseGrants(nil, scope[:MaxGrantEntries+1]) },
		"1000 scope grants ok": func() (*Grants, error) { return ParseGrants(nil, scope[:MaxGrantEntries]) },
	} {
		g, err := f()
		if strings.HasSuffix(name, "ok") {
			if err != nil || !g.Allows(OpSend, "q999") || g.Allows(OpSend, "q1000") {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if ReasonOf(err) != ReasonBadGrants {
			t.Errorf("%s: %v, want bad_grants", name, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusing huge grant claims took %s", d)
	}
	// Through Verify such a token is refused before any parsing: too long.
	v := newTestVerifier(t, hsConfig())
	if _, err := v.Verify(hs(t, with(claimsAt(), "mq", json.RawMessage(big)))); reasonOf(t, err) != ReasonTooLong {
		t.Fatalf("token with 10000 grants: %v", err)
	}
}

func TestParseGrantSpec(t *testing.T) {
	for spec, want := range map[string]GrantEntry{
		"send:orders_*":   {Queues: []string{"orders_*"}, Ops: []string{"send"}},
		"mq.read:q":       {Queues: []string{"q"}, Ops: []string{"read"}},
		"publish:a.b.*":   {Topics: []string{"a.b.*"}, Ops: []string{"publish"}},
		"*:*":             {Queues: []string{"*"}, Ops: []string{"*"}},
		"list:weird:name": {Queues: []string{"weird:name"}, Ops: []string{"list"}},
	} {
		got, err := ParseGrantSpec(spec)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q: %+v, %v", spec, got, err)
		}
	}
	for _, spec := range []string{"send", "sned:q", "send:", ":q", "send:a b"} {
		if _, err := ParseGrantSpec(spec); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
	for _, o := range opNames {
		if op, ok := ParseOp(o.name); !ok || op != o.op || op.String() != o.name {
			t.Errorf("op %s round trip", o.name)
		}
	}
	if OpAll.String() != "*" || (OpSend|OpRead).String() != "send+read" {
		t.Error("Op.String")
	}
}
