package livegate_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
)

// testCluster is an in-process transport shared by several gateways: one
// real MemoryBroker keeps the streams, and publications and control
// messages are fanned out to every node as a multi-node broker would. It
// stands in for the network between nodes only.
type testCluster struct {
	mem   *broker.MemoryBroker
	mu    sync.Mutex
	nodes []*clusterNode
	// failControl makes PublishControl fail, as when the broker is down.
	failControl bool
}

type clusterNode struct {
	cl      *testCluster
	mu      sync.Mutex
	handler broker.Handler
	control func([]byte)
	subs    map[string]bool
}

func newTestCluster(t *testing.T, now func() time.Time) *testCluster {
	cl := &testCluster{mem: broker.NewMemory(broker.MemoryConfig{Now: now})}
	cl.mem.SetHandler(broker.HandlerFunc(cl.deliver))
	t.Cleanup(func() { _ = cl.mem.Close() })
	return cl
}

func (cl *testCluster) node() *clusterNode {
	n := &clusterNode{cl: cl, subs: make(map[string]bool)}
	cl.mu.Lock()
	cl.nodes = append(cl.nodes, n)
	cl.mu.Unlock()
	return n
}

func (cl *testCluster) each(fn func(n *clusterNode)) {
	cl.mu.Lock()
	nodes := append([]*clusterNode(nil), cl.nodes...)
	cl.mu.Unlock()
	for _, n := range nodes {
		fn(n)
	}
}

func (cl *testCluster) deliver(p broker.Publication) {
	cl.each(func(n *clusterNode) {
		n.mu.Lock()
		h, ok := n.handler, n.subs[p.Channel]
		n.mu.Unlock()
		if ok {
			h.HandlePublication(p)
		}
	})
}

// lose tells every node subscribed to channel that publications were lost.
func (cl *testCluster) lose(channel string) {
	cl.each(func(n *clusterNode) {
		n.mu.Lock()
		h, ok := n.handler, n.subs[channel]
		n.mu.Unlock()
		if lh, isLH := h.(broker.LossHandler); ok && isLH {
			lh.HandleLoss(channel)
		}
	})
}

func (n *clusterNode) SetHandler(h broker.Handler) { n.mu.Lock(); n.handler = h; n.mu.Unlock() }
func (n *clusterNode) Publish(ctx context.Context, ch string, data []byte, o broker.PublishOptions) (broker.Position, error) {
	return n.cl.mem.Publish(ctx, ch, data, o)
}
func (n *clusterNode) Subscribe(ctx context.Context, ch string) error {
	n.mu.Lock()
	n.subs[ch] = true
	n.mu.Unlock()
	return n.cl.mem.Subscribe(ctx, ch)
}
func (n *clusterNode) Unsubscribe(ctx context.Context, ch string) error {
	n.mu.Lock()
	delete(n.subs, ch)
	n.mu.Unlock()
	return nil // the shared broker stays subscribed for the other nodes
}
func (n *clusterNode) History(ctx context.Context, ch string, r broker.HistoryRequest) (broker.HistoryResult, error) {
	return n.cl.mem.History(ctx, ch, r)
}
func (n *clusterNode) Close() error { return nil }
func (n *clusterNode) SetControlHandler(h func([]byte)) {
	n.mu.Lock()
	n.control = h
	n.mu.Unlock()
}
func (n *clusterNode) PublishControl(_ context.Context, msg []byte) error {
	n.cl.mu.Lock()
	fail := n.cl.failControl
	n.cl.mu.Unlock()
	if fail {
		return errors.New("connection refused")
	}
	n.cl.each(func(o *clusterNode) {
		o.mu.Lock()
		h := o.control
		o.mu.Unlock()
		if h != nil {
			h(append([]byte(nil), msg...))
		}
	})
	return nil
}

var _ broker.Control = (*clusterNode)(nil)

// twoNodes starts two gateways sharing a cluster and a presence store.
func twoNodes(t *testing.T, mutate func(*livegate.Config)) (*testCluster, *env, *env) {
	cl := newTestCluster(t, nil)
	presence := broker.NewMemoryPresence(nil)
	mk := func(id string) *env {
		return newEnv(t, func(c *livegate.Config) {
			c.Broker = cl.node()
			c.NodeID = id
			c.Presence = presence
			if mutate != nil {
				mutate(c)
			}
		})
	}
	return cl, mk("node-a"), mk("node-b")
}

func TestClusterRevocationClosesOtherNode(t *testing.T) {
	t.Parallel()
	_, a, b := twoNodes(t, nil)
	aliceB := b.connect(t, "alice")
	bobB := b.connect(t, "bob")
	n, err := a.gw.RevokeUser(context.Background(), "alice")
	if err != nil || n != 0 {
		t.Fatalf("RevokeUser on A = %d, %v", n, err)
	}
	aliceB.expectClose(protocol.CloseForbidden)
	// Bob, another user on B, is untouched.
	bobB.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:x"})
	if r := bobB.reply(2); r.Error != nil {
		t.Fatalf("bob: %+v", r.Error)
	}
}

func TestClusterSessionAndTokenRevocation(t *testing.T) {
	t.Parallel()
	_, a, b := twoNodes(t, nil)
	tok := func(user, sid, jti string) string {
		s, _, err := b.signer.Sign(auth.Identity{User: user, Session: sid, TokenID: jti}, auth.KindConnect, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	conn := func(token string) *rawConn {
		c := b.dial(t)
		c.sendCmd(1, "connect", protocol.ConnectParams{Token: token})
		if r := c.reply(1); r.Error != nil {
			t.Fatal(r.Error)
		}
		return c
	}
	s1, s2 := conn(tok("carol", "sess-1", "")), conn(tok("carol", "sess-2", "jti-2"))
	if _, err := a.gw.RevokeSession(context.Background(), "sess-1"); err != nil {
		t.Fatal(err)
	}
	s1.expectClose(protocol.CloseForbidden)
	if _, err := a.gw.RevokeToken(context.Background(), "jti-2"); err != nil {
		t.Fatal(err)
	}
	s2.expectClose(protocol.CloseForbidden)
}

func TestDisconnectFilter(t *testing.T) {
	t.Parallel()
	_, a, b := twoNodes(t, nil)
	sign := func(user, sid string) string {
		s, _, err := a.signer.Sign(auth.Identity{User: user, Session: sid}, auth.KindConnect, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	open := func(e *env, user, sid string) *rawConn {
		c := e.dial(t)
		c.sendCmd(1, "connect", protocol.ConnectParams{Token: sign(user, sid)})
		if r := c.reply(1); r.Error != nil {
			t.Fatal(r.Error)
		}
		return c
	}
	aliceS1A := open(a, "alice", "s1")
	aliceS1B := open(b, "alice", "s1")
	aliceS2A := open(a, "alice", "s2")
	bobS1A := open(a, "bob", "s1") // same session id, other user
	if _, err := a.gw.Disconnect(context.Background(), livegate.DisconnectFilter{}); !errors.Is(err, livegate.ErrEmptyFilter) {
		t.Fatalf("empty filter: %v", err)
	}
	n, err := a.gw.Disconnect(context.Background(), livegate.DisconnectFilter{User: "alice", Session: "s1"})
	if err != nil || n != 1 {
		t.Fatalf("Disconnect = %d, %v; want 1 local", n, err)
	}
	aliceS1A.expectClose(protocol.CloseForbidden)
	aliceS1B.expectClose(protocol.CloseForbidden)
	for _, c := range []*rawConn{aliceS2A, bobS1A} {
		c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:x"})
		if r := c.reply(2); r.Error != nil {
			t.Fatalf("non-matching connection affected: %+v", r.Error)
		}
	}
	// Disconnect records nothing: alice may connect again in session s1.
	open(a, "alice", "s1")
}

func TestClusterControlFailures(t *testing.T) {
	t.Parallel()
	cl, a, b := twoNodes(t, nil)
	c := a.connect(t, "alice")
	cl.mu.Lock()
	cl.failControl = true
	cl.mu.Unlock()
	n, err := a.gw.RevokeUser(context.Background(), "alice")
	if n != 1 || !errors.Is(err, livegate.ErrBrokerUnavailable) {
		t.Fatalf("RevokeUser with control down = %d, %v", n, err)
	}
	c.expectClose(protocol.CloseForbidden) // still closed locally
	cl.mu.Lock()
	cl.failControl = false
	cl.mu.Unlock()
	// Malformed control messages are ignored without harm.
	bob := b.connect(t, "bob")
	node := &clusterNode{cl: cl}
	for _, m := range []string{`not json`, `{"type":"revoke_user","user":"bob"}`, `{"node":"x","type":"bogus"}`,
		`{"node":"x","type":"disconnect"}`, `{"node":"x","type":"revoke_user","user":"bob","session":"s"}`, `[]`} {
		if err := node.PublishControl(context.Background(), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// A node ignores messages carrying its own node id.
	_ = node.PublishControl(context.Background(), []byte(`{"node":"node-b","type":"revoke_user","user":"bob"}`))
	bob.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:x"})
	if r := bob.reply(2); r.Error != nil {
		t.Fatalf("bob affected by ignored control messages: %+v", r.Error)
	}
}

// A publish while the broker is failing returns ErrBrokerUnavailable to
// the server and a generic "unavailable" to a publishing client.
func TestPublishBrokerUnavailable(t *testing.T) {
	t.Parallel()
	mem := broker.NewMemory(broker.MemoryConfig{})
	e := newEnv(t, func(c *livegate.Config) { c.Broker = mem })
	c := e.connect(t, "alice")
	_ = mem.Close()
	if _, err := e.gw.Publish(context.Background(), "chat:x", 1); !errors.Is(err, livegate.ErrBrokerUnavailable) {
		t.Fatalf("Publish = %v", err)
	}
	c.sendCmd(2, "publish", protocol.PublishParams{Channel: "chat:x", Data: []byte(`1`)})
	if r := c.reply(2); r.Error == nil || r.Error.Code != protocol.CodeUnavailable || r.Error.Detail != "" {
		t.Fatalf("client publish = %+v", r.Error)
	}
}

// failingStore is a limit store whose back end is down.
type failingStore struct{}

var errStoreDown = errors.New("store down")

type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, time.Time) (ratelimit.Result, error) {
	return ratelimit.Result{}, errStoreDown
}

type failingCounter struct{}

func (failingCounter) Acquire(context.Context, string, int) (bool, error) { return false, errStoreDown }
func (failingCounter) Release(context.Context, string) error              { return errStoreDown }

type failingCooldown struct{}

func (failingCooldown) Block(context.Context, string, time.Time) error { return errStoreDown }
func (failingCooldown) Blocked(context.Context, string, time.Time) (time.Duration, bool, error) {
	return 0, false, errStoreDown
}

func (failingStore) NewLimiter(string, ratelimit.Rule) (ratelimit.Limiter, error) {
	return failingLimiter{}, nil
}
func (failingStore) NewCounter(string) ratelimit.Counter   { return failingCounter{} }
func (failingStore) NewCooldown(string) ratelimit.Cooldown { return failingCooldown{} }

// A limit store that fails refuses upgrades with 503 and Retry-After (not
// 429), whichever check hits it.
func TestLimitStoreFailureIs503(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Limits = noLimits()
		c.Limits.Store = failingStore{}
	})
	// Cooldown is the first check.
	code, h, _ := dialStatus(t, e.url, nil)
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("upgrade with failing store: %d %v", code, h)
	}
	if !e.events.hasReason("cooldown_store") {
		t.Fatal("no cooldown_store event")
	}
}
