package console

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// registry holds the metrics the console reads, named and labelled as
// internal/metrics and internal/backend export them.
type registry struct {
	reg      *prometheus.Registry
	messages *prometheus.CounterVec
	visible  *prometheus.GaugeVec
	backends *prometheus.GaugeVec
	pins     *prometheus.CounterVec
	auth     *prometheus.CounterVec
}

func newRegistry() *registry {
	r := &registry{reg: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqstack_queue_messages_total"}, []string{"queue", "event"}),
		visible:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mqstack_queue_visible_messages"}, []string{"queue_name", "datname"}),
		backends: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mqstack_pool_backends"}, []string{"backend", "database", "role", "state"}),
		pins:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqstack_pins_total"}, []string{"cause"}),
		auth:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqstack_auth_attempts_total"}, []string{"outcome", "reason", "source"}),
	}
	r.reg.MustRegister(r.messages, r.visible, r.backends, r.pins, r.auth)
	return r
}

func TestQueueHistoryRates(t *testing.T) {
	r := newRegistry()
	h := NewHistory(r.reg, time.Second, nil)
	r.messages.WithLabelValues("a", "sent").Add(10)
	r.visible.WithLabelValues("a", "db").Set(3)
	h.Sample()
	r.messages.WithLabelValues("a", "sent").Add(20)
	r.messages.WithLabelValues("a", "popped").Add(4)
	r.messages.WithLabelValues("secret", "sent").Add(1)
	h.Sample()
	// Pretend the samples were 2 s apart, whatever the clock did.
	h.mu.Lock()
	h.samples[0].at = h.samples[1].at.Add(-2 * time.Second)
	h.mu.Unlock()

	s := h.QueueHistory(func(q string) bool { return q != "secret" }, "")
	if len(s.T) != 1 || s.IntervalSec != 1 || s.WindowSec != 900 {
		t.Fatalf("series %+v", s)
	}
	if _, ok := s.Queues["secret"]; ok {
		t.Fatal("a queue the filter refuses is in the series")
	}
	a := s.Queues["a"]
	if a == nil || *a.Sent[0] != 10 || *a.Received[0] != 2 || *a.Deleted[0] != 0 || *a.Visible[0] != 3 || a.InFlight[0] != nil {
		raw, _ := json.Marshal(a)
		t.Fatalf("queue a: %s", raw)
	}
	if only := h.QueueHistory(func(string) bool { return true }, "secret"); len(only.Queues) != 1 || only.Queues["secret"] == nil {
		t.Fatalf("only secret: %+v", only.Queues)
	}
}

func TestHistoryKeepsTheWindow(t *testing.T) {
	r := newRegistry()
	h := NewHistory(r.reg, time.Minute, nil)
	for i := 0; i < 40; i++ {
		h.Sample()
	}
	if n, want := h.Len(), int(Window/time.Minute)+1; n != want {
		t.Fatalf("%d samples kept, want %d", n, want)
	}
	h.Stop() // never started: returns at once
}

func TestHistoryStartStop(t *testing.T) {
	h := NewHistory(newRegistry().reg, time.Hour, nil)
	h.Start()
	deadline := time.Now().Add(10 * time.Second)
	for h.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if h.Len() != 1 {
		t.Fatal("no first sample at start")
	}
	h.Stop()
	h.Stop()
}

func TestServiceSnapshot(t *testing.T) {
	r := newRegistry()
	r.backends.WithLabelValues("main", "postgres", "mq", "active").Set(2)
	r.backends.WithLabelValues("main", "postgres", "mq", "idle").Set(3)
	r.pins.WithLabelValues("listen").Add(4)
	r.auth.WithLabelValues("ok", "", "proxy").Add(9)
	r.auth.WithLabelValues("refused", "expired", "rest").Add(1)
	s, err := NewHistory(r.reg, time.Second, nil).Service()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Pools) != 1 || s.Pools[0].Active != 2 || s.Pools[0].Idle != 3 || s.Pools[0].Role != "mq" {
		t.Fatalf("pools %+v", s.Pools)
	}
	if len(s.Pins) != 1 || s.Pins[0].Count != 4 {
		t.Fatalf("pins %+v", s.Pins)
	}
	if len(s.AuthFailures) != 1 || s.AuthFailures[0].Label != "expired" || s.AuthFailures[0].Source != "rest" {
		t.Fatalf("auth failures %+v", s.AuthFailures)
	}
}

func TestLink(t *testing.T) {
	if got := Link("127.0.0.1:8080", "abc"); got != "http://127.0.0.1:8080/console/#token=abc" {
		t.Fatal(got)
	}
	if got := Link("127.0.0.1:8080", ""); got != "http://127.0.0.1:8080/console/" {
		t.Fatal(got)
	}
}
