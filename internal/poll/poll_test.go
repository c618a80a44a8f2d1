package poll_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate/internal/poll"
)

func TestUntilWaitsForTheCondition(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	go func() {
		time.Sleep(20 * time.Millisecond)
		ready.Store(true)
	}()
	calls := 0
	poll.Until(t, "ready", func() bool { calls++; return ready.Load() })
	if !ready.Load() {
		t.Fatal("Until returned before the condition held")
	}
	if calls < 2 {
		t.Fatalf("cond called %d times, want it polled until true", calls)
	}
}

func TestUntilReturnsAtOnceWhenTrue(t *testing.T) {
	t.Parallel()
	calls := 0
	poll.Until(t, "true", func() bool { calls++; return true })
	if calls != 1 {
		t.Fatalf("cond called %d times, want 1", calls)
	}
}
