package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics. The proxy registers the two that only it has (clients,
// CancelRequests); what it shares with REST (token checks, closed
// connections, denials, pins, calls on queues) it reports to a Recorder,
// which internal/stack implements over internal/metrics.

// Recorder receives what the proxy counts in metrics it shares with REST.
// It must be safe for concurrent use and must not block. Every argument
// comes from a bounded set except Observation.Queue, which the recorder
// must cap (metrics.max_queues).
type Recorder interface {
	// AuthAttempt counts one token check: outcome "ok" (reason "ok") or
	// "refused" (an auth.Reason, "plaintext_refused", "error").
	AuthAttempt(outcome, reason string)
	// ConnectionClosed counts a closed client connection (CloseReasons).
	ConnectionClosed(reason string)
	// StatementDenied counts a refused statement, by the denial's reason.
	StatementDenied(reason string)
	// Pinned counts a session pinned to its backend (PinCauses).
	Pinned(cause string)
	// ObserveCall records one pgmq call.
	ObserveCall(Observation)
}

// Observation is one pgmq call made through the proxy, on one queue.
type Observation struct {
	Function string        // the pgmq function, e.g. "send"
	Queue    string        // queue or routing key; "_none" for listings and calls on every queue
	Outcome  string        // ok, error or denied
	Latency  time.Duration // from the statement's arrival to its completion; 0 when denied
	// Counted: the call succeeded as the only call of its statement (or of
	// its part of a multi-statement query), so Rows and Messages are its
	// own; otherwise it counts as a call only.
	Counted bool
	Rows    int // result rows
	// Messages the call moved: its rows, less the false rows of delete and
	// archive; send_topic's count.
	Messages int
	// MessageSize is the size in bytes of the message argument of a single
	// send call (msg, or the whole msgs array); 0 otherwise.
	MessageSize int
}

// Call outcomes (Observation.Outcome).
const (
	outcomeOK     = "ok"
	outcomeError  = "error"
	outcomeDenied = "denied"
)

// proxyMetrics are the metrics only the proxy has.
type proxyMetrics struct {
	clients prometheus.Gauge
	cancels *prometheus.CounterVec
	// LISTEN through the shared listener (listen.go, inbox.go).
	listening prometheus.GaugeFunc
	delivered prometheus.Counter
	dropped   *prometheus.CounterVec
}

// newMetrics makes the proxy's metrics; listening reads how many clients
// listen (Server.listeningSessions, which the hot path reads too).
func newMetrics(reg prometheus.Registerer, listening func() float64) (*proxyMetrics, error) {
	m := &proxyMetrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mqstack_proxy_clients", Help: "Clients connected to the proxy.",
		}),
		cancels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_proxy_cancel_requests_total", Help: "CancelRequests by outcome (forwarded, idle, unknown).",
		}, []string{"outcome"}),
		listening: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mqstack_proxy_listening_clients", Help: "Clients listening on at least one channel.",
		}, listening),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqstack_proxy_notifications_delivered_total", Help: "Notifications written to clients.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_proxy_notifications_dropped_total",
			Help: "Notifications not delivered, by reason (client_behind: over proxy.max_pending_notifications; client_gone: pending when the client left).",
		}, []string{"reason"}),
	}
	for _, r := range []string{dropBehind, dropGone} {
		m.dropped.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.clients, m.cancels, m.listening, m.delivered, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
