package backend

import (
	"strconv"
	"testing"
)

// BenchmarkStmtCacheHas is the statement-LRU lookup every Bind and Describe
// of a named statement makes on its backend connection: a hit that moves
// the name to the front.
func BenchmarkStmtCacheHas(b *testing.B) {
	c := NewStmtCache(512)
	names := make([]string, 64)
	for i := range names {
		names[i] = "mqs_" + strconv.Itoa(i)
		c.Add(names[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !c.Has(names[i&63]) {
			b.Fatal("miss")
		}
		i++
	}
}

// BenchmarkStmtCacheChurn is a client whose statements do not fit the LRU:
// each Add evicts one name into the pending-close list, taken at the next
// cycle.
func BenchmarkStmtCacheChurn(b *testing.B) {
	c := NewStmtCache(64)
	names := make([]string, 1024)
	for i := range names {
		names[i] = "mqs_" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !c.Has(names[i&1023]) {
			c.Add(names[i&1023])
		}
		c.TakePending()
		i++
	}
}
