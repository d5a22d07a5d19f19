package stack

import (
	"net/http"
	"time"

	"mqstack/console"
	"mqstack/rest"
)

// defaultConsoleInterval is how often the console's history samples the
// counters: 180 points in its 15-minute charts.
const defaultConsoleInterval = 5 * time.Second

// consoleStats gives REST's console endpoints the sampled counters.
type consoleStats struct{ h *console.History }

var _ rest.Stats = consoleStats{}

func (c consoleStats) QueueHistory(allow func(string) bool, only string) any {
	return c.h.QueueHistory(allow, only)
}

func (c consoleStats) Service() (any, error) { return c.h.Service() }

// consoleParts builds the console's handler and history when the config
// serves it; nil, nil and a nil Stats otherwise.
func (s *Stack) consoleParts(on bool, every time.Duration) (http.Handler, rest.Stats) {
	if !on {
		return nil, nil
	}
	if every <= 0 {
		every = defaultConsoleInterval
	}
	s.History = console.NewHistory(s.Registry, every, s.log.Named("console"))
	return console.Handler("/console/"), consoleStats{s.History}
}

// ConsoleURL is the console's link with token in its fragment ("" when the
// console is off).
func (s *Stack) ConsoleURL(token string) string {
	if s.History == nil {
		return ""
	}
	return console.Link(s.RESTAddr(), token)
}
