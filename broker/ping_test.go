package broker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/livegate/livegate/broker"
)

func TestMemoryPingFailsAfterClose(t *testing.T) {
	t.Parallel()
	b := broker.NewMemory(broker.MemoryConfig{})
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
}
