// Package metrics owns mqstack's Prometheus collectors: per-queue operation
// counters and histograms fed by the proxy and REST alike, the scrape-time
// queue-depth collector (one bounded, cached, time-limited query), and the
// counters for auth, connections, denials, pins and the parse cache. Every
// metric is documented in docs/metrics.md. Collectors are registered on the
// Registerer passed in; there are no package-level metrics.
//
// It imports nothing of ours.
package metrics
