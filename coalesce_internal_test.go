package livegate

import (
	"strings"
	"testing"
	"time"
)

// TestCoalesceDelayDecision checks when a writer waits: only after a write
// of CoalesceAfter frames or more, not when its queue is a quarter full,
// and never when CoalesceDelay is negative.
func TestCoalesceDelayDecision(t *testing.T) {
	on := &Config{CoalesceDelay: 7 * time.Millisecond, SendQueueMessages: 100, SendQueueBytes: 1000}
	off := &Config{CoalesceDelay: -1, SendQueueMessages: 100, SendQueueBytes: 1000}
	for _, c := range []struct {
		cfg                  *Config
		last, queued, qbytes int
		want                 time.Duration
	}{
		{on, 0, 0, 0, 0}, {on, 1, 5, 50, 0}, {on, CoalesceAfter - 1, 5, 50, 0},
		{on, CoalesceAfter, 0, 0, 7 * time.Millisecond}, {on, 500, 24, 249, 7 * time.Millisecond},
		// A queue a quarter full (frames or bytes) is not held back.
		{on, 500, 25, 10, 0}, {on, 500, 1, 250, 0},
		{off, CoalesceAfter, 0, 0, 0}, {off, 500, 1, 1, 0},
	} {
		if got := coalesceDelay(c.cfg, c.last, c.queued, c.qbytes); got != c.want {
			t.Errorf("CoalesceDelay %v, last write %d frames, queued %d frames %d bytes: wait %v, want %v",
				c.cfg.CoalesceDelay, c.last, c.queued, c.qbytes, got, c.want)
		}
	}
}

// TestCoalesceDelayConfig checks the default and the bound.
func TestCoalesceDelayConfig(t *testing.T) {
	c := Config{TokenHMACSecret: []byte("0123456789abcdef0123456789abcdef")}
	c.setDefaults()
	if c.CoalesceDelay != DefaultCoalesceDelay {
		t.Fatalf("default CoalesceDelay %v, want %v", c.CoalesceDelay, DefaultCoalesceDelay)
	}
	if err := c.validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	c.CoalesceDelay = -1
	if err := c.validate(); err != nil {
		t.Fatalf("negative CoalesceDelay (off) refused: %v", err)
	}
	c.CoalesceDelay = 2 * time.Second
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "CoalesceDelay") {
		t.Fatalf("CoalesceDelay of 2s: %v, want refused", err)
	}
}
