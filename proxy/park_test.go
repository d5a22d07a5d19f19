package proxy

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

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

// A client whose message arrives in two parts with a pause longer than the
// park delay between them (a slow client) gets its answer: the park
// deadline passing mid-message loses no byte.
func TestMessageSplitAcrossParkDeadline(t *testing.T) {
	h := newHarness(t, nil)
	hc := h.hijacked(t)
	defer hc.Conn.Close()
	fe := hc.Frontend
	fe.Send(&pgproto3.Query{String: "SELECT 1"}) // a transaction: its end arms the park deadline
	fe.Flush()
	expect[*pgproto3.ReadyForQuery](t, fe)
	msg, _ := (&pgproto3.Query{String: "SELECT 42"}).Encode(nil)
	for _, cut := range []int{3, 7} {
		if _, err := hc.Conn.Write(msg[:cut]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(parkAfter + 300*time.Millisecond) // the slow client's pause, not a wait for the proxy
		if _, err := hc.Conn.Write(msg[cut:]); err != nil {
			t.Fatal(err)
		}
		row := expect[*pgproto3.DataRow](t, fe)
		if string(row.Values[0]) != "42" {
			t.Fatalf("cut %d: got %q", cut, row.Values[0])
		}
		expect[*pgproto3.ReadyForQuery](t, fe)
	}
}
