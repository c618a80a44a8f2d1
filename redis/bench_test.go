package redis_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate/broker"
)

// latencyHandler records publish→deliver latency from Publication.Time
// (stamped by the publishing node, same process here).
type latencyHandler struct {
	mu    sync.Mutex
	lat   []time.Duration
	count atomic.Int64
}

func (h *latencyHandler) HandlePublication(p broker.Publication) {
	d := time.Since(p.Time)
	h.mu.Lock()
	h.lat = append(h.lat, d)
	h.mu.Unlock()
	h.count.Add(1)
}

func (h *latencyHandler) report(b *testing.B, elapsed time.Duration) {
	h.mu.Lock()
	lat := slices.Clone(h.lat)
	h.mu.Unlock()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFanoutRedis publishes from 8 goroutines and measures
// publish→deliver latency and deliveries per second: through Redis with
// two Broker instances (publishing on one, delivering on the other), and
// through the memory broker for comparison.
func BenchmarkFanoutRedis(b *testing.B) {
	const publishers = 8
	run := func(b *testing.B, pub, sub broker.Broker, h *latencyHandler) {
		ctx := context.Background()
		if err := sub.Subscribe(ctx, "bench:1"); err != nil {
			b.Fatal(err)
		}
		data := []byte(`{"price":123.45,"symbol":"LVG"}`)
		var next atomic.Int64
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range publishers {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					if _, err := pub.Publish(ctx, "bench:1", data, broker.PublishOptions{HistorySize: 100}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		deadline := time.Now().Add(30 * time.Second)
		for h.count.Load() < int64(b.N) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		h.report(b, elapsed)
	}
	b.Run("memory", func(b *testing.B) {
		m := broker.NewMemory(broker.MemoryConfig{})
		defer m.Close()
		h := &latencyHandler{}
		m.SetHandler(h)
		run(b, m, m, h)
	})
	b.Run("redis-2-nodes", func(b *testing.B) {
		addr, prefix := needRedis(b), testPrefix(b)
		pub := newEngine(b, addr, prefix).Broker()
		sub := newEngine(b, addr, prefix).Broker()
		h := &latencyHandler{}
		sub.SetHandler(h)
		run(b, pub, sub, h)
	})
}
