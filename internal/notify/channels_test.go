package notify

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The races between the goroutine's statements and Subscribe/Unsubscribe,
// played in a fixed order on the table alone (no goroutine, no connection):
// a channel everyone leaves while its LISTEN is in flight is UNLISTENed
// once the LISTEN completes, and one re-subscribed while its UNLISTEN is in
// flight is LISTENed again.
func TestTableInFlight(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := New(Options{Registerer: reg})
	defer h.Close()
	l := newListener(h, testKey)
	l.phase = phaseUp
	r := &recorder{}
	step := func(want ...change) {
		t.Helper()
		got := l.takeDirty(nil)
		if !slices.Equal(got, want) {
			t.Fatalf("statements %v, want %v", got, want)
		}
		for _, c := range got {
			l.confirm(c)
		}
	}

	if _, ready := l.subscribe("a", r); ready == nil {
		t.Fatal("Subscribe on a channel not LISTENed yet does not wait")
	}
	inFlight := l.takeDirty(nil)
	l.unsubscribe("a", r) // leaves before the LISTEN completes
	l.confirm(inFlight[0])
	if metric(t, reg, "channels") != 1 {
		t.Fatal("a completed LISTEN is not counted")
	}
	step(change{name: "a", listen: false})
	step()
	if len(l.channels) != 0 || metric(t, reg, "channels") != 0 {
		t.Fatalf("table %v, channels gauge %v after the UNLISTEN", l.channels, metric(t, reg, "channels"))
	}

	l.subscribe("b", r)
	step(change{name: "b", listen: true})
	if _, ready := l.subscribe("b", r); ready != nil {
		t.Fatal("a second Subscribe on a LISTENed channel waits")
	}
	l.unsubscribe("b", r)
	inFlight = l.takeDirty(nil) // the UNLISTEN is on its way
	if _, ready := l.subscribe("b", r); ready == nil {
		t.Fatal("Subscribe during an UNLISTEN does not wait for a new LISTEN")
	}
	l.confirm(inFlight[0])
	step(change{name: "b", listen: true})
	if !l.channels["b"].listened || !l.channels["b"].subs[r] {
		t.Fatalf("b is %+v after the second LISTEN", l.channels["b"])
	}
}
