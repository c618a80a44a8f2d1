package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate/ratelimit"
)

// benchRules are rules under which a hot key is refused most of the time at
// one event per simulated microsecond, so both paths are measured.
var benchRules = []struct {
	name string
	rule ratelimit.Rule
}{
	{"token_bucket", ratelimit.Bucket(100, 20)},
	{"sliding_window", ratelimit.PerMinute(20)},
	{"fixed_window", ratelimit.Rule{Strategy: ratelimit.FixedWindow, Limit: 20, Window: time.Minute}},
}

// ipKeys returns n distinct keys shaped like IPv4 addresses.
func ipKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	return keys
}

// BenchmarkAllow measures Allow on one hot key and spread over 65536
// existing keys. Neither allocates: records exist already.
func BenchmarkAllow(b *testing.B) {
	ctx := context.Background()
	for _, br := range benchRules {
		b.Run(br.name+"/hot_key", func(b *testing.B) {
			m := newMemory(b, br.rule)
			now := epoch
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Microsecond)
				if _, err := m.Allow(ctx, "203.0.113.7", now); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(br.name+"/many_keys", func(b *testing.B) {
			m := newMemory(b, br.rule)
			keys := ipKeys(1 << 16)
			for _, k := range keys {
				allow(b, m, k, epoch)
			}
			now := epoch
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Microsecond)
				if _, err := m.Allow(ctx, keys[i&(len(keys)-1)], now); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAllowParallel measures Allow from GOMAXPROCS goroutines over
// 65536 existing keys, spread over the shards.
func BenchmarkAllowParallel(b *testing.B) {
	ctx := context.Background()
	for _, br := range benchRules {
		b.Run(br.name, func(b *testing.B) {
			m := newMemory(b, br.rule)
			keys := ipKeys(1 << 16)
			for _, k := range keys {
				allow(b, m, k, epoch)
			}
			var seed atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				now := epoch
				for pb.Next() {
					now = now.Add(time.Microsecond)
					if _, err := m.Allow(ctx, keys[i&(len(keys)-1)], now); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkMemoryPerKey reports the heap each new key costs (record, map
// slot and a copy of the key, an IPv4 address here) as B/key.
func BenchmarkMemoryPerKey(b *testing.B) {
	ctx := context.Background()
	const n = 100_000
	keys := ipKeys(n)
	for _, br := range benchRules {
		b.Run(br.name, func(b *testing.B) {
			var perKey float64
			b.ReportAllocs()
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				m, err := ratelimit.NewMemory(br.rule)
				if err != nil {
					b.Fatal(err)
				}
				for _, k := range keys {
					if _, err := m.Allow(ctx, k, epoch); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perKey = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
				runtime.KeepAlive(m)
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}

func BenchmarkCounter(b *testing.B) {
	ctx := context.Background()
	c := ratelimit.NewMemoryCounter()
	// A held slot keeps the key's record, so acquire/release do not
	// allocate: the common case of a second connection from one IP.
	if _, err := c.Acquire(ctx, "203.0.113.7", 10); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := c.Acquire(ctx, "203.0.113.7", 10); !ok || err != nil {
			b.Fatal(ok, err)
		}
		if err := c.Release(ctx, "203.0.113.7"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCooldownBlocked(b *testing.B) {
	ctx := context.Background()
	c := ratelimit.NewMemoryCooldown()
	if err := c.Block(ctx, "203.0.113.7", epoch.Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	keys := [2]string{"203.0.113.7", "198.51.100.9"}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Blocked(ctx, keys[i&1], epoch); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSetHeaders(b *testing.B) {
	h := http.Header{}
	r := ratelimit.Result{Limit: 20, Reset: 59 * time.Second, RetryAfter: 3 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		ratelimit.SetHeaders(h, r)
	}
}
