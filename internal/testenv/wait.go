package testenv

import (
	"testing"
	"time"
)

// pollInterval is how often WaitFor checks its condition.
const pollInterval = 20 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test naming what it
// waited for when d passes first. Tests wait for the state they need
// instead of sleeping for a time that is usually long enough. Call it from
// the test's goroutine (it calls t.Fatalf).
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(pollInterval)
	}
}

// WaitUntil sleeps until the clock passes at, for tests of what happens when
// a time (a token's exp) has passed; the margin covers the rounding of the
// clock the code under test reads.
func WaitUntil(at time.Time) {
	time.Sleep(time.Until(at) + 50*time.Millisecond)
}
