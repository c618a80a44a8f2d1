package broker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/livegate/livegate/broker"
)

func BenchmarkMemoryPublish(b *testing.B) {
	cases := []struct {
		name      string
		opts      broker.PublishOptions
		subscribe bool
	}{
		{name: "history=0", opts: broker.PublishOptions{}},
		{name: "history=100", opts: broker.PublishOptions{HistorySize: 100}},
		{name: "history=100/subscribed", opts: broker.PublishOptions{HistorySize: 100}, subscribe: true},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			m := broker.NewMemory(broker.MemoryConfig{})
			defer m.Close()
			m.SetHandler(broker.HandlerFunc(func(broker.Publication) {}))
			ctx := context.Background()
			if bc.subscribe {
				if err := m.Subscribe(ctx, "bench:1"); err != nil {
					b.Fatal(err)
				}
			}
			data := []byte(`{"text":"hello"}`)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Publish(ctx, "bench:1", data, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMemoryPublishParallel(b *testing.B) {
	cases := []struct {
		name     string
		channels int
	}{
		{name: "one channel", channels: 1},
		{name: "channel per goroutine", channels: 0},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			m := broker.NewMemory(broker.MemoryConfig{})
			defer m.Close()
			ctx := context.Background()
			data := []byte(`{"text":"hello"}`)
			opts := broker.PublishOptions{HistorySize: 100}
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				id := next.Add(1)
				if bc.channels == 1 {
					id = 0
				}
				ch := fmt.Sprintf("bench:%d", id)
				for pb.Next() {
					if _, err := m.Publish(ctx, ch, data, opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkMemoryHistory(b *testing.B) {
	m := broker.NewMemory(broker.MemoryConfig{})
	defer m.Close()
	ctx := context.Background()
	var pos broker.Position
	for range 100 {
		pos, _ = m.Publish(ctx, "bench:1", []byte(`1`), broker.PublishOptions{HistorySize: 100})
	}
	since := broker.Position{Offset: pos.Offset - 10, Epoch: pos.Epoch}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.History(ctx, "bench:1", broker.HistoryRequest{Since: &since}); err != nil {
			b.Fatal(err)
		}
	}
}
