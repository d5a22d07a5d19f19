package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestCapper(t *testing.T) {
	c := NewCapper(2)
	if c.Lookup("orders") != OtherQueue {
		t.Fatal("a queue never admitted has a label")
	}
	if c.Admit("Orders") != "orders" || c.Admit("jobs") != "jobs" {
		t.Fatal("first two queues must get their own label")
	}
	if got := c.Admit("third"); got != OtherQueue {
		t.Fatalf("third queue label %q, want %q", got, OtherQueue)
	}
	if got := c.Lookup("ORDERS"); got != "orders" {
		t.Fatalf("another spelling of an admitted queue: %q", got)
	}
	if got := c.Lookup(NoQueue); got != NoQueue {
		t.Fatalf("%s: %q", NoQueue, got)
	}
	for i := 0; i < 1000; i++ {
		c.Admit(fmt.Sprintf("q%d", i))
	}
	if len(c.labels) != 2 {
		t.Fatalf("capper grew to %d entries", len(c.labels))
	}
}

// Refused and failed calls on queues without a label count under
// OtherQueue and leave the slots to queues that exist.
func TestQueuesOnlyExistingQueuesTakeSlots(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	q := NewQueues(reg, 2)
	q.Admit("known") // from the depth query
	for i := 0; i < 50; i++ {
		q.Observe(Observation{Queue: fmt.Sprintf("junk%d", i), Op: "send", Source: "proxy", Outcome: Denied})
		q.Observe(Observation{Queue: fmt.Sprintf("nope%d", i), Op: "read", Source: "rest", Outcome: Error})
		q.Observe(Observation{Queue: fmt.Sprintf("key.%d", i), Op: "send_topic", Source: "rest", Outcome: OK})
	}
	q.Observe(Observation{Queue: NoQueue, Op: "list_queues", Source: "proxy", Outcome: OK})
	q.Observe(Observation{Queue: "Fresh", Op: "send", Source: "proxy", Outcome: OK, Event: Sent, Messages: 1})
	q.Observe(Observation{Queue: "fresh", Op: "send", Source: "proxy", Outcome: Denied})
	q.Observe(Observation{Queue: "known", Op: "read", Source: "proxy", Outcome: Error})
	for labels, want := range map[[4]string]float64{
		{OtherQueue, "send", "denied", "proxy"}:  50,
		{OtherQueue, "read", "error", "rest"}:    50,
		{OtherQueue, "send_topic", "ok", "rest"}: 50,
		{"fresh", "send", "ok", "proxy"}:         1,
		{"fresh", "send", "denied", "proxy"}:     1,
		{"known", "read", "error", "proxy"}:      1,
		{NoQueue, "list_queues", "ok", "proxy"}:  1,
	} {
		if v := testutil.ToFloat64(q.ops.WithLabelValues(labels[:]...)); v != want {
			t.Errorf("operations%v = %v, want %v", labels, v, want)
		}
	}
	if got := q.QueueLabel("later"); got != OtherQueue {
		t.Errorf("a third queue got label %q with max_queues 2", got)
	}
}

func TestQueuesObserve(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	q := NewQueues(reg, 1)
	q.Observe(Observation{Queue: "orders", Op: "send_batch", Source: "proxy", Outcome: OK, Duration: 2 * time.Millisecond, Event: Sent, Messages: 5, MessageArgBytes: 150})
	q.Observe(Observation{Queue: "orders", Op: "read", Source: "rest", Outcome: OK, Event: Received, Empty: true})
	q.Observe(Observation{Queue: "other", Op: "send", Source: "proxy", Outcome: Denied})
	if v := testutil.ToFloat64(q.messages.WithLabelValues("orders", "sent")); v != 5 {
		t.Errorf("sent = %v, want 5", v)
	}
	if v := testutil.ToFloat64(q.empty.WithLabelValues("orders")); v != 1 {
		t.Errorf("empty receives = %v", v)
	}
	if v := testutil.ToFloat64(q.ops.WithLabelValues(OtherQueue, "send", "denied", "proxy")); v != 1 {
		t.Errorf("denied on the capped label = %v", v)
	}
	if n := testutil.CollectAndCount(q.size); n != 1 {
		t.Errorf("size histogram series = %d", n)
	}
	if c := histCount(t, q, "orders"); c != 5 {
		t.Errorf("size observations = %d, want 5 (one per message)", c)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", err, problems)
	}
}

func TestEventFor(t *testing.T) {
	for fn, want := range map[string]Event{"send_batch_topic": Sent, "read_grouped_rr_with_poll": Received, "pop": Popped, "archive": Archived, "delete": Deleted, "metrics": ""} {
		if got := EventFor(fn); got != want {
			t.Errorf("EventFor(%s) = %q, want %q", fn, got, want)
		}
	}
	if !IsReceive("pop") || IsReceive("send") {
		t.Error("IsReceive")
	}
}

func TestServiceCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s := NewService(reg, func() (uint64, uint64) { return 7, 3 })
	s.Denied.WithLabelValues("missing_grant", "proxy").Inc()
	out, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range out {
		names = append(names, mf.GetName())
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"mqstack_parse_cache_hits_total", "mqstack_parse_cache_misses_total", "mqstack_statements_denied_total"} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %s in %s", want, joined)
		}
	}
}

func histCount(t *testing.T, q *Queues, queue string) uint64 {
	t.Helper()
	m := &dto.Metric{}
	if err := q.size.WithLabelValues(queue).(prometheus.Histogram).Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
