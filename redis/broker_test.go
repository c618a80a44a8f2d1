package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/broker/brokertest"
	"github.com/livegate/livegate/internal/poll"
	"github.com/livegate/livegate/redis"
)

// recorder is a Handler (and LossHandler) remembering what it received.
type recorder struct {
	mu     sync.Mutex
	pubs   []broker.Publication
	losses []string
}

func (r *recorder) HandlePublication(p broker.Publication) {
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
}

func (r *recorder) HandleLoss(channel string) {
	r.mu.Lock()
	r.losses = append(r.losses, channel)
	r.mu.Unlock()
}

func (r *recorder) offsets(channel string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []uint64{}
	for _, p := range r.pubs {
		if p.Channel == channel {
			out = append(out, p.Offset)
		}
	}
	return out
}

func (r *recorder) lossCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.losses)
}

func (r *recorder) last() broker.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pubs[len(r.pubs)-1]
}

// node is one Engine's Broker with a recorder as its handler.
type node struct {
	e   *redis.Engine
	b   *redis.Broker
	rec *recorder
}

func newNode(t testing.TB, addr, prefix string, opts ...func(*redis.Options)) *node {
	t.Helper()
	e := newEngine(t, addr, prefix, opts...)
	n := &node{e: e, b: e.Broker(), rec: &recorder{}}
	n.b.SetHandler(n.rec)
	return n
}

func seq(from, to uint64) []uint64 {
	out := []uint64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestBrokerTwoNodesOrder publishes concurrently from two nodes and
// checks that both receive every publication once, in offset order, and
// that offsets are gap-free across nodes.
func TestBrokerTwoNodesOrder(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a, b := newNode(t, addr, prefix), newNode(t, addr, prefix)
	ctx := context.Background()
	for _, n := range []*node{a, b} {
		if err := n.b.Subscribe(ctx, "room:1"); err != nil {
			t.Fatal(err)
		}
	}
	const publishers, each = 6, 100
	var wg sync.WaitGroup
	returned := make([][]uint64, publishers)
	for g := range publishers {
		pub := []*node{a, b}[g%2].b
		wg.Go(func() {
			for i := range each {
				pos, err := pub.Publish(ctx, "room:1", []byte(fmt.Sprintf(`"%d-%d"`, g, i)), broker.PublishOptions{HistorySize: 16})
				if err != nil {
					t.Error(err)
					return
				}
				returned[g] = append(returned[g], pos.Offset)
			}
		})
	}
	wg.Wait()
	want := seq(1, publishers*each)
	for name, n := range map[string]*node{"A": a, "B": b} {
		poll.Until(t, name+" to receive every publication", func() bool { return len(n.rec.offsets("room:1")) >= len(want) })
		if got := n.rec.offsets("room:1"); !slices.Equal(got, want) {
			t.Errorf("node %s received offsets out of order or duplicated: %v", name, got)
		}
	}
	var all []uint64
	for _, r := range returned {
		if !slices.IsSorted(r) {
			t.Errorf("one publisher saw offsets go backwards: %v", r)
		}
		all = append(all, r...)
	}
	slices.Sort(all)
	if !slices.Equal(all, want) {
		t.Error("offsets returned by Publish are not 1..N")
	}
	if a.rec.lossCount()+b.rec.lossCount() != 0 {
		t.Error("a loss was reported without any failure")
	}
	p := b.rec.last()
	if p.Channel != "room:1" || p.Epoch == "" || p.Time.IsZero() || len(p.Data) == 0 {
		t.Errorf("delivered publication lacks fields: %+v", p)
	}
}

// TestBrokerConformance runs the broker contract tests against one node
// per test, each in its own key space.
func TestBrokerConformance(t *testing.T) {
	t.Parallel()
	addr := needRedis(t)
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return newEngine(t, addr, testPrefix(t)).Broker()
	})
}

// TestBrokerRecoveryAcrossNodes: a client saw publications through node A
// and recovers the rest from node B.
func TestBrokerRecoveryAcrossNodes(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a, b := newNode(t, addr, prefix), newNode(t, addr, prefix)
	ctx := context.Background()
	if err := a.b.Subscribe(ctx, "chat:1"); err != nil {
		t.Fatal(err)
	}
	opts := broker.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}
	for i := range 7 {
		brokertest.MustPublish(t, b.b, "chat:1", fmt.Sprintf(`"m%d"`, i+1), opts)
	}
	poll.Until(t, "A to receive 7", func() bool { return len(a.rec.offsets("chat:1")) == 7 })
	last := a.rec.last()
	seen := broker.Position{Offset: last.Offset, Epoch: last.Epoch}
	for i := 7; i < 12; i++ {
		brokertest.MustPublish(t, a.b, "chat:1", fmt.Sprintf(`"m%d"`, i+1), opts)
	}
	res := brokertest.MustHistory(t, b.b, "chat:1", broker.HistoryRequest{Since: &seen})
	var data []string
	for _, p := range res.Publications {
		data = append(data, string(p.Data))
	}
	if want := []string{`"m8"`, `"m9"`, `"m10"`, `"m11"`, `"m12"`}; !res.Complete || !slices.Equal(data, want) {
		t.Fatalf("recovered %v complete %v, want %v complete", data, res.Complete, want)
	}
	if res.Position != (broker.Position{Offset: 12, Epoch: seen.Epoch}) {
		t.Fatalf("Position = %+v", res.Position)
	}
}

// TestBrokerStartedStreamAcrossNodes: the stream History starts on one
// node is the one every node sees and publishes to, so a client that took
// its position on one node before the first publication recovers from it
// on another.
func TestBrokerStartedStreamAcrossNodes(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	b := newEngine(t, addr, prefix).Broker()
	other := newEngine(t, addr, prefix).Broker()
	for i, since := range []*broker.Position{nil, {}, {Offset: 4, Epoch: "0123456789abcdef"}} {
		ch := fmt.Sprint("u:", i)
		res := brokertest.MustHistory(t, b, ch, broker.HistoryRequest{Since: since, Limit: 10})
		pos := res.Position
		if pos.Offset != 0 || pos.Epoch == "" || res.Publications != nil || res.Complete {
			t.Fatalf("History of unknown channel = %+v, want offset 0 in a new epoch, incomplete", res)
		}
		if since != nil && pos.Epoch == since.Epoch {
			t.Fatalf("new stream took the caller's epoch")
		}
		// Another node sees the same stream.
		again := brokertest.MustHistory(t, other, ch, broker.HistoryRequest{Since: &pos})
		if again.Position != pos || !again.Complete || len(again.Publications) != 0 {
			t.Fatalf("since the started position from another node = %+v, want complete at %+v", again, pos)
		}
		first := brokertest.MustPublish(t, other, ch, `1`, broker.PublishOptions{HistorySize: 10})
		if first != (broker.Position{Offset: 1, Epoch: pos.Epoch}) {
			t.Fatalf("first publish = %+v, want offset 1 in epoch %q", first, pos.Epoch)
		}
		res = brokertest.MustHistory(t, b, ch, broker.HistoryRequest{Since: &pos})
		if got := brokertest.Offsets(res.Publications); !slices.Equal(got, []uint64{1}) || !res.Complete {
			t.Fatalf("since the started position: %v complete %v", got, res.Complete)
		}
	}
}

// TestBrokerExpiry: a stream expires HistoryTTL after its last
// publication, and one History started expires after Options.HistoryTTL,
// not extended by History; the next stream has a new epoch.
func TestBrokerExpiry(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	b := newEngine(t, needRedis(t), testPrefix(t), func(o *redis.Options) { o.HistoryTTL = ttl }).Broker()
	opts := broker.PublishOptions{HistorySize: 10, HistoryTTL: ttl}
	brokertest.MustPublish(t, b, "e:1", `1`, opts)
	old := brokertest.MustPublish(t, b, "e:1", `2`, opts)
	oldSince := broker.Position{Offset: 1, Epoch: old.Epoch}
	var res broker.HistoryResult
	poll.Until(t, "the stream to expire", func() bool {
		res = brokertest.MustHistory(t, b, "e:1", broker.HistoryRequest{Since: &oldSince})
		return res.Position.Epoch != old.Epoch
	})
	restarted := res.Position
	if restarted.Offset != 0 || restarted.Epoch == "" || res.Complete || res.Publications != nil {
		t.Fatalf("after expiry: %+v, want offset 0 in a new epoch, incomplete", res)
	}
	fresh := brokertest.MustPublish(t, b, "e:1", `3`, opts)
	if fresh.Epoch != restarted.Epoch || fresh.Offset != 1 {
		// The started stream may itself have expired in between on a slow
		// machine; then it must still be a new epoch at offset 1.
		if fresh.Offset != 1 || fresh.Epoch == old.Epoch {
			t.Fatalf("first publish after expiry = %+v", fresh)
		}
	}
	for _, since := range []broker.Position{oldSince, {Offset: 0, Epoch: old.Epoch}, {}} {
		res = brokertest.MustHistory(t, b, "e:1", broker.HistoryRequest{Since: &since})
		if res.Complete || len(res.Publications) != 0 {
			t.Errorf("since %+v from before expiry: %+v, want incomplete and no publications", since, res)
		}
	}

	// A stream started by History, read again and again, still expires.
	start := brokertest.MustHistory(t, b, "q:1", broker.HistoryRequest{}).Position
	poll.Until(t, "the started stream to expire", func() bool {
		return brokertest.MustHistory(t, b, "q:1", broker.HistoryRequest{Since: &start}).Position.Epoch != start.Epoch
	})
}

// TestBrokerFlushAll: losing every key mid-stream starts a new epoch, and
// a subscribed node reports the loss.
func TestBrokerFlushAll(t *testing.T) {
	t.Parallel()
	srv := privateServer(t)
	prefix := testPrefix(t)
	a, b := newNode(t, srv.addr(), prefix), newNode(t, srv.addr(), prefix)
	ctx := context.Background()
	if err := b.b.Subscribe(ctx, "f:1"); err != nil {
		t.Fatal(err)
	}
	opts := broker.PublishOptions{HistorySize: 10}
	var before broker.Position
	for i := range 3 {
		before = brokertest.MustPublish(t, a.b, "f:1", fmt.Sprint(i), opts)
	}
	poll.Until(t, "B to receive 3", func() bool { return len(b.rec.offsets("f:1")) == 3 })
	if err := rawClient(t, srv.addr()).FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	after := brokertest.MustPublish(t, a.b, "f:1", `"after"`, opts)
	if after.Epoch == before.Epoch || after.Offset != 1 {
		t.Fatalf("publish after FLUSHALL = %+v, want offset 1 in a new epoch (old %+v)", after, before)
	}
	poll.Until(t, "B to report the loss", func() bool { return b.rec.lossCount() > 0 })
	poll.Until(t, "B to receive the new publication", func() bool { return b.rec.last().Epoch == after.Epoch })
	res := brokertest.MustHistory(t, b.b, "f:1", broker.HistoryRequest{Since: &before})
	if res.Complete || len(res.Publications) != 0 || res.Position != after {
		t.Fatalf("recovery from before FLUSHALL = %+v, want incomplete at %+v", res, after)
	}
}

// TestBrokerReconnectFillsGap: publications made while a node's pub/sub
// connection was down are delivered from history, in order, once it is
// back; when history no longer holds them the node reports the loss.
func TestBrokerReconnectFillsGap(t *testing.T) {
	t.Parallel()
	srv := privateServer(t)
	prefix := testPrefix(t)
	a, b := newNode(t, srv.addr(), prefix), newNode(t, srv.addr(), prefix)
	ctx := context.Background()
	for _, ch := range []string{"g:kept", "g:trimmed"} {
		if err := b.b.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		brokertest.MustPublish(t, a.b, ch, `0`, broker.PublishOptions{HistorySize: 100})
	}
	poll.Until(t, "B to receive the first publications", func() bool {
		return len(b.rec.offsets("g:kept")) == 1 && len(b.rec.offsets("g:trimmed")) == 1
	})
	// Hold B's reconnect until the publications are made.
	gate := make(chan struct{})
	b.b.SetSessionHook(func() { <-gate })
	connects := b.b.Connects()
	raw := rawClient(t, srv.addr())
	if err := raw.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		brokertest.MustPublish(t, a.b, "g:kept", fmt.Sprint(i+1), broker.PublishOptions{HistorySize: 100})
		brokertest.MustPublish(t, a.b, "g:trimmed", fmt.Sprint(i+1), broker.PublishOptions{HistorySize: 2})
	}
	close(gate)
	poll.Until(t, "B to reconnect", func() bool { return b.b.Connects() > connects })
	poll.Until(t, "B to catch up", func() bool { return len(b.rec.offsets("g:kept")) >= 6 })
	brokertest.MustPublish(t, a.b, "g:kept", `6`, broker.PublishOptions{HistorySize: 100})
	brokertest.MustPublish(t, a.b, "g:trimmed", `6`, broker.PublishOptions{HistorySize: 2})
	poll.Until(t, "B to receive the next publications", func() bool {
		return len(b.rec.offsets("g:kept")) >= 7 && slices.Contains(b.rec.offsets("g:trimmed"), 7)
	})
	if got := b.rec.offsets("g:kept"); !slices.Equal(got, seq(1, 7)) {
		t.Errorf("g:kept delivered %v, want 1..7 in order", got)
	}
	b.rec.mu.Lock()
	losses := slices.Clone(b.rec.losses)
	b.rec.mu.Unlock()
	if !slices.Equal(losses, []string{"g:trimmed"}) {
		t.Errorf("losses = %v, want only g:trimmed", losses)
	}
	if got := b.rec.offsets("g:trimmed"); !slices.IsSorted(got) || got[0] != 1 || got[len(got)-1] != 7 {
		t.Errorf("g:trimmed delivered %v, want increasing from 1 to 7", got)
	}
}

func TestBrokerControl(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a, b := newNode(t, addr, prefix), newNode(t, addr, prefix)
	other := newNode(t, addr, testPrefix(t)) // another deployment
	got := make(chan string, 10)
	for name, n := range map[string]*node{"A": a, "B": b, "other": other} {
		n.b.SetControlHandler(func(msg []byte) { got <- name + " " + string(msg) })
	}
	ctx := context.Background()
	// The pub/sub connections subscribe to the control topic on their
	// own; wait until they did.
	for _, n := range []*node{a, b, other} {
		poll.Until(t, "control subscription", func() bool { return n.b.Connects() > 0 })
	}
	if err := a.b.PublishControl(ctx, []byte(`{"node":"a","type":"revoke_user"}`)); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for range 2 {
		select {
		case m := <-got:
			msgs = append(msgs, m)
		case <-time.After(20 * time.Second):
			t.Fatal("control message not delivered")
		}
	}
	slices.Sort(msgs)
	want := []string{`A {"node":"a","type":"revoke_user"}`, `B {"node":"a","type":"revoke_user"}`}
	if !slices.Equal(msgs, want) {
		t.Fatalf("control messages %v, want %v", msgs, want)
	}
	select {
	case m := <-got:
		t.Fatalf("unexpected control message %q", m)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestBrokerPresence(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a := newEngine(t, addr, prefix, func(o *redis.Options) { o.NodeID = "node-a" }).Broker()
	b := newEngine(t, addr, prefix, func(o *redis.Options) { o.NodeID = "node-b" }).Broker()
	ctx := context.Background()
	const long, short = time.Minute, 300 * time.Millisecond
	if err := a.AddPresence(ctx, "p:1", broker.ClientInfo{ConnID: "c1", User: "alice", Info: []byte(`{"x":1}`)}, long); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPresence(ctx, "p:1", broker.ClientInfo{ConnID: "c2", User: "bob"}, short); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPresence(ctx, "p:other", broker.ClientInfo{ConnID: "c3", User: "carol"}, long); err != nil {
		t.Fatal(err)
	}
	users := func(from *redis.Broker) []string {
		t.Helper()
		list, err := from.Presence(ctx, "p:1")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list {
			out = append(out, c.User+"@"+c.Node+"/"+c.ConnID+string(c.Info))
		}
		slices.Sort(out)
		return out
	}
	if got := users(a); len(got) == 2 {
		if want := []string{`alice@node-a/c1{"x":1}`, "bob@node-b/c2"}; !slices.Equal(got, want) {
			t.Fatalf("presence = %v, want %v", got, want)
		}
	} else if !slices.Equal(got, []string{`alice@node-a/c1{"x":1}`}) {
		// bob may already have expired on a slow machine, never alice.
		t.Fatalf("presence = %v", got)
	}
	// B stops refreshing: its entry disappears, A's stays.
	poll.Until(t, "B's entry to expire", func() bool { return len(users(a)) == 1 })
	if got := users(b); !slices.Equal(got, []string{`alice@node-a/c1{"x":1}`}) {
		t.Fatalf("presence after B's ttl = %v", got)
	}
	if err := b.RemovePresence(ctx, "p:1", "c1"); err != nil {
		t.Fatal(err)
	}
	if got := users(a); len(got) != 0 {
		t.Fatalf("presence after remove = %v", got)
	}
	if err := a.AddPresence(ctx, "p:1", broker.ClientInfo{User: "x"}, long); err == nil {
		t.Error("AddPresence without a connection id succeeded")
	}
}

func TestEngineClose(t *testing.T) {
	t.Parallel()
	e := newEngine(t, needRedis(t), testPrefix(t))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Broker().Publish(ctx, "c", nil, broker.PublishOptions{}); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
	if err := e.Ping(ctx); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Ping after Close = %v", err)
	}
	if err := e.ReplayStore().Consume(ctx, "j", time.Now().Add(time.Minute)); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Consume after Close = %v", err)
	}
	if err := e.Close(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}

func TestNewUnreachable(t *testing.T) {
	t.Parallel()
	_, err := redis.New(context.Background(), redis.Options{Addr: "127.0.0.1:1", DialTimeout: 500 * time.Millisecond})
	if !errors.Is(err, redis.ErrUnavailable) {
		t.Fatalf("New against a closed port = %v, want ErrUnavailable", err)
	}
	if _, err := redis.New(context.Background(), redis.Options{}); err == nil {
		t.Fatal("New without Addr succeeded")
	}
}
