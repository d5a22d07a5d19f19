package metrics

import (
	"strings"
	"sync"
)

// OtherQueue is the label every queue beyond the cap is counted under.
const OtherQueue = "_other"

// Capper bounds the queue label set: the first max distinct queue names get
// their own label, later ones share OtherQueue. Names are lower-cased, as
// pgmq folds table names.
type Capper struct {
	max  int
	mu   sync.RWMutex
	seen map[string]string
}

// NewCapper returns a Capper admitting max queue names (at least 1).
func NewCapper(max int) *Capper {
	if max < 1 {
		max = 1
	}
	return &Capper{max: max, seen: make(map[string]string, max)}
}

// Label returns the label to use for queue.
func (c *Capper) Label(queue string) string {
	c.mu.RLock()
	l, ok := c.seen[queue]
	c.mu.RUnlock()
	if ok {
		return l
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.seen[queue]; ok {
		return l
	}
	lower := strings.ToLower(queue)
	if len(c.seen) >= c.max {
		// Spellings of an admitted queue still map to it.
		for k, v := range c.seen {
			if strings.ToLower(k) == lower {
				return v
			}
		}
		return OtherQueue
	}
	c.seen[queue] = lower
	return lower
}
