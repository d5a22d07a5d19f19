package proxy

// cycleQueue holds what waits for the backend's answer to a message the
// proxy sent in place of the client's, keyed by the cycle (sync point) the
// message went in and kept in sending order: a denial waits for its
// marker's syntax error (denials.go), a LISTEN for its empty query's
// EmptyQueryResponse (listen.go). Guarded by s.mu.
type cycleQueue[T any] struct {
	q []cycled[T]
}

type cycled[T any] struct {
	cycle uint64
	v     T
}

// push queues v for the message sent in cycle.
func (c *cycleQueue[T]) push(cycle uint64, v T) {
	c.q = append(c.q, cycled[T]{cycle: cycle, v: v})
}

// take returns the next value when it belongs to cycle (the one the
// reader is in); false when the next one is of another cycle.
func (c *cycleQueue[T]) take(cycle uint64) (T, bool) {
	var zero T
	if len(c.q) == 0 || c.q[0].cycle != cycle {
		return zero, false
	}
	v := c.q[0].v
	c.q = c.q[1:]
	return v, true
}

// settle drops the values of the cycles before done: an earlier error
// made the backend skip their messages, so no answer will come.
func (c *cycleQueue[T]) settle(done uint64) {
	j := 0
	for j < len(c.q) && c.q[j].cycle < done {
		j++
	}
	c.q = c.q[j:]
}

// reset empties the queue for a newly attached connection.
func (c *cycleQueue[T]) reset() { c.q = c.q[:0] }
