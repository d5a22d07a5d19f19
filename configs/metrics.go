package configs

import (
	"fmt"
	"net"
	"time"
)

// MetricsConfig configures the Prometheus endpoint and the per-queue metrics.
type MetricsConfig struct {
	// Listen is the host:port of /metrics. Default "127.0.0.1:9187"; ""
	// disables the endpoint.
	Listen string `yaml:"listen"`
	// MaxQueues caps the queue label set: the first max_queues queues known
	// to exist (a call on them succeeded, or the depth query measured them)
	// get their own series; other queues, and refused or failed calls on
	// names without a series, are counted as "_other". The depth query
	// measures at most this many queues. Default 500.
	MaxQueues int `yaml:"max_queues"`
	// DepthTimeout bounds the scrape-time queue depth query. Default 5s.
	DepthTimeout time.Duration `yaml:"depth_timeout"`
	// DepthCacheTTL reuses one depth query answer for this long. Default 10s.
	DepthCacheTTL time.Duration `yaml:"depth_cache_ttl"`
	// Role is the database role the depth query runs as; it needs SELECT on
	// the queue tables. Default "": postgres.default_role.
	Role string `yaml:"role"`
}

func defaultMetrics() MetricsConfig {
	return MetricsConfig{Listen: "127.0.0.1:9187", MaxQueues: 500, DepthTimeout: 5 * time.Second, DepthCacheTTL: 10 * time.Second}
}

func validateMetrics(m MetricsConfig) []string {
	var problems []string
	if m.Listen != "" {
		if _, _, err := net.SplitHostPort(m.Listen); err != nil {
			problems = append(problems, fmt.Sprintf("metrics.listen %q: want host:port (or \"\" to disable)", m.Listen))
		}
	}
	if m.MaxQueues < 1 {
		problems = append(problems, "metrics.max_queues must be at least 1")
	}
	if m.DepthTimeout <= 0 {
		problems = append(problems, "metrics.depth_timeout must be positive")
	}
	if m.DepthCacheTTL < 0 {
		problems = append(problems, "metrics.depth_cache_ttl must not be negative")
	}
	if m.Role != "" && !ValidRoleName(m.Role) {
		problems = append(problems, fmt.Sprintf("metrics.role %q is not a role name", m.Role))
	}
	return problems
}
