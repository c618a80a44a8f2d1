package broker_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/livegate/livegate/broker"
)

var _ broker.Presence = (*broker.MemoryPresence)(nil)

func TestMemoryPresenceExpiry(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := broker.NewMemoryPresence(clk.Now)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.AddPresence(ctx, "room:a", broker.ClientInfo{ConnID: "c1", User: "alice"}, 30*time.Second))
	must(p.AddPresence(ctx, "room:a", broker.ClientInfo{ConnID: "c2", User: "bob"}, 30*time.Second))
	must(p.AddPresence(ctx, "room:b", broker.ClientInfo{ConnID: "c3", User: "carol"}, 30*time.Second))
	conns := func(ch string) []string {
		got, err := p.Presence(ctx, ch)
		must(err)
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ConnID)
		}
		sort.Strings(ids)
		return ids
	}
	if got := fmt.Sprint(conns("room:a")); got != "[c1 c2]" {
		t.Fatalf("room:a = %s", got)
	}
	clk.Advance(20 * time.Second)
	must(p.AddPresence(ctx, "room:a", broker.ClientInfo{ConnID: "c1", User: "alice"}, 30*time.Second)) // refresh
	clk.Advance(15 * time.Second)
	if got := fmt.Sprint(conns("room:a")); got != "[c1]" {
		t.Fatalf("after expiry room:a = %s, want only the refreshed c1", got)
	}
	if got := conns("room:b"); len(got) != 0 {
		t.Fatalf("room:b = %v, want expired", got)
	}
	if n := p.Sweep(); n != 2 {
		t.Fatalf("Sweep = %d, want 2", n)
	}
	if p.Len() != 1 {
		t.Fatalf("Len = %d after sweep", p.Len())
	}
	must(p.RemovePresence(ctx, "room:a", "c1"))
	must(p.RemovePresence(ctx, "room:zzz", "c1"))
	if p.Len() != 0 || len(conns("room:a")) != 0 {
		t.Fatal("entry left after RemovePresence")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.AddPresence(cctx, "room:a", broker.ClientInfo{ConnID: "c9"}, time.Second); err == nil {
		t.Fatal("AddPresence with a cancelled context succeeded")
	}
}

func ExampleMemoryPresence() {
	p := broker.NewMemoryPresence(nil)
	ctx := context.Background()
	_ = p.AddPresence(ctx, "room:lobby", broker.ClientInfo{ConnID: "n1-1", User: "alice"}, 30*time.Second)
	clients, _ := p.Presence(ctx, "room:lobby")
	for _, c := range clients {
		fmt.Println(c.User, c.ConnID)
	}
	// Output: alice n1-1
}
