package broker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/livegate/livegate/broker"
)

func ExampleMemoryBroker() {
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	b.SetHandler(broker.HandlerFunc(func(p broker.Publication) {
		fmt.Printf("deliver %s #%d %s\n", p.Channel, p.Offset, p.Data)
	}))

	ctx := context.Background()
	if err := b.Subscribe(ctx, "chat:lobby"); err != nil {
		fmt.Println(err)
		return
	}
	opts := broker.PublishOptions{HistorySize: 100, HistoryTTL: 10 * time.Minute}
	seen, _ := b.Publish(ctx, "chat:lobby", []byte(`"hello"`), opts)

	// A client that saw offset 1 disconnects and misses two publications.
	_ = b.Unsubscribe(ctx, "chat:lobby")
	_, _ = b.Publish(ctx, "chat:lobby", []byte(`"are you there?"`), opts)
	_, _ = b.Publish(ctx, "chat:lobby", []byte(`"bye"`), opts)

	// On reconnect it recovers from its last position.
	res, err := b.History(ctx, "chat:lobby", broker.HistoryRequest{Since: &seen})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range res.Publications {
		fmt.Printf("recover #%d %s\n", p.Offset, p.Data)
	}
	fmt.Println("complete:", res.Complete, "offset:", res.Position.Offset)
	// Output:
	// deliver chat:lobby #1 "hello"
	// recover #2 "are you there?"
	// recover #3 "bye"
	// complete: true offset: 3
}

func ExampleMemoryBroker_Sweep() {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	b := broker.NewMemory(broker.MemoryConfig{Now: func() time.Time { return now }})
	defer b.Close()

	ctx := context.Background()
	old, _ := b.Publish(ctx, "news:today", []byte(`1`), broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Minute})

	now = now.Add(time.Minute) // the history TTL passes
	fmt.Println("dropped:", b.Sweep())

	// The stream restarts in a new epoch, so the old position cannot recover.
	pos, _ := b.Publish(ctx, "news:today", []byte(`2`), broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Minute})
	res, _ := b.History(ctx, "news:today", broker.HistoryRequest{Since: &old})
	fmt.Println("offset:", pos.Offset, "new epoch:", pos.Epoch != old.Epoch, "complete:", res.Complete)
	// Output:
	// dropped: 1
	// offset: 1 new epoch: true complete: false
}
