package notify

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"mqstack/internal/testenv"
)

// lostOnce waits until r has been told of a loss and checks it was told
// once, of want, on testKey.
func lostOnce(t *testing.T, r *recorder, want []string) {
	t.Helper()
	testenv.WaitFor(t, waitTime, "Lost", func() bool { l, _ := r.losses(); return len(l) > 0 })
	lost, keys := r.losses()
	if len(lost) != 1 || !slices.Equal(lost[0], want) || keys[0] != testKey {
		t.Fatalf("Lost calls %q on %v, want one of %q on %v", lost, keys, want, testKey)
	}
}

func TestListenerTerminated(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, reg := newHub(t, c)
	r, s := &recorder{}, &recorder{}
	subscribe(t, h, "term.b", r)
	subscribe(t, h, "term.a", r)
	subscribe(t, h, "term.a", s)
	admin := direct(t, c)
	old := waitListeners(t, admin, 1)
	query(t, admin, "SELECT pg_terminate_backend($1::int)", old[0])

	lostOnce(t, r, []string{"term.a", "term.b"})
	lostOnce(t, s, []string{"term.a"})
	if now := waitListeners(t, admin, 1); now[0] == old[0] {
		t.Fatalf("the listener backend is still %s", now[0])
	}
	send(t, admin, "term.a", "after")
	for _, rec := range []*recorder{r, s} {
		if got := rec.waitNotes(t, 1); got[0].Payload != "after" {
			t.Fatalf("got %+v, want the notification sent after the reconnect", got)
		}
	}
	if l, _ := r.losses(); len(l) != 1 {
		t.Errorf("Lost called %d times, want once per reconnect", len(l))
	}
	for name, want := range map[string]float64{"listener_reconnects_total": 1, "listener_connections": 1, "channels": 2, "subscriptions": 3} {
		if got := metric(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// Postgres stops and starts again: while it is down Subscribe returns at
// once, and after the restart every subscriber, old and new, hears of the
// gap and receives what is sent afterwards.
func TestPostgresRestart(t *testing.T) {
	c := testenv.NewCluster(t, testenv.Options{})
	noLeaks(t)
	h, reg := newHub(t, c)
	before := &recorder{}
	subscribe(t, h, "restart.before", before)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, waitTime, "the listener to see Postgres gone", func() bool {
		return metric(t, reg, "listener_connections") == 0
	})
	during := &recorder{}
	start := time.Now()
	subscribe(t, h, "restart.during", during)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Subscribe while reconnecting took %s; it should return at once", d)
	}

	c2, err := testenv.Start(filepath.Dir(c.PGData()), testenv.Options{})
	if err != nil {
		t.Fatalf("restarting Postgres: %v", err)
	}
	t.Cleanup(func() { c2.Stop(context.Background()) })
	t.Cleanup(h.Close) // before Postgres stops again
	lostOnce(t, before, []string{"restart.before"})
	lostOnce(t, during, []string{"restart.during"})
	sender := direct(t, c2)
	send(t, sender, "restart.before", "b")
	send(t, sender, "restart.during", "d")
	if got := before.waitNotes(t, 1); got[0].Payload != "b" {
		t.Errorf("before got %+v", got)
	}
	if got := during.waitNotes(t, 1); got[0].Payload != "d" {
		t.Errorf("during got %+v", got)
	}
	if n := metric(t, reg, "listener_reconnects_total"); n != 1 {
		t.Errorf("listener_reconnects_total = %v, want 1", n)
	}
}
