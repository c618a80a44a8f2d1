package ratelimit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/ratelimit"
)

func TestMemoryCooldown(t *testing.T) {
	t.Parallel()
	type op struct {
		block     bool
		key       string
		at        time.Duration // Blocked's now, or Block's until
		wantRetry time.Duration
		wantBlock bool
		len       int
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"unknown key is not blocked", []op{
			{key: "ip", at: 0, len: 0},
		}},
		{"blocked until the deadline, then forgotten", []op{
			{block: true, key: "ip", at: 5 * time.Second, len: 1},
			{key: "ip", at: 0, wantRetry: 5 * time.Second, wantBlock: true, len: 1},
			{key: "other", at: 0, len: 1},
			{key: "ip", at: 5*time.Second - 1, wantRetry: 1, wantBlock: true, len: 1},
			{key: "ip", at: 5 * time.Second, len: 0},
		}},
		{"block never shortens", []op{
			{block: true, key: "ip", at: 10 * time.Second, len: 1},
			{block: true, key: "ip", at: 5 * time.Second, len: 1},
			{key: "ip", at: 7 * time.Second, wantRetry: 3 * time.Second, wantBlock: true, len: 1},
			{block: true, key: "ip", at: 20 * time.Second, len: 1},
			{key: "ip", at: 15 * time.Second, wantRetry: 5 * time.Second, wantBlock: true, len: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := ratelimit.NewMemoryCooldown()
			for i, o := range tt.ops {
				if o.block {
					if err := c.Block(ctx, o.key, at(o.at)); err != nil {
						t.Fatal(err)
					}
				} else {
					retry, blocked, err := c.Blocked(ctx, o.key, at(o.at))
					if err != nil || retry != o.wantRetry || blocked != o.wantBlock {
						t.Errorf("op %d: Blocked = %v, %v, %v; want %v, %v", i, retry, blocked, err, o.wantRetry, o.wantBlock)
					}
				}
				if got := c.Len(); got != o.len {
					t.Errorf("op %d: Len = %d, want %d", i, got, o.len)
				}
			}
		})
	}
}

func TestMemoryCooldownSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := ratelimit.NewMemoryCooldown()
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		if err := c.Block(ctx, string(rune('a'+i)), at(d)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		at      time.Duration
		removed int
		len     int
	}{
		{0, 0, 3},
		{time.Second, 1, 2},
		{2500 * time.Millisecond, 1, 1},
		{time.Hour, 1, 0},
	}
	for _, tt := range tests {
		if got := c.Sweep(at(tt.at)); got != tt.removed {
			t.Errorf("Sweep(+%v) = %d, want %d", tt.at, got, tt.removed)
		}
		if got := c.Len(); got != tt.len {
			t.Errorf("after Sweep(+%v) Len = %d, want %d", tt.at, got, tt.len)
		}
	}
}

func TestMemoryCooldownContextDone(t *testing.T) {
	t.Parallel()
	c := ratelimit.NewMemoryCooldown()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Block(ctx, "ip", at(time.Second)); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "ratelimit: ") {
		t.Errorf("Block = %v", err)
	}
	// Fails closed: a caller that ignores the error still refuses.
	if _, blocked, err := c.Blocked(ctx, "ip", epoch); !blocked || !errors.Is(err, context.Canceled) {
		t.Errorf("Blocked = %v, %v; want true and context.Canceled", blocked, err)
	}
}

func TestMemoryCooldownConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := ratelimit.NewMemoryCooldown()
	var wg sync.WaitGroup
	for g := 0; g < 100; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := string(rune('a' + g%10))
			for i := 0; i < 50; i++ {
				now := at(time.Duration(i) * time.Second)
				if err := c.Block(ctx, key, now.Add(5*time.Second)); err != nil {
					t.Error(err)
				}
				if _, blocked, err := c.Blocked(ctx, key, now); err != nil || !blocked {
					t.Errorf("Blocked(%q) = %v, %v right after Block", key, blocked, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := c.Sweep(at(time.Hour)); n != 10 || c.Len() != 0 {
		t.Errorf("Sweep = %d, Len = %d; want 10, 0", n, c.Len())
	}
}
