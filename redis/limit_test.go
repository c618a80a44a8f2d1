package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/internal/poll"
	"github.com/livegate/livegate/ratelimit"
	"github.com/livegate/livegate/redis"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

var strategies = map[string]ratelimit.Rule{
	"sliding window": ratelimit.Per(5, 10*time.Second),
	"fixed window":   {Strategy: ratelimit.FixedWindow, Limit: 5, Window: 10 * time.Second},
	"token bucket":   ratelimit.Bucket(0.5, 5),
}

// TestLimiterMatchesMemory drives a Redis limiter and ratelimit.Memory
// with the same random events (including times going backwards) and
// requires identical results.
func TestLimiterMatchesMemory(t *testing.T) {
	t.Parallel()
	store := newEngine(t, needRedis(t), testPrefix(t)).LimitStore()
	rules := map[string]ratelimit.Rule{
		"sliding window": ratelimit.Per(3, 10*time.Second),
		"fixed window":   {Strategy: ratelimit.FixedWindow, Limit: 2, Window: time.Minute},
		"token bucket":   ratelimit.Bucket(10, 3),
		"odd bucket":     ratelimit.Bucket(0.37, 4),
		"odd sliding":    ratelimit.Per(4, 1234567*time.Microsecond),
	}
	for name, rule := range rules {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mem, err := ratelimit.NewMemory(rule)
			if err != nil {
				t.Fatal(err)
			}
			lim, err := store.NewLimiter(name, rule)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, uint64(len(name))))
			ctx := context.Background()
			at := time.Duration(0)
			for i := range 400 {
				at += time.Duration(rng.Int64N(int64(700 * time.Millisecond)))
				now := epoch.Add(at)
				if rng.IntN(10) == 0 {
					now = now.Add(-time.Duration(rng.Int64N(int64(2 * time.Second))))
				}
				key := fmt.Sprint("k", rng.IntN(2))
				want, err := mem.Allow(ctx, key, now)
				if err != nil {
					t.Fatal(err)
				}
				got, err := lim.Allow(ctx, key, now)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("event %d (%s at +%v): redis %+v, memory %+v", i, key, now.Sub(epoch), got, want)
				}
			}
		})
	}
}

// TestLimiterAcrossEngines: each strategy's limit holds for events split
// over two engines.
func TestLimiterAcrossEngines(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a, b := newEngine(t, addr, prefix).LimitStore(), newEngine(t, addr, prefix).LimitStore()
	for name, rule := range strategies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			la, err := a.NewLimiter("attempts_ip", rule)
			if err != nil {
				t.Fatal(err)
			}
			lb, err := b.NewLimiter("attempts_ip", rule)
			if err != nil {
				t.Fatal(err)
			}
			now := epoch.Add(time.Hour)
			var wg sync.WaitGroup
			var mu sync.Mutex
			allowed := 0
			for i := range 40 {
				l := []ratelimit.Limiter{la, lb}[i%2]
				wg.Go(func() {
					res, err := l.Allow(context.Background(), "203.0.113.7", now)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						mu.Lock()
						allowed++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if allowed != 5 {
				t.Fatalf("allowed %d events across two engines, want 5", allowed)
			}
			// Another key and another name are separate.
			for _, c := range []struct {
				l    ratelimit.Limiter
				key  string
				name string
			}{{la, "198.51.100.1", ""}, {lb, "198.51.100.1", ""}} {
				if res, err := c.l.Allow(context.Background(), c.key, now); err != nil || !res.Allowed {
					t.Fatalf("other key refused: %+v %v", res, err)
				}
			}
			other, _ := a.NewLimiter("attempts_user", rule)
			if res, _ := other.Allow(context.Background(), "203.0.113.7", now); !res.Allowed {
				t.Fatal("another limit name shares the count")
			}
		})
	}
}

func TestLimiterRules(t *testing.T) {
	t.Parallel()
	store := newEngine(t, needRedis(t), testPrefix(t)).LimitStore()
	for _, r := range []ratelimit.Rule{
		{Strategy: ratelimit.SlidingWindow, Limit: 0, Window: time.Second},
		{Strategy: ratelimit.FixedWindow, Limit: 1, Window: time.Microsecond},
		{Strategy: ratelimit.TokenBucket},
	} {
		if _, err := store.NewLimiter("x", r); !errors.Is(err, ratelimit.ErrInvalidRule) {
			t.Errorf("rule %+v: %v, want ErrInvalidRule", r, err)
		}
	}
}

// TestCounterAcrossEngines: the cap holds across engines, and the slots of
// an engine that stops refreshing come back after its NodeTTL.
func TestCounterAcrossEngines(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a := newEngine(t, addr, prefix).LimitStore().NewCounter("conns_ip")
	b := newEngine(t, addr, prefix).LimitStore().NewCounter("conns_ip")
	dyingEngine := newEngine(t, addr, prefix, func(o *redis.Options) { o.NodeTTL = 300 * time.Millisecond })
	dying := dyingEngine.LimitStore().NewCounter("conns_ip")
	ctx := context.Background()
	acquire := func(c ratelimit.Counter, want bool) {
		t.Helper()
		got, err := c.Acquire(ctx, "ip", 4)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Acquire = %v, want %v", got, want)
		}
	}
	acquire(a, true)
	acquire(b, true)
	acquire(dying, true)
	acquire(dying, true)
	acquire(a, false)
	acquire(b, false)
	if err := b.Release(ctx, "ip"); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, "ip"); !errors.Is(err, ratelimit.ErrNotAcquired) {
		t.Fatalf("second Release = %v, want ErrNotAcquired", err)
	}
	acquire(a, true)
	acquire(b, false)
	if ok, _ := a.Acquire(ctx, "ip", 0); ok {
		t.Fatal("max 0 admitted")
	}
	// The dying engine stops its heartbeat without releasing.
	if err := dyingEngine.Close(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the dead engine's slots to come back", func() bool {
		ok, err := b.Acquire(ctx, "ip", 4)
		return err == nil && ok
	})
	acquire(a, true)
	acquire(b, false)
}

func TestCooldownAcrossEngines(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a := newEngine(t, addr, prefix).LimitStore().NewCooldown("cooldown")
	b := newEngine(t, addr, prefix).LimitStore().NewCooldown("cooldown")
	ctx := context.Background()
	now := time.Now()
	if err := a.Block(ctx, "ip", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Block(ctx, "ip", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	d, blocked, err := b.Blocked(ctx, "ip", now)
	if err != nil || !blocked || d != time.Minute {
		t.Fatalf("Blocked = %v %v %v, want 1m true (never shortened)", d, blocked, err)
	}
	if _, blocked, _ := b.Blocked(ctx, "ip", now.Add(time.Minute)); blocked {
		t.Fatal("blocked at the block's end")
	}
	if _, blocked, _ := a.Blocked(ctx, "other", now); blocked {
		t.Fatal("another key blocked")
	}
}
