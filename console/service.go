package console

import (
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Pool is one backend pool (backend, database, role) now.
type Pool struct {
	Backend  string  `json:"backend"`
	Database string  `json:"database"`
	Role     string  `json:"role"`
	Active   float64 `json:"active"`
	Idle     float64 `json:"idle"`
	Waiting  float64 `json:"waiting"`
	Max      float64 `json:"max"`
}

// Count is one labelled counter value.
type Count struct {
	Label  string  `json:"label"`
	Source string  `json:"source,omitempty"`
	Count  float64 `json:"count"`
}

// Service is the service page: the counters /metrics exports about client
// connections, pools, pins, denials and token refusals, read now.
type Service struct {
	At                time.Time `json:"at"`
	Clients           float64   `json:"clients"`
	Pools             []Pool    `json:"pools"`
	Pins              []Count   `json:"pins"`
	Denials           []Count   `json:"denials"`
	AuthFailures      []Count   `json:"auth_failures"`
	ConnectionsClosed []Count   `json:"connections_closed"`
}

// Service gathers the service counters now.
func (h *History) Service() (Service, error) {
	mfs, err := h.g.Gather()
	if err != nil && len(mfs) == 0 {
		return Service{}, err
	}
	return serviceOf(mfs), nil
}

func serviceOf(mfs []*dto.MetricFamily) Service {
	s := Service{At: time.Now().UTC(), Pools: []Pool{}, Pins: []Count{}, Denials: []Count{},
		AuthFailures: []Count{}, ConnectionsClosed: []Count{}}
	pools := map[string]*Pool{}
	pool := func(m *dto.Metric) *Pool {
		key := label(m, "backend") + "\x00" + label(m, "database") + "\x00" + label(m, "role")
		p := pools[key]
		if p == nil {
			p = &Pool{Backend: label(m, "backend"), Database: label(m, "database"), Role: label(m, "role")}
			pools[key] = p
		}
		return p
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "mqstack_proxy_clients":
				s.Clients = m.GetGauge().GetValue()
			case "mqstack_pool_backends":
				p, v := pool(m), m.GetGauge().GetValue()
				switch label(m, "state") {
				case "active":
					p.Active = v
				case "idle":
					p.Idle = v
				}
			case "mqstack_pool_clients_waiting":
				pool(m).Waiting = m.GetGauge().GetValue()
			case "mqstack_pool_max_backends":
				pool(m).Max = m.GetGauge().GetValue()
			case "mqstack_pins_total":
				s.Pins = append(s.Pins, Count{Label: label(m, "cause"), Count: m.GetCounter().GetValue()})
			case "mqstack_statements_denied_total":
				s.Denials = append(s.Denials, Count{Label: label(m, "reason"), Source: label(m, "source"), Count: m.GetCounter().GetValue()})
			case "mqstack_auth_attempts_total":
				if label(m, "outcome") != "ok" {
					s.AuthFailures = append(s.AuthFailures, Count{Label: label(m, "reason"), Source: label(m, "source"), Count: m.GetCounter().GetValue()})
				}
			case "mqstack_connections_closed_total":
				s.ConnectionsClosed = append(s.ConnectionsClosed, Count{Label: label(m, "reason"), Count: m.GetCounter().GetValue()})
			}
		}
	}
	for _, p := range pools {
		s.Pools = append(s.Pools, *p)
	}
	sort.Slice(s.Pools, func(i, j int) bool {
		a, b := s.Pools[i], s.Pools[j]
		return strings.Join([]string{a.Backend, a.Database, a.Role}, "\x00") < strings.Join([]string{b.Backend, b.Database, b.Role}, "\x00")
	})
	return s
}
