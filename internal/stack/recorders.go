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
	metrics.Front
	q *metrics.Queues
}

var _ proxy.Recorder = proxyRecorder{}

func newProxyRecorder(q *metrics.Queues, svc *metrics.Service) proxyRecorder {
	return proxyRecorder{Front: svc.Front("proxy", proxy.CloseReasons(), proxy.PinCauses()), q: q}
}

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
	q     *metrics.Queues
	front metrics.Front
}

var _ rest.Recorder = restRecorder{}

func (r restRecorder) ObserveCall(o rest.Observation) {
	switch o.Outcome {
	case "unauthorized":
		r.front.AuthAttempt("refused", o.Reason)
	case "denied":
		r.front.StatementDenied(o.Reason)
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
