package notify

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"mqstack/internal/testenv"
)

func TestNotificationReachesSubscriber(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, reg := newHub(t, c)
	r := &recorder{}
	subscribe(t, h, "ch", r)
	sender := direct(t, c)
	send(t, sender, "ch", "x")
	got := r.waitNotes(t, 1)
	want := Notification{Channel: "ch", Payload: "x", PID: sender.PID()}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v, want [%+v]", got, want)
	}
	if n := metric(t, reg, "received_total"); n != 1 {
		t.Errorf("received_total = %v, want 1", n)
	}
	if n := metric(t, reg, "subscriptions"); n != 1 {
		t.Errorf("subscriptions = %v, want 1", n)
	}
}

// A NOTIFY committed right after Subscribe returns is delivered: with the
// listener already up (a keeper holds it), and with the listener starting
// or stopping around each Subscribe (no keeper).
func TestNotifyRightAfterSubscribe(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keeper=%v", keep), func(t *testing.T) {
			c := testenv.Cluster(t)
			noLeaks(t)
			h, _ := newHub(t, c)
			sender := direct(t, c)
			if keep {
				subscribe(t, h, "keeper", &recorder{})
			}
			for i := range 50 {
				ch := fmt.Sprintf("fresh.%v.%d", keep, i)
				r := &recorder{}
				subscribe(t, h, ch, r)
				send(t, sender, ch, strconv.Itoa(i))
				if got := r.waitNotes(t, 1); got[0].Channel != ch || got[0].Payload != strconv.Itoa(i) {
					t.Fatalf("iteration %d: got %+v", i, got)
				}
				h.Unsubscribe(testKey, ch, r)
			}
		})
	}
}

func TestFanOutAndUnsubscribe(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, _ := newHub(t, c)
	a, b, other := &recorder{}, &recorder{}, &recorder{}
	subscribe(t, h, "shared", a)
	subscribe(t, h, "shared", b)
	subscribe(t, h, "shared", a) // a second time: a no-op
	subscribe(t, h, "other", other)
	sender := direct(t, c)

	// Notifications reach the listener in commit order, so the one on
	// "other", sent last, is the barrier for the ones before it.
	send(t, sender, "shared", "one")
	send(t, sender, "other", "barrier1")
	other.waitNotes(t, 1)
	if got := other.payloads(); !slices.Equal(got, []string{"barrier1"}) {
		t.Fatalf("the subscriber of another channel got %q", got)
	}
	for name, r := range map[string]*recorder{"a": a, "b": b} {
		if got := r.payloads(); !slices.Equal(got, []string{"one"}) {
			t.Fatalf("%s got %q, want [one] (once)", name, got)
		}
	}

	h.Unsubscribe(testKey, "shared", a)
	h.Unsubscribe(testKey, "shared", other) // not subscribed there: a no-op
	send(t, sender, "shared", "two")
	send(t, sender, "other", "barrier2")
	other.waitNotes(t, 2)
	if got := a.payloads(); !slices.Equal(got, []string{"one"}) {
		t.Errorf("after Unsubscribe a got %q, want [one]", got)
	}
	if got := b.payloads(); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("b got %q, want [one two]", got)
	}
}

// Channel names are Postgres' folded names, byte for byte.
func TestChannelNamesAsFolded(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, _ := newHub(t, c)
	names := []string{"Orders", "orders", "pgmq.q_Mixed.INSERT", `say "hi" there`}
	recs := make([]*recorder, len(names))
	for i, name := range names {
		recs[i] = &recorder{}
		subscribe(t, h, name, recs[i])
	}
	sender := direct(t, c)
	// NOTIFY's unquoted identifier is folded to lower case by Postgres.
	query(t, sender, `NOTIFY Orders, 'folded'`)
	for _, name := range names {
		send(t, sender, name, "to "+name)
	}
	recs[len(names)-1].waitNotes(t, 1) // sent last: the barrier
	want := [][]string{{"to Orders"}, {"folded", "to orders"}, {"to pgmq.q_Mixed.INSERT"}, {`to say "hi" there`}}
	for i, name := range names {
		if got := recs[i].payloads(); !slices.Equal(got, want[i]) {
			t.Errorf("subscriber of %q got %q, want %q", name, got, want[i])
		}
	}
}

// A thousand notifications arrive, all of them, in the order sent.
func TestManyNotificationsInOrder(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, reg := newHub(t, c)
	r := &recorder{}
	subscribe(t, h, "seq", r)
	sender := direct(t, c)
	// Ten transactions of a hundred each: order within and across commits.
	for i := range 10 {
		query(t, sender, "SELECT pg_notify('seq', g::text) FROM generate_series($1::int, $1::int + 99) g", strconv.Itoa(i*100))
	}
	got := r.waitNotes(t, 1000)
	if len(got) != 1000 {
		t.Fatalf("got %d notifications, want 1000", len(got))
	}
	for i, n := range got {
		if n.Payload != strconv.Itoa(i) {
			t.Fatalf("notification %d has payload %q, want %d", i, n.Payload, i)
		}
	}
	if n := metric(t, reg, "received_total"); n != 1000 {
		t.Errorf("received_total = %v, want 1000", n)
	}
}
