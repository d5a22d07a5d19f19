package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Service holds the counters of the proxy and REST front ends that are not
// per queue. Every label set is bounded (reasons, causes, outcomes).
type Service struct {
	AuthAttempts      *prometheus.CounterVec // outcome, reason, source
	ConnectionsClosed *prometheus.CounterVec // reason
	Denied            *prometheus.CounterVec // reason, source
	Pins              *prometheus.CounterVec // cause
}

// NewService registers the service counters on reg. cacheStats, when not
// nil, reports the router's parse-cache hits and misses at scrape time.
func NewService(reg prometheus.Registerer, cacheStats func() (hits, misses uint64)) *Service {
	s := &Service{
		AuthAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_auth_attempts_total",
			Help: "Token verifications by outcome (ok, refused), reason and source (proxy, rest).",
		}, []string{"outcome", "reason", "source"}),
		ConnectionsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_connections_closed_total",
			Help: "Client connections closed, by reason.",
		}, []string{"reason"}),
		Denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_statements_denied_total",
			Help: "Statements refused by the grant check, by reason and source.",
		}, []string{"reason", "source"}),
		Pins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_pins_total",
			Help: "Client sessions pinned to their backend, by the cause of the pin.",
		}, []string{"cause"}),
	}
	reg.MustRegister(s.AuthAttempts, s.ConnectionsClosed, s.Denied, s.Pins)
	if cacheStats != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "mqstack_parse_cache_hits_total",
				Help: "Statements classified from the parse cache.",
			}, func() float64 { h, _ := cacheStats(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "mqstack_parse_cache_misses_total",
				Help: "Statements parsed because the cache did not hold them.",
			}, func() float64 { _, m := cacheStats(); return float64(m) }),
		)
	}
	return s
}

// Front is the service counters as one front end ("proxy" or "rest")
// reports them: the methods proxy.Recorder names, with the source label
// filled in, so an adapter only adds its calls on queues.
type Front struct {
	svc    *Service
	source string
}

// Front returns the counters of source, with every close reason and pin
// cause given exported from the start.
func (s *Service) Front(source string, closeReasons, pinCauses []string) Front {
	for _, r := range closeReasons {
		s.ConnectionsClosed.WithLabelValues(r)
	}
	for _, c := range pinCauses {
		s.Pins.WithLabelValues(c)
	}
	return Front{svc: s, source: source}
}

// AuthAttempt counts one token check.
func (f Front) AuthAttempt(outcome, reason string) {
	f.svc.AuthAttempts.WithLabelValues(outcome, reason, f.source).Inc()
}

// ConnectionClosed counts a closed client connection.
func (f Front) ConnectionClosed(reason string) { f.svc.ConnectionsClosed.WithLabelValues(reason).Inc() }

// StatementDenied counts a refused statement.
func (f Front) StatementDenied(reason string) { f.svc.Denied.WithLabelValues(reason, f.source).Inc() }

// Pinned counts a session pinned to its backend.
func (f Front) Pinned(cause string) { f.svc.Pins.WithLabelValues(cause).Inc() }
