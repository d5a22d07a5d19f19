package console

import (
	"math"
	"sort"
)

var nan = math.NaN()

// QueueSeries is one queue's charts: per-second rates between consecutive
// samples and the depth at each sample; null where nothing was measured.
type QueueSeries struct {
	Sent     []*float64 `json:"sent"`
	Received []*float64 `json:"received"`
	Deleted  []*float64 `json:"deleted"`
	Archived []*float64 `json:"archived"`
	Visible  []*float64 `json:"visible"`
	InFlight []*float64 `json:"in_flight"`
	Delayed  []*float64 `json:"delayed"`
}

// Series is the history the console plots: T are the sample times (Unix
// seconds) from the second sample on, each queue's slices align with T.
type Series struct {
	IntervalSec float64                 `json:"interval_sec"`
	WindowSec   float64                 `json:"window_sec"`
	T           []float64               `json:"t"`
	Queues      map[string]*QueueSeries `json:"queues"`
}

// QueueHistory returns the series of the queues allow admits (the REST
// server passes the token's list grant), only those of the named queue
// when only is not "".
func (h *History) QueueHistory(allow func(queue string) bool, only string) Series {
	h.mu.Lock()
	samples := append([]sample(nil), h.samples...)
	h.mu.Unlock()
	out := Series{IntervalSec: h.every.Seconds(), WindowSec: Window.Seconds(), T: []float64{}, Queues: map[string]*QueueSeries{}}
	if len(samples) < 2 {
		return out
	}
	names := map[string]bool{}
	for _, s := range samples {
		for q := range s.queues {
			if (only == "" || q == only) && allow(q) {
				names[q] = true
			}
		}
	}
	for i := 1; i < len(samples); i++ {
		out.T = append(out.T, float64(samples[i].at.UnixMilli())/1000)
	}
	for _, q := range sortedNames(names) {
		out.Queues[q] = queueSeries(samples, q)
	}
	return out
}

func queueSeries(samples []sample, q string) *QueueSeries {
	n := len(samples) - 1
	qs := &QueueSeries{
		Sent: make([]*float64, n), Received: make([]*float64, n), Deleted: make([]*float64, n),
		Archived: make([]*float64, n), Visible: make([]*float64, n), InFlight: make([]*float64, n),
		Delayed: make([]*float64, n),
	}
	for i := 1; i < len(samples); i++ {
		prev, pok := samples[i-1].queues[q]
		cur, cok := samples[i].queues[q]
		if cok {
			qs.Visible[i-1] = num(cur.visible)
			qs.InFlight[i-1] = num(cur.inFlight)
			qs.Delayed[i-1] = num(cur.delayed)
		}
		dt := samples[i].at.Sub(samples[i-1].at).Seconds()
		if !cok || dt <= 0 {
			continue
		}
		// A queue first seen in this sample started from zero.
		qs.Sent[i-1] = rate(prev.sent, cur.sent, dt, pok)
		qs.Received[i-1] = rate(prev.received, cur.received, dt, pok)
		qs.Deleted[i-1] = rate(prev.deleted, cur.deleted, dt, pok)
		qs.Archived[i-1] = rate(prev.archived, cur.archived, dt, pok)
	}
	return qs
}

// rate is the per-second increase of a counter; a counter that went down
// was reset (a new label after the cap moved), so the rate restarts at 0.
func rate(prev, cur, dt float64, hadPrev bool) *float64 {
	if !hadPrev {
		prev = 0
	}
	d := cur - prev
	if d < 0 {
		d = 0
	}
	return num(d / dt)
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
