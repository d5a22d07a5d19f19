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
}

func newMetrics(reg prometheus.Registerer) (*proxyMetrics, error) {
	m := &proxyMetrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mqstack_proxy_clients", Help: "Clients connected to the proxy.",
		}),
		cancels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_proxy_cancel_requests_total", Help: "CancelRequests by outcome (forwarded, idle, unknown).",
		}, []string{"outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.clients, m.cancels} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ownRecorder is the Recorder of a proxy that was given none (a proxy on
// its own, as in its package tests): it counts token checks, closed
// connections, denials and pins on the proxy's registerer, under the names
// and labels internal/metrics gives them. Calls on queues are not
// recorded: their metrics, capped per queue, are internal/metrics' alone.
type ownRecorder struct {
	auth, closed, denied, pins *prometheus.CounterVec
}

var _ Recorder = (*ownRecorder)(nil)

func newOwnRecorder(reg prometheus.Registerer) (*ownRecorder, error) {
	r := &ownRecorder{
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_auth_attempts_total",
			Help: "Token verifications by outcome (ok, refused), reason and source (proxy, rest).",
		}, []string{"outcome", "reason", "source"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_connections_closed_total",
			Help: "Client connections closed, by reason.",
		}, []string{"reason"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_statements_denied_total",
			Help: "Statements refused by the grant check, by reason and source.",
		}, []string{"reason", "source"}),
		pins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_pins_total",
			Help: "Client sessions pinned to their backend, by the cause of the pin.",
		}, []string{"cause"}),
	}
	for _, c := range []prometheus.Collector{r.auth, r.closed, r.denied, r.pins} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Every reason and cause is exported from the start.
	for _, reason := range CloseReasons() {
		r.closed.WithLabelValues(reason)
	}
	for _, cause := range PinCauses() {
		r.pins.WithLabelValues(cause)
	}
	return r, nil
}

func (r *ownRecorder) AuthAttempt(outcome, reason string) {
	r.auth.WithLabelValues(outcome, reason, "proxy").Inc()
}
func (r *ownRecorder) ConnectionClosed(reason string) { r.closed.WithLabelValues(reason).Inc() }
func (r *ownRecorder) StatementDenied(reason string)  { r.denied.WithLabelValues(reason, "proxy").Inc() }
func (r *ownRecorder) Pinned(cause string)            { r.pins.WithLabelValues(cause).Inc() }
func (r *ownRecorder) ObserveCall(Observation)        {}
