package stack

import (
	"mqstack/internal/metrics"
	"mqstack/proxy"
	"mqstack/rest"
)

// The front ends declare what they record (proxy.Recorder, rest.Recorder);
// these adapters feed both into the same per-queue and service metrics.

// proxyRecorder feeds the proxy's counts into the per-queue and service
// metrics REST feeds.
type proxyRecorder struct {
	q   *metrics.Queues
	svc *metrics.Service
}

var _ proxy.Recorder = proxyRecorder{}

// newProxyRecorder exports every close reason and pin cause from the start.
func newProxyRecorder(q *metrics.Queues, svc *metrics.Service) proxyRecorder {
	for _, r := range proxy.CloseReasons() {
		svc.ConnectionsClosed.WithLabelValues(r)
	}
	for _, c := range proxy.PinCauses() {
		svc.Pins.WithLabelValues(c)
	}
	return proxyRecorder{q: q, svc: svc}
}

func (r proxyRecorder) AuthAttempt(outcome, reason string) {
	r.svc.AuthAttempts.WithLabelValues(outcome, reason, "proxy").Inc()
}

func (r proxyRecorder) ConnectionClosed(reason string) {
	r.svc.ConnectionsClosed.WithLabelValues(reason).Inc()
}

func (r proxyRecorder) StatementDenied(reason string) {
	r.svc.Denied.WithLabelValues(reason, "proxy").Inc()
}

func (r proxyRecorder) Pinned(cause string) { r.svc.Pins.WithLabelValues(cause).Inc() }

func (r proxyRecorder) ObserveCall(o proxy.Observation) {
	obs := metrics.Observation{Queue: o.Queue, Op: o.Function, Source: "proxy", Duration: o.Latency}
	switch o.Outcome {
	case "ok":
		obs.Outcome = metrics.OK
		if o.Counted {
			obs.Event = metrics.EventFor(o.Function)
			obs.Messages = o.Messages
			obs.Empty = metrics.IsReceive(o.Function) && o.Rows == 0
		}
		obs.MessageArgBytes = o.MessageSize
	case "denied":
		obs.Outcome = metrics.Denied
	default:
		obs.Outcome = metrics.Error
	}
	r.q.Observe(obs)
}

// restRecorder feeds REST calls into the per-queue and service metrics the
// proxy feeds.
type restRecorder struct {
	q   *metrics.Queues
	svc *metrics.Service
}

var _ rest.Recorder = restRecorder{}

func (r restRecorder) ObserveCall(o rest.Observation) {
	switch o.Outcome {
	case "unauthorized":
		r.svc.AuthAttempts.WithLabelValues("refused", o.Reason, "rest").Inc()
	case "denied":
		r.svc.Denied.WithLabelValues(o.Reason, "rest").Inc()
	}
	if o.Function == "" {
		return // no pgmq function (refused before one was known, the console's endpoints): no per-queue count
	}
	obs := metrics.Observation{Queue: o.Queue, Op: o.Function, Source: "rest", Duration: o.Latency}
	switch o.Outcome {
	case "ok":
		obs.Outcome = metrics.OK
		obs.Event = metrics.EventFor(o.Function)
		obs.Messages = o.Rows
		obs.Empty = metrics.IsReceive(o.Function) && o.Rows == 0
		obs.MessageArgBytes = o.MessageSize
	case "denied", "unauthorized":
		obs.Outcome = metrics.Denied
	default:
		obs.Outcome = metrics.Error
	}
	if obs.Queue == "" {
		obs.Queue = metrics.NoQueue
	}
	r.q.Observe(obs)
}
