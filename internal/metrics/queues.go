package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome of one queue operation.
type Outcome string

// Outcomes, a bounded label set.
const (
	OK     Outcome = "ok"
	Error  Outcome = "error"
	Denied Outcome = "denied"
)

// Event counts messages by what happened to them.
type Event string

// Message events; each is counted from the rows that really came back.
const (
	Sent     Event = "sent"
	Received Event = "received"
	Deleted  Event = "deleted"
	Archived Event = "archived"
	Popped   Event = "popped"
)

// Observation is one pgmq call on one queue, from the proxy or REST.
type Observation struct {
	Queue    string
	Op       string // the pgmq function, e.g. "send", "read_with_poll"
	Source   string // "proxy" or "rest"
	Outcome  Outcome
	Duration time.Duration
	// Event and Messages: how many messages the call moved, counted from
	// the rows it returned. Event "" means none.
	Event    Event
	Messages int
	// Empty is true for a receive (read, pop, ...) that returned no rows.
	Empty bool
	// MessageArgBytes is the size in bytes of the call's message argument
	// as sent (msg, or the whole msgs array of a batch); 0 when not known.
	MessageArgBytes int
}

// Queues holds the per-queue collectors.
type Queues struct {
	capper   *Capper
	ops      *prometheus.CounterVec
	messages *prometheus.CounterVec
	empty    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	size     *prometheus.HistogramVec
}

// NewQueues registers the per-queue collectors on reg.
func NewQueues(reg prometheus.Registerer, maxQueues int) *Queues {
	q := &Queues{
		capper: NewCapper(maxQueues),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_queue_operations_total",
			Help: "pgmq calls by queue, function, outcome (ok, error, denied) and source (proxy, rest).",
		}, []string{"queue", "op", "outcome", "source"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_queue_messages_total",
			Help: "Messages sent, received, deleted, archived or popped, counted from the rows pgmq returned.",
		}, []string{"queue", "event"}),
		empty: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_queue_empty_receives_total",
			Help: "Reads and pops that returned no message.",
		}, []string{"queue"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mqstack_queue_operation_duration_seconds",
			Help:    "Time from a pgmq call's arrival to its last result row, by queue and function.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"queue", "op"}),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mqstack_queue_message_size_bytes",
			Help:    "Size of sent message bodies.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 9), // 64 B .. 4 MiB
		}, []string{"queue"}),
	}
	reg.MustRegister(q.ops, q.messages, q.empty, q.latency, q.size)
	return q
}

// QueueLabel returns the label a call on queue is counted under now.
func (q *Queues) QueueLabel(queue string) string { return q.capper.Lookup(queue) }

// Admit gives queues known to exist (the depth query's) labels of their
// own while metrics.max_queues allows.
func (q *Queues) Admit(queues ...string) {
	for _, name := range queues {
		q.capper.Admit(name)
	}
}

// Observe records one call. Only a call that succeeded gives its queue a
// label of its own (pgmq raised no error, so the queue exists); refused and
// failed calls on a queue without one count under OtherQueue, so junk names
// cannot use up metrics.max_queues. Routing keys of topic sends are not
// queues: they are only looked up.
func (q *Queues) Observe(o Observation) {
	var l string
	if o.Outcome == OK && !isTopicSend(o.Op) {
		l = q.capper.Admit(o.Queue)
	} else {
		l = q.capper.Lookup(o.Queue)
	}
	q.ops.WithLabelValues(l, o.Op, string(o.Outcome), o.Source).Inc()
	if o.Outcome == Denied {
		return
	}
	q.latency.WithLabelValues(l, o.Op).Observe(o.Duration.Seconds())
	if o.Event != "" && o.Messages > 0 {
		q.messages.WithLabelValues(l, string(o.Event)).Add(float64(o.Messages))
	}
	if o.Empty {
		q.empty.WithLabelValues(l).Inc()
	}
	if o.MessageArgBytes > 0 && o.Event == Sent && o.Messages > 0 {
		// One observation per message: a batch's array is shared out
		// evenly; a topic send's one message went to each queue whole.
		size := o.MessageArgBytes
		if o.Op == "send_batch" || o.Op == "send_batch_topic" {
			size = max(1, size/o.Messages)
		}
		h := q.size.WithLabelValues(l)
		for i := 0; i < o.Messages; i++ {
			h.Observe(float64(size))
		}
	}
}

func isTopicSend(op string) bool { return op == "send_topic" || op == "send_batch_topic" }

// EventFor maps a pgmq function to the message event its result rows count.
func EventFor(function string) Event {
	switch function {
	case "send", "send_batch", "send_topic", "send_batch_topic":
		return Sent
	case "read", "read_with_poll", "read_grouped", "read_grouped_rr", "read_grouped_head",
		"read_grouped_with_poll", "read_grouped_rr_with_poll", "read_grouped_head_with_poll":
		return Received
	case "delete":
		return Deleted
	case "archive":
		return Archived
	case "pop":
		return Popped
	}
	return ""
}

// IsReceive reports whether an empty result of function is an empty receive.
func IsReceive(function string) bool {
	e := EventFor(function)
	return e == Received || e == Popped
}
