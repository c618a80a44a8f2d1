package livegate

import (
	"strings"
	"testing"
	"time"
)

// TestCoalesceDelayDecision checks when a writer waits: only after a write
// of CoalesceAfter frames or more, and never when CoalesceDelay is
// negative.
func TestCoalesceDelayDecision(t *testing.T) {
	on := &Config{CoalesceDelay: 7 * time.Millisecond}
	off := &Config{CoalesceDelay: -1}
	for _, c := range []struct {
		cfg  *Config
		last int
		want time.Duration
	}{
		{on, 0, 0}, {on, 1, 0}, {on, CoalesceAfter - 1, 0},
		{on, CoalesceAfter, 7 * time.Millisecond}, {on, 500, 7 * time.Millisecond},
		{off, CoalesceAfter, 0}, {off, 500, 0},
	} {
		if got := coalesceDelay(c.cfg, c.last); got != c.want {
			t.Errorf("CoalesceDelay %v, last write %d frames: wait %v, want %v", c.cfg.CoalesceDelay, c.last, got, c.want)
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
