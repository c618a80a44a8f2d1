package livegate

import (
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/metrics"
)

// gathered returns the metric family name of m's registry.
func gathered(t testing.TB, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// counterValue returns the value of name's series whose labels include
// label=value ("" for an unlabelled counter).
func counterValue(t testing.TB, m *metrics.Metrics, name, label, value string) float64 {
	t.Helper()
	for _, s := range gathered(t, m, name).GetMetric() {
		if label == "" {
			return s.GetCounter().GetValue()
		}
		for _, l := range s.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return s.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

// TestFanoutMetrics checks what HandlePublication records: the frames
// queued, one latency observation per publication measured from
// Publication.Time on the gateway's clock, and a frame dropped by a full
// queue.
func TestFanoutMetrics(t *testing.T) {
	m := metrics.New()
	now := time.Now() // frozen: tokens are signed on the real clock
	g := newBenchGateway(t, func(c *Config) {
		c.Metrics = m
		c.Now = func() time.Time { return now }
		c.SendQueueMessages = 1
	})
	const channel = "room:m"
	a, b := newBenchConn(t, g, "a"), newBenchConn(t, g, "b")
	benchSubscribe(t, a, channel)
	benchSubscribe(t, b, channel)
	pub := broker.Publication{Channel: channel, Offset: 1, Epoch: "e", Data: []byte(`1`), Time: now.Add(-5 * time.Millisecond)}
	g.hub.HandlePublication(pub)
	if got := counterValue(t, m, "livegate_messages_delivered_total", "", ""); got != 2 {
		t.Fatalf("delivered %v, want 2", got)
	}
	h := gathered(t, m, "livegate_delivery_latency_seconds").GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 0.005 {
		t.Fatalf("latency: %d samples, sum %v; want 1 of 0.005", h.GetSampleCount(), h.GetSampleSum())
	}
	// b drains, a does not: its one-frame queue is full.
	b.queue.Drain()
	pub.Offset++
	g.hub.HandlePublication(pub)
	if got := counterValue(t, m, "livegate_messages_delivered_total", "", ""); got != 3 {
		t.Fatalf("delivered %v, want 3", got)
	}
	if got := counterValue(t, m, "livegate_messages_dropped_total", "reason", metrics.DropQueueFull); got != 1 {
		t.Fatalf("dropped %v, want 1", got)
	}
	// Publications without a Time are not observed.
	pub.Offset++
	pub.Time = time.Time{}
	g.hub.HandlePublication(pub)
	if n := gathered(t, m, "livegate_delivery_latency_seconds").GetMetric()[0].GetHistogram().GetSampleCount(); n != 2 {
		t.Fatalf("%d latency samples, want 2", n)
	}
}

// BenchmarkFanoutMetrics is BenchmarkFanout with metrics on: the frame
// count and latency observation add no allocation.
func BenchmarkFanoutMetrics(b *testing.B) {
	for _, n := range []int{1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			g := newBenchGateway(b, func(c *Config) { c.Metrics = metrics.New() })
			const channel = "room:fanout"
			conns := benchFanoutConns(b, g, channel, n)
			pub := broker.Publication{Channel: channel, Epoch: "bench", Data: []byte(`{"text":"hello"}`), Time: time.Now()}
			for range 2 {
				pub.Offset++
				g.hub.HandlePublication(pub)
				if _, err := benchDrainOne(conns); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				pub.Offset++
				g.hub.HandlePublication(pub)
				for _, c := range conns {
					if frames, ok := c.queue.Drain(); !ok || len(frames) != 1 {
						b.Fatalf("got %d frames", len(frames))
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkEventPipelineMetrics is BenchmarkEventPipeline with metrics on:
// counting the command adds no allocation.
func BenchmarkEventPipelineMetrics(b *testing.B) {
	for _, v := range benchRateVariants {
		b.Run(v.name, func(b *testing.B) {
			c := newBenchEventConn(b, func(cfg *Config) {
				v.mutate(cfg)
				cfg.Metrics = metrics.New()
			})
			b.ReportAllocs()
			for b.Loop() {
				if benchPipelineOnce(c) == nil {
					b.Fatal("pipeline failed")
				}
			}
		})
	}
}
