package proxy

import (
	"mqstack/internal/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// testRecorder feeds the proxy's counts into the service metrics of
// internal/metrics, as internal/stack's adapter does in the product, so
// the package's tests read the metrics under their real names. Calls on
// queues are left to the stack's tests.
type testRecorder struct{ svc *metrics.Service }

func newTestRecorder(reg prometheus.Registerer) testRecorder {
	svc := metrics.NewService(reg, nil)
	for _, r := range CloseReasons() {
		svc.ConnectionsClosed.WithLabelValues(r)
	}
	return testRecorder{svc: svc}
}

func (r testRecorder) AuthAttempt(outcome, reason string) {
	r.svc.AuthAttempts.WithLabelValues(outcome, reason, "proxy").Inc()
}
func (r testRecorder) ConnectionClosed(reason string) {
	r.svc.ConnectionsClosed.WithLabelValues(reason).Inc()
}
func (r testRecorder) StatementDenied(reason string) {
	r.svc.Denied.WithLabelValues(reason, "proxy").Inc()
}
func (r testRecorder) Pinned(cause string)     { r.svc.Pins.WithLabelValues(cause).Inc() }
func (r testRecorder) ObserveCall(Observation) {}
