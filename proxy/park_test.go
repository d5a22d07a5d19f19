package proxy

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"mqstack/internal/testenv"
)

// A session idle between transactions parks: its command loop goes on in a
// fresh goroutine and the old one ends. The client notices nothing: its
// prepared statement and settings are still there, and it keeps working
// through several parks.
func TestIdleSessionParks(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t)
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.Exec(ctx, "SET application_name = 'parked_client'"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "p1", "SELECT $1::int * 2"); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		before := h.srv.parks.Load()
		testenv.WaitFor(t, 10*time.Second, "the session to park", func() bool { return h.srv.parks.Load() > before })
		if n := goroutinesIn("proxy.(*session).commandLoop"); n != 1 {
			t.Fatalf("round %d: %d goroutines run the command loop, want 1", round, n)
		}
		var doubled int
		var app string
		if err := c.QueryRow(ctx, "p1", 21).Scan(&doubled); err != nil || doubled != 42 {
			t.Fatalf("round %d: prepared statement after parking: %d %v", round, doubled, err)
		}
		if err := c.QueryRow(ctx, "SHOW application_name").Scan(&app); err != nil || app != "parked_client" {
			t.Fatalf("round %d: application_name after parking: %q %v", round, app, err)
		}
	}
}

// goroutinesIn counts the goroutines with fn on their stack.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}
