package backend

import (
	"github.com/prometheus/client_golang/prometheus"
)

type poolMetrics struct {
	checkouts *prometheus.CounterVec
	wait      *prometheus.HistogramVec
	closed    *prometheus.CounterVec
}

var (
	descBackends = prometheus.NewDesc("mqstack_pool_backends",
		"Backend connections per pool by state (active, idle, constructing).",
		[]string{"backend", "database", "role", "state"}, nil)
	descMax = prometheus.NewDesc("mqstack_pool_max_backends",
		"Configured size of each pool.", []string{"backend", "database", "role"}, nil)
	descWaiting = prometheus.NewDesc("mqstack_pool_clients_waiting",
		"Clients waiting for a backend connection.", []string{"backend", "database", "role"}, nil)
)

// poolCollector reads pool states at scrape time.
type poolCollector struct{ m *Manager }

var _ prometheus.Collector = poolCollector{}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBackends
	ch <- descMax
	ch <- descWaiting
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for k, p := range c.m.pools {
		st := p.p.Stat()
		l := []string{k.Backend, k.Database, k.Role}
		ch <- prometheus.MustNewConstMetric(descBackends, prometheus.GaugeValue, float64(st.AcquiredResources()), append(l, "active")...)
		ch <- prometheus.MustNewConstMetric(descBackends, prometheus.GaugeValue, float64(st.IdleResources()), append(l, "idle")...)
		ch <- prometheus.MustNewConstMetric(descBackends, prometheus.GaugeValue, float64(st.ConstructingResources()), append(l, "constructing")...)
		ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(p.size), l...)
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(p.waiting), l...)
	}
}

func newPoolMetrics(m *Manager, reg prometheus.Registerer) (*poolMetrics, error) {
	pm := &poolMetrics{
		checkouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_pool_checkouts_total",
			Help: "Backend connection checkouts by outcome (ok, timeout, share_timeout, error).",
		}, []string{"backend", "outcome"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mqstack_pool_checkout_wait_seconds",
			Help:    "Time clients waited for a backend connection.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"backend"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqstack_pool_backends_closed_total",
			Help: "Backend connections closed by reason (broken, idle, lifetime, health).",
		}, []string{"backend", "reason"}),
	}
	if reg == nil {
		return pm, nil
	}
	for _, c := range []prometheus.Collector{pm.checkouts, pm.wait, pm.closed, poolCollector{m}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return pm, nil
}
