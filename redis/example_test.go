package redis_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/redis"
)

// Connect an Engine and use its shared stores. The address comes from
// LIVEGATE_REDIS_ADDR here; a real deployment reads it from its
// configuration and passes Broker, ReplayStore, Revocations and
// LimitStore to the gateway's Config.
func ExampleNew() {
	ctx := context.Background()
	e, err := redis.New(ctx, redis.Options{
		Addr:      os.Getenv("LIVEGATE_REDIS_ADDR"),
		KeyPrefix: "example-new:",
		NodeID:    "node-1",
	})
	if err != nil {
		fmt.Println("redis unreachable:", err)
		return
	}
	defer e.Close()

	jti := fmt.Sprint("token-", time.Now().UnixNano())
	exp := time.Now().Add(time.Minute)
	fmt.Println("first use:", e.ReplayStore().Consume(ctx, jti, exp))
	fmt.Println("second use:", e.ReplayStore().Consume(ctx, jti, exp))
	fmt.Println("ping:", e.Ping(ctx))
	// Output:
	// first use: <nil>
	// second use: auth: token already used
	// ping: <nil>
}

// Two Engines are two gateway nodes: a publication made through one is
// delivered to the other, and both see the same history.
func ExampleEngine_Broker() {
	ctx := context.Background()
	opts := redis.Options{
		Addr:      os.Getenv("LIVEGATE_REDIS_ADDR"),
		KeyPrefix: fmt.Sprint("example-broker-", time.Now().UnixNano(), ":"),
	}
	nodeA, err := redis.New(ctx, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nodeA.Close()
	nodeB, err := redis.New(ctx, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nodeB.Close()

	got := make(chan broker.Publication, 1)
	nodeB.Broker().SetHandler(broker.HandlerFunc(func(p broker.Publication) { got <- p }))
	if err := nodeB.Broker().Subscribe(ctx, "news:1"); err != nil {
		fmt.Println(err)
		return
	}
	pos, err := nodeA.Broker().Publish(ctx, "news:1", []byte(`{"title":"hello"}`), broker.PublishOptions{HistorySize: 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	p := <-got
	fmt.Printf("node B received offset %d: %s\n", p.Offset, p.Data)

	hist, err := nodeB.Broker().History(ctx, "news:1", broker.HistoryRequest{Since: &broker.Position{Epoch: pos.Epoch}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("history:", len(hist.Publications), "publication(s), complete:", hist.Complete)
	// Output:
	// node B received offset 1: {"title":"hello"}
	// history: 1 publication(s), complete: true
}
