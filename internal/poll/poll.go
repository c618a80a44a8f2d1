// Package poll waits in tests for a condition that another goroutine,
// process or server makes true, without asserting how long it takes.
package poll

import (
	"testing"
	"time"
)

// Timeout is how long Until waits before failing the test. It is
// generous: it only ends a test that would otherwise hang.
const Timeout = 30 * time.Second

// Interval is how long Until sleeps between two checks.
const Interval = 5 * time.Millisecond

// Until calls cond every Interval until it returns true, and fails t
// (naming what it waited for) if that has not happened after Timeout.
// cond runs on the test's goroutine, so it may call t.Fatal.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Timeout, what)
		}
		time.Sleep(Interval)
	}
}
