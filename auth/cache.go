package auth

import (
	"sync"
)

// tokenCache remembers verified tokens by the SHA-256 of the token text until
// they expire, in a fixed number of LRU shards so that concurrent sessions
// rarely share a lock. Only verified tokens enter it.
type tokenCache struct {
	shards []cacheShard
	mask   uint8
}

type cacheShard struct {
	mu   sync.Mutex
	m    map[[32]byte]*cacheEntry
	head cacheEntry // sentinel: head.next is the most recently used
	max  int
}

type cacheEntry struct {
	key        [32]byte
	id         Identity
	deadline   int64 // unix nanoseconds: exp plus leeway
	prev, next *cacheEntry
}

const cacheShards = 16

// newTokenCache returns nil (no cache) for size 0.
func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	n := cacheShards
	if size < n*4 {
		n = 1
	}
	c := &tokenCache{shards: make([]cacheShard, n), mask: uint8(n - 1)}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[[32]byte]*cacheEntry)
		s.head.next, s.head.prev = &s.head, &s.head
		s.max = size / n
		if i < size%n {
			s.max++
		}
	}
	return c
}

func (c *tokenCache) shard(key *[32]byte) *cacheShard { return &c.shards[key[0]&c.mask] }

// get returns the entry for key and marks it recently used.
func (c *tokenCache) get(key *[32]byte) (Identity, int64, bool) {
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.m[*key]
	if !ok {
		s.mu.Unlock()
		return Identity{}, 0, false
	}
	s.unlink(e)
	s.pushFront(e)
	id, deadline := e.id, e.deadline
	s.mu.Unlock()
	return id, deadline, true
}

func (c *tokenCache) put(key *[32]byte, id Identity, deadline int64) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[*key]; ok {
		e.id, e.deadline = id, deadline
		s.unlink(e)
		s.pushFront(e)
		return
	}
	if len(s.m) >= s.max {
		old := s.head.prev
		s.unlink(old)
		delete(s.m, old.key)
	}
	e := &cacheEntry{key: *key, id: id, deadline: deadline}
	s.m[*key] = e
	s.pushFront(e)
}

func (c *tokenCache) remove(key *[32]byte) {
	s := c.shard(key)
	s.mu.Lock()
	if e, ok := s.m[*key]; ok {
		s.unlink(e)
		delete(s.m, *key)
	}
	s.mu.Unlock()
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *cacheShard) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *cacheShard) pushFront(e *cacheEntry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}
