package router

import (
	"sync"
	"sync/atomic"
)

// maxCachedQueryLen keeps huge one-off statements out of the cache.
const maxCachedQueryLen = 16 << 10

// Router classifies statements and caches the result by query text. The
// cache is two generations of maps: lookups try the young one, then the old
// one; when the young one fills up it becomes the old one and the oldest
// generation is dropped, so statements in use are parsed again at most once
// per generation.
// That bounds memory at twice the size with one map lookup per hit.
type Router struct {
	size int

	mu    sync.RWMutex
	young map[string]*Statement
	old   map[string]*Statement

	hits, misses atomic.Uint64
}

// New returns a Router whose cache holds about size statements (at most 2x).
func New(size int) *Router {
	if size < 16 {
		size = 16
	}
	return &Router{size: size, young: make(map[string]*Statement, size)}
}

// Classify returns the classification of sql, from the cache when it can.
// The result is shared: callers must not modify it.
func (r *Router) Classify(sql string) *Statement {
	r.mu.RLock()
	st, ok := r.young[sql]
	if !ok && r.old != nil {
		st, ok = r.old[sql]
	}
	r.mu.RUnlock()
	if ok {
		r.hits.Add(1)
		return st
	}
	if len(sql) > maxCachedQueryLen {
		r.misses.Add(1)
		return Classify(sql)
	}
	// Statements that differ only in numeric literals share an entry, under
	// their shape (see shapeKey): inlined values would otherwise make every
	// simple-protocol statement a parse.
	key, shaped := shapeKey(sql)
	if shaped {
		r.mu.RLock()
		st, ok = r.young[key]
		if !ok && r.old != nil {
			st, ok = r.old[key]
		}
		r.mu.RUnlock()
		if ok {
			r.hits.Add(1)
			return st
		}
	} else {
		key = sql
	}
	r.misses.Add(1)
	st = Classify(sql)
	if shaped && st.ParseError != "" {
		// A number can make a statement unparsable (float(0)); such a
		// result is never shared. (The reverse, float(0) served the
		// classification of float(5), is harmless: the server refuses it.)
		return st
	}
	r.mu.Lock()
	if len(r.young) >= r.size {
		r.old, r.young = r.young, make(map[string]*Statement, r.size)
	}
	r.young[key] = st
	r.mu.Unlock()
	return st
}

// CacheStats reports parse-cache hits and misses since the start.
func (r *Router) CacheStats() (hits, misses uint64) { return r.hits.Load(), r.misses.Load() }
