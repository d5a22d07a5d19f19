package backend

import "container/list"

// StmtCache is the LRU of the prepared statements the proxy created on one
// backend connection, by backend statement name. It is used by the one
// session that holds the connection, so it has no lock.
//
// Evicted names are not closed at once: the proxy closes them at the start of
// the next Sync cycle, where a Close cannot be skipped by an earlier error.
// Until then they still exist on the backend, so Has revives them.
type StmtCache struct {
	cap     int
	order   *list.List // front = most recently used; values are names
	items   map[string]*list.Element
	pending []string // evicted, not yet closed on the backend
}

// NewStmtCache returns an empty cache holding at most capacity names.
func NewStmtCache(capacity int) *StmtCache {
	if capacity < 1 {
		capacity = 1
	}
	return &StmtCache{cap: capacity, order: list.New(), items: map[string]*list.Element{}}
}

// Has reports whether name exists on the backend and marks it recently
// used; an evicted name not yet closed is revived.
func (c *StmtCache) Has(name string) bool {
	if e, ok := c.items[name]; ok {
		c.order.MoveToFront(e)
		return true
	}
	if i := indexOf(c.pending, name); i >= 0 {
		c.pending = append(c.pending[:i], c.pending[i+1:]...)
		c.Add(name)
		return true
	}
	return false
}

// Add records name as prepared, evicting the least recently used names
// beyond the capacity into the pending-close list.
func (c *StmtCache) Add(name string) {
	if e, ok := c.items[name]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[name] = c.order.PushFront(name)
	for c.order.Len() > c.cap {
		e := c.order.Back()
		n := e.Value.(string)
		c.order.Remove(e)
		delete(c.items, n)
		c.pending = append(c.pending, n)
	}
}

// TakePending returns the evicted names to close now and forgets them.
func (c *StmtCache) TakePending() []string {
	p := c.pending
	c.pending = nil
	return p
}

// Remove forgets name (it failed to prepare, or was closed).
func (c *StmtCache) Remove(name string) {
	if e, ok := c.items[name]; ok {
		c.order.Remove(e)
		delete(c.items, name)
	}
	if i := indexOf(c.pending, name); i >= 0 {
		c.pending = append(c.pending[:i], c.pending[i+1:]...)
	}
}

// Clear forgets everything (after DISCARD ALL or DEALLOCATE ALL).
func (c *StmtCache) Clear() {
	c.order.Init()
	clear(c.items)
	c.pending = nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// Len is the number of prepared statements.
func (c *StmtCache) Len() int { return c.order.Len() }

// SetCap changes the capacity; the next Add evicts down to it.
func (c *StmtCache) SetCap(n int) {
	if n >= 1 {
		c.cap = n
	}
}
