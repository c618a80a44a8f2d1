package livegate_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/client"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
)

func presenceNamespaces() []policy.NamespaceConfig {
	return append(defaultNamespaces(),
		policy.NamespaceConfig{Name: "lobby", Subscribe: policy.SubscribeAuthenticated, Presence: true, JoinLeave: true},
		policy.NamespaceConfig{Name: "quiet", Subscribe: policy.SubscribeAuthenticated, Presence: true},
		policy.NamespaceConfig{Name: "team", Subscribe: policy.SubscribeAuthenticated, Presence: true, TenantScoped: true},
	)
}

func presenceUsers(t *testing.T, c *rawConn, id uint64, channel string) []string {
	t.Helper()
	c.sendCmd(id, "presence", protocol.PresenceParams{Channel: channel})
	r := c.reply(id)
	if r.Error != nil {
		t.Fatalf("presence %s: %+v", channel, r.Error)
	}
	var res protocol.PresenceResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, cl := range res.Clients {
		users = append(users, cl.User)
	}
	sort.Strings(users)
	return users
}

func TestPresenceJoinLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.Namespaces = presenceNamespaces() })
	alice, bob, eve := e.connect(t, "alice"), e.connect(t, "bob"), e.connect(t, "eve")
	alice.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "lobby:main"})
	alice.reply(2)
	bob.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "lobby:main"})
	bob.reply(2)
	// Alice hears bob join.
	j := alice.push()
	if j.Join == nil || j.Join.User != "bob" || j.Channel != "lobby:main" || j.IsPublication() {
		t.Fatalf("join push = %+v", j)
	}
	if got := strings.Join(presenceUsers(t, alice, 3, "lobby:main"), ","); got != "alice,bob" {
		t.Fatalf("presence = %s", got)
	}
	// A connection not subscribed gets the generic refusal, as do
	// channels without presence and unknown ones.
	for i, ch := range []string{"lobby:main", "room:x", "nope:x", "bad channel"} {
		eve.sendCmd(uint64(10+i), "presence", protocol.PresenceParams{Channel: ch})
		if r := eve.reply(uint64(10 + i)); r.Error == nil || r.Error.Code != protocol.CodeForbidden {
			t.Fatalf("non-subscriber presence %s: %+v", ch, r)
		}
	}
	eve.sendCmd(20, "subscribe", protocol.SubscribeParams{Channel: "room:x"})
	eve.reply(20)
	eve.sendCmd(21, "presence", protocol.PresenceParams{Channel: "room:x"})
	if r := eve.reply(21); r.Error == nil || r.Error.Code != protocol.CodeForbidden {
		t.Fatalf("presence in a namespace without it: %+v", r)
	}
	// Bob leaves by closing: alice hears it and the list shrinks.
	_ = bob.ws.CloseNow()
	l := alice.push()
	if l.Leave == nil || l.Leave.User != "bob" {
		t.Fatalf("leave push = %+v", l)
	}
	if got := strings.Join(presenceUsers(t, alice, 4, "lobby:main"), ","); got != "alice" {
		t.Fatalf("presence after leave = %s", got)
	}
	list, err := e.gw.Presence(context.Background(), "lobby:main")
	if err != nil || len(list) != 1 || list[0].User != "alice" {
		t.Fatalf("Gateway.Presence = %+v, %v", list, err)
	}
	if _, err := e.gw.Presence(context.Background(), "room:x"); !errors.Is(err, livegate.ErrPresenceOff) {
		t.Fatalf("Presence without presence = %v", err)
	}
	// Without JoinLeave there are no pushes, but there is a list.
	alice.sendCmd(5, "subscribe", protocol.SubscribeParams{Channel: "quiet:q"})
	alice.reply(5)
	eve.sendCmd(22, "subscribe", protocol.SubscribeParams{Channel: "quiet:q"})
	eve.reply(22)
	if got := strings.Join(presenceUsers(t, alice, 6, "quiet:q"), ","); got != "alice,eve" {
		t.Fatalf("quiet presence = %s", got)
	}
}

func TestPresenceCrossTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.Namespaces = presenceNamespaces() })
	a1 := e.connectAs(t, auth.Identity{User: "a1", Tenant: "acme"})
	a2 := e.connectAs(t, auth.Identity{User: "a2", Tenant: "acme"})
	g1 := e.connectAs(t, auth.Identity{User: "g1", Tenant: "globex"})
	for _, c := range []*rawConn{a1, a2, g1} {
		c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "team:general"})
		if r := c.reply(2); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
	if got := strings.Join(presenceUsers(t, a1, 3, "team:general"), ","); got != "a1,a2" {
		t.Fatalf("acme sees %s", got)
	}
	if got := strings.Join(presenceUsers(t, g1, 3, "team:general"), ","); got != "g1" {
		t.Fatalf("globex sees %s", got)
	}
	// Server side, the tenant is part of the name.
	list, err := e.gw.Presence(context.Background(), "team:@globex/general")
	if err != nil || len(list) != 1 || list[0].User != "g1" {
		t.Fatalf("Presence(globex) = %+v, %v", list, err)
	}
	if _, err := e.gw.Presence(context.Background(), "team:general"); !errors.Is(err, livegate.ErrTenant) {
		t.Fatalf("Presence without tenant = %v", err)
	}
	chans := e.gw.Channels("team:")
	if len(chans) != 2 || chans[0].Channel != "team:@acme/general" || chans[0].Subscribers != 2 || chans[1].Subscribers != 1 {
		t.Fatalf("Channels = %+v", chans)
	}
}

type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Entries of a node that died expire after PresenceTTL; the live
// connection's entry is refreshed and stays.
func TestPresenceExpiry(t *testing.T) {
	t.Parallel()
	clk := &manualClock{t: time.Now()}
	store := broker.NewMemoryPresence(clk.Now)
	e := newEnv(t, func(c *livegate.Config) {
		c.Namespaces = presenceNamespaces()
		c.Presence = store
		c.PresenceTTL = 300 * time.Millisecond
	})
	alice := e.connect(t, "alice")
	alice.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "quiet:q"})
	alice.reply(2)
	ctx := context.Background()
	if err := store.AddPresence(ctx, "quiet:q", broker.ClientInfo{ConnID: "dead-1", User: "ghost", Node: "dead"}, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(presenceUsers(t, alice, 3, "quiet:q"), ","); got != "alice,ghost" {
		t.Fatalf("before expiry: %s", got)
	}
	clk.Advance(time.Hour)
	// The ghost is gone at once; alice is back after the next refresh.
	waitFor(t, "refresh", func() bool {
		list, err := e.gw.Presence(ctx, "quiet:q")
		return err == nil && len(list) == 1 && list[0].User == "alice"
	})
	if store.Sweep() != 1 {
		t.Fatal("expired entry not swept")
	}
}

func TestSetNamespaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(t, "alice")
	c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:a"})
	c.reply(2)
	bad := append(defaultNamespaces(), policy.NamespaceConfig{Name: "room"})
	if err := e.gw.SetNamespaces(bad); err == nil {
		t.Fatal("duplicate namespace accepted")
	}
	var keep []policy.NamespaceConfig
	for _, ns := range defaultNamespaces() {
		if ns.Name != "room" {
			keep = append(keep, ns)
		}
	}
	if err := e.gw.SetNamespaces(keep); err != nil {
		t.Fatal(err)
	}
	c.sendCmd(3, "subscribe", protocol.SubscribeParams{Channel: "room:b"})
	if r := c.reply(3); r.Error == nil || r.Error.Code != protocol.CodeForbidden {
		t.Fatalf("subscribe in removed namespace: %+v", r)
	}
	if _, err := e.gw.Publish(context.Background(), "room:a", 1); !errors.Is(err, livegate.ErrUnknownNamespace) {
		t.Fatalf("Publish to removed namespace = %v", err)
	}
	// The connection and its other namespaces still work.
	c.sendCmd(4, "subscribe", protocol.SubscribeParams{Channel: "chat:x"})
	if r := c.reply(4); r.Error != nil {
		t.Fatal(r.Error)
	}
	if _, err := e.gw.Publish(context.Background(), "chat:x", 7); err != nil {
		t.Fatal(err)
	}
	if p := c.push(); p.Channel != "chat:x" || string(p.Data) != "7" {
		t.Fatalf("push = %+v", p)
	}
}

func TestSetLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	open := e.connect(t, "alice")
	for range 3 {
		code, _, c := dialStatus(t, e.url, nil)
		if code != 101 {
			t.Fatalf("before SetLimits: %d", code)
		}
		_ = c.ws.CloseNow()
	}
	l := noLimits()
	l.AttemptsPerIP = ratelimit.PerMinute(2)
	if err := e.gw.SetLimits(livegate.Limits{Store: failingStore{}}); err == nil {
		t.Fatal("SetLimits changed the store")
	}
	bad := l
	bad.AttemptsPerUser = ratelimit.Rule{Limit: 5} // no window
	if err := e.gw.SetLimits(bad); err == nil {
		t.Fatal("invalid limits accepted")
	}
	if err := e.gw.SetLimits(l); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		code, _, c := dialStatus(t, e.url, nil)
		if code != 101 {
			t.Fatalf("attempt %d under the new limit: %d", i+1, code)
		}
		_ = c.ws.CloseNow()
	}
	if code, _, _ := dialStatus(t, e.url, nil); code != 429 {
		t.Fatalf("third attempt under the new limit: %d", code)
	}
	// The connection from before stays.
	open.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:x"})
	if r := open.reply(2); r.Error != nil {
		t.Fatal(r.Error)
	}
}

func TestHistoryAndChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	first, err := e.gw.Publish(ctx, "room:h", 1)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = e.gw.Publish(ctx, "room:h", 2)
	res, err := e.gw.History(ctx, "room:h", &broker.Position{Offset: first.Offset - 1, Epoch: first.Epoch}, 0)
	if err != nil || len(res.Publications) != 2 || !res.Complete || string(res.Publications[1].Data) != "2" {
		t.Fatalf("History = %+v, %v", res, err)
	}
	res, err = e.gw.History(ctx, "room:h", &broker.Position{Offset: first.Offset - 1, Epoch: first.Epoch}, 1)
	if err != nil || len(res.Publications) != 1 || res.Complete {
		t.Fatalf("History limit 1 = %+v, %v", res, err)
	}
	for ch, want := range map[string]error{"nope:x": livegate.ErrUnknownNamespace, "room x": livegate.ErrInvalidChannel} {
		if _, err := e.gw.History(ctx, ch, nil, 0); !errors.Is(err, want) {
			t.Fatalf("History(%q) = %v, want %v", ch, err, want)
		}
	}
	c := e.connect(t, "alice")
	c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:h"})
	c.reply(2)
	c.sendCmd(3, "subscribe", protocol.SubscribeParams{Channel: "chat:z"})
	c.reply(3)
	if got := e.gw.Channels("room:"); len(got) != 1 || got[0] != (livegate.ChannelInfo{Channel: "room:h", Subscribers: 1}) {
		t.Fatalf("Channels(room:) = %+v", got)
	}
	if got := e.gw.Channels(""); len(got) != 2 {
		t.Fatalf("Channels() = %+v", got)
	}
}

// When the broker reports lost publications, subscribers get a
// resubscribe push; the Go client resubscribes from its last position and
// learns recovered:false when the stream's epoch changed.
func TestHandleLossResubscribe(t *testing.T) {
	t.Parallel()
	clk := &manualClock{t: time.Now()}
	cl := newTestCluster(t, clk.Now)
	e := newEnv(t, func(c *livegate.Config) { c.Broker = cl.node() })
	ctx := context.Background()

	raw := e.connect(t, "bob")
	raw.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:l"})
	raw.reply(2)

	resets := make(chan struct{}, 4)
	pushes := make(chan client.Push, 16)
	c, err := client.New(client.Config{
		URL:   e.url,
		Token: func(context.Context) (string, error) { return e.token(t, "alice"), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "room:l", func(p client.Push) { pushes <- p },
		client.WithRecoveryReset(func() { resets <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	recv := func() client.Push {
		t.Helper()
		select {
		case p := <-pushes:
			return p
		case <-time.After(5 * time.Second):
			t.Fatal("no push")
		}
		return client.Push{}
	}
	if _, err := e.gw.Publish(ctx, "room:l", 1); err != nil {
		t.Fatal(err)
	}
	if p := recv(); string(p.Data) != "1" {
		t.Fatalf("push = %+v", p)
	}
	raw.push()
	oldEpoch := sub.Position().Epoch

	// Loss with the stream intact: the client recovers, no reset.
	cl.lose("room:l")
	if p := raw.push(); !p.Resubscribe || p.Channel != "room:l" {
		t.Fatalf("raw client got %+v, want a resubscribe push", p)
	}
	waitFor(t, "resubscribed", func() bool { return len(e.gw.Channels("room:l")) == 1 && e.gw.Channels("room:l")[0].Subscribers == 2 })
	if _, err := e.gw.Publish(ctx, "room:l", 2); err != nil {
		t.Fatal(err)
	}
	if p := recv(); string(p.Data) != "2" || p.Offset != 2 {
		t.Fatalf("push after resync = %+v", p)
	}
	select {
	case <-resets:
		t.Fatal("reset after a complete recovery")
	default:
	}

	// The stream expired: a new epoch, so the resubscribe is not recovered.
	clk.Advance(48 * time.Hour)
	cl.lose("room:l")
	select {
	case <-resets:
	case <-time.After(5 * time.Second):
		t.Fatal("no recovery reset after the epoch changed")
	}
	if sub.Position().Epoch == oldEpoch {
		t.Fatal("position still in the old epoch")
	}
	if _, err := e.gw.Publish(ctx, "room:l", 3); err != nil {
		t.Fatal(err)
	}
	if p := recv(); string(p.Data) != "3" || p.Epoch == oldEpoch {
		t.Fatalf("push in new epoch = %+v", p)
	}
}
