package proxy

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// counterWith reads the counter whose labels include all of want.
func counterWith(t testing.TB, h *harness, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			n := 0
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok {
					if v != lp.GetValue() {
						continue next
					}
					n++
				}
			}
			if n == len(want) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Logins are counted by outcome and reason, closed connections by reason.
func TestAuthAndCloseMetrics(t *testing.T) {
	h := newHarness(t, nil)
	ctx := ctxT(t, 20*time.Second)
	okBefore := counterWith(t, h, "mqstack_auth_attempts_total", map[string]string{"outcome": "ok", "reason": "ok", "source": "proxy"})
	badBefore := counterWith(t, h, "mqstack_auth_attempts_total", map[string]string{"outcome": "refused", "reason": "bad_signature", "source": "proxy"})
	expBefore := counterWith(t, h, "mqstack_auth_attempts_total", map[string]string{"outcome": "refused", "reason": "expired", "source": "proxy"})

	c, err := pgx.Connect(ctx, h.connString())
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx) // Terminate
	tok := testenv.Token(t, testSecret, auth.MintOptions{})
	bad := tok[:len(tok)-4] + "AAAA"
	cfg, _ := pgx.ParseConfig("host=127.0.0.1 port=" + h.port() + " user=mq dbname=postgres sslmode=disable")
	cfg.Password = bad
	if _, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		t.Fatal("a bad signature was accepted")
	}
	expired := testenv.Token(t, testSecret, auth.MintOptions{TTL: time.Minute, Now: time.Now().Add(-time.Hour)})
	cfg.Password = expired
	if _, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		t.Fatal("an expired token was accepted")
	}
	testenv.WaitFor(t, 5*time.Second, "close metrics", func() bool {
		return counterWith(t, h, "mqstack_connections_closed_total", map[string]string{"reason": closeAuthFailed}) >= 2 &&
			counterWith(t, h, "mqstack_connections_closed_total", map[string]string{"reason": closeClientQuit}) >= 1
	})
	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"outcome": "ok", "reason": "ok", "source": "proxy"}, okBefore + 1},
		{map[string]string{"outcome": "refused", "reason": "bad_signature", "source": "proxy"}, badBefore + 1},
		{map[string]string{"outcome": "refused", "reason": "expired", "source": "proxy"}, expBefore + 1},
	} {
		if got := counterWith(t, h, "mqstack_auth_attempts_total", tc.labels); got != tc.want {
			t.Errorf("auth attempts %v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	// Every close reason is exported from the start.
	for _, r := range CloseReasons() {
		found := false
		mfs, _ := h.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "mqstack_connections_closed_total" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == r {
						found = true
					}
				}
			}
		}
		if !found {
			t.Errorf("close reason %q not exported", r)
		}
	}
}
