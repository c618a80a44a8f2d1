package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/policy"
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

// BenchmarkGatewayFanoutRedis measures publish→deliver latency and
// deliveries per second through whole gateways, to 100 real WebSocket
// subscribers: publishing on node A and delivering on node B through
// Redis, and, in the same run, publishing and delivering on one node with
// the in-memory broker. Latency runs from just before Gateway.Publish to
// the subscriber's decoding of the push. "paced" publishes the next
// publication only when every subscriber has the previous one (latency
// without queueing); "saturated" keeps up to 200 publications in flight
// (throughput; latency then includes the queues).
func BenchmarkGatewayFanoutRedis(b *testing.B) {
	const (
		subscribers = 100
		channel     = "room:bench"
	)
	run := func(b *testing.B, pub, sub *gwNode, window int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var (
			delivered atomic.Int64
			mu        sync.Mutex
			lat       []time.Duration
			wg        sync.WaitGroup
		)
		for i := range subscribers {
			c, err := rawConnect(ctx, sub.url, fmt.Sprint("sub-", i))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.subscribe(ctx, channel, nil); err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				defer c.ws.CloseNow()
				var local []time.Duration
				for {
					_, msg, err := c.ws.Read(ctx)
					if err != nil {
						break
					}
					now := time.Now()
					var f struct {
						Push *struct {
							Data struct {
								T int64 `json:"t"`
							} `json:"data"`
						} `json:"push"`
					}
					if json.Unmarshal(msg, &f) != nil || f.Push == nil || f.Push.Data.T == 0 {
						continue
					}
					local = append(local, now.Sub(time.Unix(0, f.Push.Data.T)))
					delivered.Add(1)
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
		}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			for delivered.Load() < int64(i-window+1)*subscribers {
				time.Sleep(20 * time.Microsecond)
			}
			if _, err := pub.gw.Publish(ctx, channel, map[string]int64{"t": time.Now().UnixNano()}); err != nil {
				b.Fatal(err)
			}
		}
		want := int64(b.N) * subscribers
		deadline := time.Now().Add(60 * time.Second)
		for delivered.Load() < want && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		if got := delivered.Load(); got != want {
			b.Fatalf("delivered %d of %d pushes", got, want)
		}
		cancel()
		wg.Wait()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
		b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(0, "ns/op")
	}
	ns := []policy.NamespaceConfig{{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: 100}}
	for _, mode := range []struct {
		name   string
		window int
	}{{"paced", 1}, {"saturated", 200}} {
		b.Run("memory-1-node/"+mode.name, func(b *testing.B) {
			n := startNode(b, livegate.Config{TokenHMACSecret: gwSecret, Limits: noLimits(), Namespaces: ns})
			run(b, n, n, mode.window)
		})
		b.Run("redis-2-nodes/"+mode.name, func(b *testing.B) {
			nodes := newClusterWith(b, 2, clusterConfig{limits: noLimits(),
				configure: func(_ int, c *livegate.Config) { c.Namespaces = ns }})
			run(b, nodes[0], nodes[1], mode.window)
		})
	}
}
