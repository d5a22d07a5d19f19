package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

var metricName = regexp.MustCompile(`\b(?:mqstack|pgmq)_[a-z_]+[a-z]\b`)

func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| `") {
			cell := strings.SplitN(line, "|", 3)[1]
			for _, m := range metricName.FindAllString(cell, -1) {
				out[m] = true
			}
		}
	}
	return out
}

// Every metric this package registers is documented in docs/metrics.md.
func TestEveryMetricDocumented(t *testing.T) {
	doc := documentedMetrics(t)
	descs := make(chan *prometheus.Desc, 100)
	reg := prometheus.NewRegistry()
	NewQueues(reg, 10)
	NewService(reg, func() (uint64, uint64) { return 0, 0 })
	NewDepthCollector(nil, zap.NewNop(), 1, 1, 1).Describe(descs)
	close(descs)
	var names []string
	for d := range descs {
		names = append(names, metricName.FindString(d.String()))
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	// Vectors without observations are not gathered: name them from the
	// constructors' source instead.
	src, _ := os.ReadFile("queues.go")
	names = append(names, metricName.FindAllString(string(src), -1)...)
	src, _ = os.ReadFile("service.go")
	names = append(names, metricName.FindAllString(string(src), -1)...)
	for _, n := range names {
		if n != "" && !doc[n] {
			t.Errorf("metric %s is not documented in docs/metrics.md", n)
		}
	}
}

// Every metric the Grafana dashboard plots is documented (and so exists).
func TestDashboardMetricsDocumented(t *testing.T) {
	doc := documentedMetrics(t)
	dash, err := os.ReadFile("../../configs/grafana/mqstack.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, m := range metricName.FindAllString(string(dash), -1) {
		m = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if m == "mqstack_queues" { // the dashboard's uid, not a metric
			continue
		}
		seen++
		if !doc[m] {
			t.Errorf("dashboard plots %s, which docs/metrics.md does not document", m)
		}
	}
	if seen < 15 {
		t.Fatalf("only %d metric references found in the dashboard", seen)
	}
}
