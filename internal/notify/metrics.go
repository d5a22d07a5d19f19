package notify

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the hub's; they exist (unregistered) when no Registerer is
// given, so the code that updates them has no nil checks. None has labels:
// the keys come from configuration, but a total per hub is what is watched.
type metrics struct {
	connections   prometheus.Gauge
	channels      prometheus.Gauge
	subscriptions prometheus.Gauge
	received      prometheus.Counter
	reconnects    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mqstack_notify_listener_connections",
			Help: "Listener connections currently connected, one per (backend, database) with subscribers.",
		}),
		channels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mqstack_notify_channels",
			Help: "Channels LISTENed on the listener connections.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mqstack_notify_subscriptions",
			Help: "(channel, subscriber) pairs across all listeners.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqstack_notify_received_total",
			Help: "Notifications received from Postgres by the listener connections.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqstack_notify_listener_reconnects_total",
			Help: "Listener connections re-established after being lost.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.channels, m.subscriptions, m.received, m.reconnects)
	}
	return m
}
