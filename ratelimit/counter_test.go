package ratelimit_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/livegate/livegate/ratelimit"
)

func TestMemoryCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type op struct {
		release bool
		key     string
		max     int
		want    bool  // Acquire's result
		wantErr error // Release's error
		count   int   // Count(key) afterwards
		len     int   // Len() afterwards
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"acquire up to max", []op{
			{key: "ip", max: 2, want: true, count: 1, len: 1},
			{key: "ip", max: 2, want: true, count: 2, len: 1},
			{key: "ip", max: 2, want: false, count: 2, len: 1},
			{key: "other", max: 2, want: true, count: 1, len: 2},
			{key: "ip", max: 3, want: true, count: 3, len: 2},
		}},
		{"release to zero removes the key", []op{
			{key: "ip", max: 2, want: true, count: 1, len: 1},
			{key: "ip", max: 2, want: true, count: 2, len: 1},
			{release: true, key: "ip", count: 1, len: 1},
			{key: "ip", max: 2, want: true, count: 2, len: 1},
			{release: true, key: "ip", count: 1, len: 1},
			{release: true, key: "ip", count: 0, len: 0},
			{release: true, key: "ip", wantErr: ratelimit.ErrNotAcquired, count: 0, len: 0},
		}},
		{"max below one admits nobody", []op{
			{key: "ip", max: 0, want: false, count: 0, len: 0},
			{key: "ip", max: -1, want: false, count: 0, len: 0},
		}},
		{"lowered max refuses but keeps holders", []op{
			{key: "ip", max: 5, want: true, count: 1, len: 1},
			{key: "ip", max: 5, want: true, count: 2, len: 1},
			{key: "ip", max: 1, want: false, count: 2, len: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ratelimit.NewMemoryCounter()
			for i, o := range tt.ops {
				if o.release {
					if err := c.Release(ctx, o.key); !errors.Is(err, o.wantErr) {
						t.Fatalf("op %d: Release = %v, want %v", i, err, o.wantErr)
					}
				} else {
					got, err := c.Acquire(ctx, o.key, o.max)
					if err != nil || got != o.want {
						t.Fatalf("op %d: Acquire = %v, %v; want %v", i, got, err, o.want)
					}
				}
				if got := c.Count(o.key); got != o.count {
					t.Errorf("op %d: Count = %d, want %d", i, got, o.count)
				}
				if got := c.Len(); got != o.len {
					t.Errorf("op %d: Len = %d, want %d", i, got, o.len)
				}
			}
		})
	}
}

func TestMemoryCounterErrors(t *testing.T) {
	t.Parallel()
	c := ratelimit.NewMemoryCounter()
	if !strings.HasPrefix(ratelimit.ErrNotAcquired.Error(), "ratelimit: ") {
		t.Errorf("ErrNotAcquired = %q", ratelimit.ErrNotAcquired)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ok, err := c.Acquire(ctx, "ip", 10)
	if ok || !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "ratelimit: ") {
		t.Errorf("Acquire with done context = %v, %v", ok, err)
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d after refused Acquire", c.Len())
	}
	// Release still works with a done context: slots must be given back
	// during shutdown.
	if ok, err := c.Acquire(context.Background(), "ip", 10); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := c.Release(ctx, "ip"); err != nil {
		t.Errorf("Release with done context = %v", err)
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d, want 0", c.Len())
	}
}

// TestMemoryCounterConcurrent acquires and releases from 1000 goroutines:
// no more than max holders at any moment, and nothing left at the end.
func TestMemoryCounterConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := ratelimit.NewMemoryCounter()
	const goroutines, rounds, max, keys = 1000, 20, 10, 8
	var held [keys]atomic.Int32
	var granted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				k := (g + i) % keys
				key := "ip" + strconv.Itoa(k)
				ok, err := c.Acquire(ctx, key, max)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					continue
				}
				granted.Add(1)
				if n := held[k].Add(1); n > max {
					t.Errorf("%s: %d holders, max %d", key, n, max)
				}
				held[k].Add(-1)
				if err := c.Release(ctx, key); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if granted.Load() < keys*max {
		t.Errorf("only %d acquisitions granted", granted.Load())
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d after all releases, want 0", c.Len())
	}
}
