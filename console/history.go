package console

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// Window is how far back the console's charts reach.
const Window = 15 * time.Minute

// queuePoint is one queue at one sample: cumulative message counters and
// the depth gauges (NaN when the depth query did not measure the queue).
type queuePoint struct {
	sent, received, deleted, archived float64
	visible, inFlight, delayed        float64
}

type sample struct {
	at     time.Time
	queues map[string]queuePoint
}

// History samples the process's own counters (the registry /metrics
// exports) every interval and keeps the last Window of samples, so the
// console can chart rates and depths without a time-series database.
type History struct {
	g     prometheus.Gatherer
	every time.Duration
	keep  int
	log   *zap.Logger

	mu      sync.Mutex
	samples []sample // oldest first, at most keep

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewHistory returns a History of g sampled every interval; Start runs it.
func NewHistory(g prometheus.Gatherer, interval time.Duration, log *zap.Logger) *History {
	if interval <= 0 {
		panic("BUG: console history interval must be positive")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &History{g: g, every: interval, keep: int(Window/interval) + 1, log: log,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start takes a first sample and then one every interval until Stop.
func (h *History) Start() {
	if h.started.Swap(true) {
		panic("BUG: console history started twice")
	}
	go func() {
		defer close(h.done)
		t := time.NewTicker(h.every)
		defer t.Stop()
		for {
			h.Sample()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the sampling and waits for it; safe to call more than once,
// and on a History never started.
func (h *History) Stop() {
	h.once.Do(func() { close(h.stop) })
	if h.started.Load() {
		<-h.done
	}
}

// Sample gathers the counters once and appends the sample.
func (h *History) Sample() {
	mfs, err := h.g.Gather()
	if err != nil && len(mfs) == 0 {
		// A failing collector (the depth query) still leaves the others.
		h.log.Warn("console: gathering metrics failed", zap.Error(err))
		return
	}
	s := sample{at: time.Now(), queues: queuePoints(mfs)}
	h.mu.Lock()
	h.samples = append(h.samples, s)
	if len(h.samples) > h.keep {
		h.samples = append(h.samples[:0], h.samples[len(h.samples)-h.keep:]...)
	}
	h.mu.Unlock()
}

// Len is how many samples are kept now (tests wait for the next one).
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.samples)
}

// queuePoints reads the per-queue counters and depth gauges of one gather.
func queuePoints(mfs []*dto.MetricFamily) map[string]queuePoint {
	out := map[string]queuePoint{}
	point := func(q string) queuePoint {
		p, ok := out[q]
		if !ok {
			p = queuePoint{visible: nan, inFlight: nan, delayed: nan}
		}
		return p
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "mqstack_queue_messages_total":
				q := label(m, "queue")
				p := point(q)
				v := m.GetCounter().GetValue()
				switch label(m, "event") {
				case "sent":
					p.sent += v
				case "received", "popped":
					p.received += v
				case "deleted":
					p.deleted += v
				case "archived":
					p.archived += v
				}
				out[q] = p
			case "mqstack_queue_visible_messages", "mqstack_queue_in_flight_messages", "mqstack_queue_delayed_messages":
				q := label(m, "queue_name")
				p := point(q)
				setDepth(&p, mf.GetName(), m.GetGauge().GetValue())
				out[q] = p
			}
		}
	}
	return out
}

func setDepth(p *queuePoint, name string, v float64) {
	switch name {
	case "mqstack_queue_visible_messages":
		p.visible = v
	case "mqstack_queue_in_flight_messages":
		p.inFlight = v
	default:
		p.delayed = v
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
