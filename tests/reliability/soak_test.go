//go:build soak

package reliability

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

var soakDuration = flag.Duration("soak.duration", envDuration("MQSTACK_SOAK_DURATION", 10*time.Minute),
	"how long TestSoak runs (env MQSTACK_SOAK_DURATION)")

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// TestSoak (`make soak`): mixed load through the proxy and REST for
// -soak.duration, in rounds of a minute with one fault each (cycling
// through every fault), each round drained and accounted; memory and
// goroutines sampled between rounds must stay flat.
func TestSoak(t *testing.T) {
	e := newEnv(t, envOptions{PoolSize: 8, CheckoutTimeout: time.Second})
	round := time.Minute
	if *soakDuration < 5*round {
		round = max(*soakDuration/5, 15*time.Second)
	}
	start := time.Now()
	var total counts
	var heap []uint64
	var goroutines []int
	for i := 0; time.Since(start)+round/2 <= *soakDuration || i == 0; i++ {
		f := faults[i%len(faults)]
		// Half the round before the fault, the rest after (minus the drain).
		c := runRound(t, e, fmt.Sprintf("soak_%d", i), f, round/2, round/2-5*time.Second)
		total.add(c)
		heap = append(heap, heapInUse())
		goroutines = append(goroutines, runtime.NumGoroutine())
		t.Logf("round %d (%s) at %s: heap %d KiB, %d goroutines", i, f.name, time.Since(start).Round(time.Second),
			heap[len(heap)-1]/1024, goroutines[len(goroutines)-1])
	}
	fmt.Printf("soak: %s, %d rounds; messages sent %d, acknowledged %d, received %d, deleted %d, archived %d, lost %d, duplicated %d; heap %d -> %d KiB, goroutines %d -> %d\n",
		time.Since(start).Round(time.Second), len(heap), total.Attempted, total.Acked, total.Received, total.Deleted, total.Archived,
		total.Lost, total.Duplicated, heap[0]/1024, heap[len(heap)-1]/1024, goroutines[0], goroutines[len(goroutines)-1])
	if !total.ok() {
		t.Fatalf("soak accounting: %s\n  %s", total, total.problems())
	}
	// Flat: the last sample is within 50% (+16 MiB) of the lowest of the
	// first rounds, goroutines within 50 (the first round warms the pools).
	base := heap[0]
	if len(heap) > 1 {
		base = min(heap[0], heap[1])
	}
	if last := heap[len(heap)-1]; last > base*3/2+16<<20 {
		t.Errorf("heap grew from %d to %d KiB", base/1024, last/1024)
	}
	if g := goroutines[len(goroutines)-1]; g > goroutines[0]+50 {
		t.Errorf("goroutines grew from %d to %d", goroutines[0], g)
	}
}
