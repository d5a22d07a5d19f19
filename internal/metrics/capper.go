package metrics

import (
	"strings"
	"sync"
)

// OtherQueue is the label every queue without a label of its own is counted
// under.
const OtherQueue = "_other"

// NoQueue is the label of calls that name no queue (listings, calls on all
// queues). It is a fixed label and takes no slot.
const NoQueue = "_none"

// Capper bounds the queue label set: the first max distinct queues admitted
// get their own label, later ones share OtherQueue. Only queues known to
// exist are admitted (a call on them succeeded, or the depth query listed
// them), so names in refused or failed calls cannot use the slots up; those
// are looked up and counted under OtherQueue when they have none. Names are
// lower-cased, as pgmq folds table names.
type Capper struct {
	max    int
	mu     sync.RWMutex
	labels map[string]struct{} // admitted names, lower-cased
}

// NewCapper returns a Capper admitting max queue names (at least 1).
func NewCapper(max int) *Capper {
	if max < 1 {
		max = 1
	}
	return &Capper{max: max, labels: make(map[string]struct{}, max)}
}

// Lookup returns queue's label when it was admitted, else OtherQueue. It
// admits nothing.
func (c *Capper) Lookup(queue string) string {
	if queue == NoQueue {
		return NoQueue
	}
	lower := strings.ToLower(queue) // no copy when already lower-case ASCII
	c.mu.RLock()
	_, ok := c.labels[lower]
	c.mu.RUnlock()
	if ok {
		return lower
	}
	return OtherQueue
}

// Admit gives queue, a queue known to exist, a label of its own while
// slots are free, and returns its label.
func (c *Capper) Admit(queue string) string {
	if l := c.Lookup(queue); l != OtherQueue {
		return l
	}
	lower := strings.ToLower(queue)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.labels[lower]; ok {
		return lower
	}
	if len(c.labels) >= c.max {
		return OtherQueue
	}
	c.labels[lower] = struct{}{}
	return lower
}
