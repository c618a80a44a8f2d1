package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/internal/poll"
	"github.com/livegate/livegate/internal/wstest"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
)

// rawConn is a protocol client whose methods return errors instead of
// failing the test, so it can run on goroutines of its own.
type rawConn struct {
	ws *websocket.Conn
	id uint64
}

var wsOptions = &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}}

func rawDial(ctx context.Context, url string) (*rawConn, *http.Response, error) {
	ws, resp, err := websocket.Dial(ctx, url, wsOptions)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(1 << 20)
	return &rawConn{ws: ws}, resp, nil
}

func (c *rawConn) read(ctx context.Context) (protocol.ServerFrame, error) {
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return protocol.ServerFrame{}, err
	}
	var f protocol.ServerFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("bad frame %s: %w", b, err)
	}
	return f, nil
}

// request sends a command and returns its reply and the pushes that came
// before it.
func (c *rawConn) request(ctx context.Context, method string, params any) (protocol.ServerFrame, []*protocol.Push, error) {
	c.id++
	frame, err := json.Marshal(map[string]any{"id": c.id, "method": method, "params": params})
	if err != nil {
		return protocol.ServerFrame{}, nil, err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return protocol.ServerFrame{}, nil, err
	}
	var pushes []*protocol.Push
	for {
		f, err := c.read(ctx)
		if err != nil {
			return f, pushes, fmt.Errorf("waiting for the %s reply: %w", method, err)
		}
		if f.ID == c.id {
			if f.Error != nil {
				return f, pushes, fmt.Errorf("%s: %w", method, f.Error)
			}
			return f, pushes, nil
		}
		if f.Push != nil {
			pushes = append(pushes, f.Push)
		}
	}
}

// connect dials url and connects as user with a fresh token.
func rawConnect(ctx context.Context, url, user string) (*rawConn, error) {
	c, _, err := rawDial(ctx, url)
	if err != nil {
		return nil, err
	}
	tok, err := signToken(user)
	if err == nil {
		_, _, err = c.request(ctx, protocol.MethodConnect, map[string]any{"token": tok})
	}
	if err != nil {
		_ = c.ws.CloseNow()
		return nil, err
	}
	return c, nil
}

// subscribe subscribes to channel (with since when not nil); pushes before
// the reply are an error, as the protocol promises none.
func (c *rawConn) subscribe(ctx context.Context, channel string, since *protocol.StreamPosition) (protocol.SubscribeResult, error) {
	params := map[string]any{"channel": channel}
	if since != nil {
		params["since"] = since
	}
	f, pushes, err := c.request(ctx, protocol.MethodSubscribe, params)
	if err != nil {
		return protocol.SubscribeResult{}, err
	}
	if len(pushes) > 0 {
		return protocol.SubscribeResult{}, fmt.Errorf("%d pushes before the subscribe reply", len(pushes))
	}
	var res protocol.SubscribeResult
	if err := json.Unmarshal(f.Result, &res); err != nil {
		return res, fmt.Errorf("subscribe result %s: %w", f.Result, err)
	}
	return res, nil
}

// pubN is the data of the publications of TestGatewayClusterReconnect.
type pubN struct {
	N uint64 `json:"n"`
}

// TestGatewayClusterReconnect publishes 1,000 messages round-robin on
// three nodes while every client keeps hopping between nodes: it leaves
// one (cleanly or not) after a random number of messages, connects to the
// next and resubscribes with since set to the last position it handled.
// Every client must end up with each message exactly once, in order:
// offsets 1..1000 under one epoch, each carrying its own data.
func TestGatewayClusterReconnect(t *testing.T) {
	t.Parallel()
	const (
		total   = 1000
		clients = 4
		channel = "room:hop"
	)
	nodes := newClusterWith(t, 3, clusterConfig{limits: noLimits(), historySize: total})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Every client subscribes before the first publication, so each must
	// receive offsets 1..total.
	first := make([]*rawConn, clients)
	var epoch string
	for k := range clients {
		c, err := rawConnect(ctx, nodes[k%3].url, fmt.Sprint("hopper-", k))
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.subscribe(ctx, channel, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Offset != 0 || res.Epoch == "" || (epoch != "" && res.Epoch != epoch) {
			t.Fatalf("client %d subscribed at %d/%q, want offset 0 in epoch %q", k, res.Offset, res.Epoch, epoch)
		}
		epoch = res.Epoch
		first[k] = c
	}

	got := make([][]uint64, clients)
	hops := make([]int, clients)
	sources := make([][]string, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for k := range clients {
		wg.Go(func() {
			h, err := follow(ctx, nodes, k, first[k], channel, epoch, total)
			got[k], hops[k], sources[k] = h.offsets, h.hops, h.sources
			if err != nil {
				errs <- fmt.Errorf("client %d (after %d messages, %d hops): %w", k, len(h.offsets), h.hops, err)
				cancel() // unblock the others
			}
		})
	}

	for i := uint64(1); i <= total && ctx.Err() == nil; i++ {
		res, err := nodes[(i-1)%3].gw.Publish(ctx, channel, pubN{N: i})
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
			cancel()
			break
		}
		if res.Offset != i || res.Epoch != epoch {
			t.Errorf("publish %d on node %d got position %d/%s, want %d/%s", i, (i-1)%3, res.Offset, res.Epoch, i, epoch)
		}
		// Spread the publications over a second or two so that clients
		// hop while they are being published.
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for k := range clients {
		if !slices.Equal(got[k], seq(1, total)) {
			i := firstDiff(got[k], seq(1, total))
			t.Errorf("client %d received %d messages, not exactly offsets 1..%d in order; around the first difference: %v",
				k, len(got[k]), total, sources[k][max(i-3, 0):min(i+3, len(sources[k]))])
		}
		if hops[k] < 3 {
			t.Errorf("client %d hopped only %d times", k, hops[k])
		}
	}
	t.Logf("hops per client: %v", hops)
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

type hopResult struct {
	offsets []uint64
	// sources says where each offset came from: "push@<hop>" or
	// "recovered@<hop>", for the failure message.
	sources []string
	hops    int
}

// follow reads channel on c, and from then on hops from node to node,
// until it has handled offset total. It records every publication it
// received, from pushes and from recovered publications alike, without
// dropping duplicates: the gateway promises none.
func follow(ctx context.Context, nodes []*gwNode, k int, c *rawConn, channel, epoch string, total uint64) (hopResult, error) {
	var h hopResult
	rng := rand.New(rand.NewPCG(uint64(k), 0x5eed))
	pos := protocol.StreamPosition{Epoch: epoch}
	handle := func(offset uint64, data json.RawMessage, src string) error {
		var d pubN
		if err := json.Unmarshal(data, &d); err != nil || d.N != offset {
			return fmt.Errorf("offset %d carries data %s", offset, data)
		}
		h.offsets = append(h.offsets, offset)
		h.sources = append(h.sources, fmt.Sprintf("%d:%s@%d", offset, src, h.hops))
		pos.Offset = offset
		return nil
	}
	node := k
	for {
		stay := 20 + rng.IntN(100)
		for range stay {
			f, err := c.read(ctx)
			if err != nil {
				_ = c.ws.CloseNow()
				return h, fmt.Errorf("read: %w", err)
			}
			if f.Push == nil {
				continue
			}
			if !f.Push.IsPublication() || f.Push.Channel != channel || f.Push.Epoch != epoch {
				_ = c.ws.CloseNow()
				return h, fmt.Errorf("unexpected push %+v", *f.Push)
			}
			if err := handle(f.Push.Offset, f.Push.Data, "push"); err != nil {
				return h, err
			}
			if pos.Offset >= total {
				return h, c.ws.Close(websocket.StatusNormalClosure, "")
			}
		}
		// Leave, cleanly or not, and come back on the next node.
		if rng.IntN(2) == 0 {
			_ = c.ws.CloseNow()
		} else {
			_ = c.ws.Close(websocket.StatusNormalClosure, "")
		}
		h.hops++
		node++
		var err error
		c, err = rawConnect(ctx, nodes[node%len(nodes)].url, fmt.Sprint("hopper-", k))
		if err != nil {
			return h, err
		}
		since := pos
		res, err := c.subscribe(ctx, channel, &since)
		if err != nil {
			_ = c.ws.CloseNow()
			return h, err
		}
		if res.Recovered == nil || !*res.Recovered || res.Epoch != epoch {
			_ = c.ws.CloseNow()
			return h, fmt.Errorf("resubscribe since %+v: recovered %v, epoch %q (want true, %q)", since, res.Recovered, res.Epoch, epoch)
		}
		for _, p := range res.Publications {
			if err := handle(p.Offset, p.Data, "recovered"); err != nil {
				return h, err
			}
		}
		if pos.Offset != res.Offset {
			_ = c.ws.CloseNow()
			return h, fmt.Errorf("resubscribe since %d: recovered up to %d, but the stream is at %d", since.Offset, pos.Offset, res.Offset)
		}
		if pos.Offset >= total {
			return h, c.ws.Close(websocket.StatusNormalClosure, "")
		}
	}
}

// nextPush reads c until a push arrives, failing after a generous
// deadline.
func nextPush(t *testing.T, c *wstest.Conn) *protocol.Push {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, b, err := c.WS.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for a push: %v", err)
		}
		var f protocol.ServerFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("bad frame %s: %v", b, err)
		}
		if f.Push != nil {
			return f.Push
		}
	}
}

func subscribeResult(t *testing.T, f protocol.ServerFrame) protocol.SubscribeResult {
	t.Helper()
	if f.Error != nil {
		t.Fatalf("subscribe: %+v", f.Error)
	}
	var res protocol.SubscribeResult
	if err := json.Unmarshal(f.Result, &res); err != nil {
		t.Fatalf("subscribe result %s: %v", f.Result, err)
	}
	return res
}

// retry runs f until it succeeds, failing the test after a generous
// deadline; it returns how many attempts failed.
func retry(t *testing.T, what string, f func() error) int {
	t.Helper()
	failed := 0
	var last error
	poll.Until(t, what, func() bool {
		if last = f(); last != nil {
			failed++
			return false
		}
		return true
	})
	if failed > 0 {
		t.Logf("%s: %d failed attempts first, the last: %v", what, failed, last)
	}
	return failed
}

// TestGatewayClusterRedisRestart restarts a Redis without persistence
// under three nodes. Every stream is lost, so clients must be told:
// subscribed clients get a resubscribe push and, resubscribing with
// since, recovered:false under a new epoch; a client that was away during
// the restart gets recovered:false on another node. Nothing is silently
// missing, and publications flow again in the new epoch.
func TestGatewayClusterRedisRestart(t *testing.T) {
	t.Parallel()
	srv := privateServer(t)
	nodes := newClusterWith(t, 3, clusterConfig{addr: srv.addr(), limits: noLimits()})
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	const channel = "room:restart"
	onB := join(t, b, "u1", channel)
	onC := join(t, c, "u2", channel)
	away := join(t, a, "u3", channel)
	for i := range 5 {
		if _, err := a.gw.Publish(ctx, channel, pubN{N: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	var epoch string
	for _, cl := range []*wstest.Conn{onB, onC, away} {
		var offsets []uint64
		for len(offsets) < 5 {
			p := nextPush(t, cl)
			if !p.IsPublication() {
				t.Fatalf("unexpected notice %+v", *p)
			}
			offsets = append(offsets, p.Offset)
			epoch = p.Epoch
		}
		if !slices.Equal(offsets, seq(1, 5)) {
			t.Fatalf("received %v, want 1..5", offsets)
		}
	}
	since := protocol.StreamPosition{Offset: 5, Epoch: epoch}
	_ = away.WS.CloseNow()

	srv.stop()
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}

	// The subscribed clients are told to resubscribe; nothing else
	// arrives before that.
	resubscribed := map[string]protocol.SubscribeResult{}
	for name, cl := range map[string]*wstest.Conn{"B": onB, "C": onC} {
		p := nextPush(t, cl)
		if !p.Resubscribe || p.Channel != channel {
			t.Fatalf("client on %s got %+v after the restart, want a resubscribe notice", name, *p)
		}
		if r := cl.Call(protocol.MethodUnsubscribe, protocol.UnsubscribeParams{Channel: channel}); r.Error != nil {
			t.Fatalf("unsubscribe: %+v", r.Error)
		}
		res := subscribeResult(t, cl.Call(protocol.MethodSubscribe, protocol.SubscribeParams{Channel: channel, Since: &since}))
		if res.Recovered == nil || *res.Recovered || len(res.Publications) != 0 || res.Epoch == epoch {
			t.Fatalf("client on %s resubscribed since %+v: recovered %v, %d publications, epoch %q; want recovered:false, none, a new epoch",
				name, since, res.Recovered, len(res.Publications), res.Epoch)
		}
		resubscribed[name] = res
	}

	// The client that was away comes back on another node: it learns
	// that its position is lost.
	var back *rawConn
	retry(t, "a connect to node B after the restart", func() error {
		var err error
		back, err = rawConnect(ctx, b.url, "u3")
		return err
	})
	t.Cleanup(func() { _ = back.ws.CloseNow() })
	res, err := back.subscribe(ctx, channel, &since)
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered == nil || *res.Recovered || len(res.Publications) != 0 || res.Epoch == epoch {
		t.Fatalf("returning client subscribed since %+v: recovered %v, %d publications, epoch %q; want recovered:false, none, a new epoch",
			since, res.Recovered, len(res.Publications), res.Epoch)
	}

	// Publications flow again, continuing the new stream.
	retry(t, "a publish on node A after the restart", func() error {
		_, err := a.gw.Publish(ctx, channel, pubN{N: 1})
		return err
	})
	for name, cl := range map[string]*wstest.Conn{"B": onB, "C": onC} {
		want := resubscribed[name]
		p := nextPush(t, cl)
		if !p.IsPublication() || p.Epoch != want.Epoch || p.Offset != want.Offset+1 {
			t.Errorf("client on %s got %+v, want the publication after %d in epoch %s", name, *p, want.Offset, want.Epoch)
		}
	}
	f, err := back.read(ctx)
	if err != nil || f.Push == nil || f.Push.Epoch != res.Epoch || f.Push.Offset != res.Offset+1 {
		t.Errorf("returning client got %+v (%v), want the publication after %d in epoch %s", f.Push, err, res.Offset, res.Epoch)
	}
}

// echoHandler answers event "echo" with its payload.
var echoHandler = livegate.HandlerFunc[json.RawMessage](func(_ context.Context, _ *livegate.Request, p json.RawMessage) (any, error) {
	return p, nil
})

func echo(t *testing.T, cl *wstest.Conn, id uint64, text string) {
	t.Helper()
	payload, err := json.Marshal(text)
	if err != nil {
		t.Fatal(err)
	}
	cl.Command(id, protocol.MethodEvent, protocol.EventParams{Name: "echo", Payload: payload})
	f := cl.Reply(id)
	if f.Error != nil || string(f.Result) != string(payload) {
		t.Fatalf("echo %q: result %s, error %+v", text, f.Result, f.Error)
	}
}

// TestGatewayClusterRedisDown stops Redis under three nodes. New
// connections fail closed as documented: nodes whose limit store is Redis
// refuse the upgrade with 503 and Retry-After: 5; a node with in-memory
// limits upgrades, then closes the connect 4500 because it cannot consult
// its revocation and replay stores. Connections already open keep
// working. Once Redis is back, new connections succeed on every node
// without restarting anything.
func TestGatewayClusterRedisDown(t *testing.T) {
	t.Parallel()
	srv := privateServer(t)
	nodes := newClusterWith(t, 3, clusterConfig{addr: srv.addr(), limits: noLimits(),
		configure: func(i int, c *livegate.Config) {
			if i == 2 {
				c.Limits.Store = ratelimit.MemoryStore{}
			}
		}})
	for _, n := range nodes {
		if err := n.gw.Handle("echo", echoHandler); err != nil {
			t.Fatal(err)
		}
	}
	const channel = "room:down"
	var open []*wstest.Conn
	for i, n := range nodes {
		cl := join(t, n, fmt.Sprint("u", i), channel)
		echo(t, cl, 10, "before")
		open = append(open, cl)
	}

	srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, n := range nodes[:2] {
		for range 3 {
			c, resp, err := rawDial(ctx, n.url)
			if err == nil {
				_ = c.ws.CloseNow()
				t.Fatalf("node %d accepted an upgrade while its limit store was down", i)
			}
			if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
				t.Fatalf("node %d: upgrade with Redis down: %v (response %+v), want 503 with Retry-After: 5", i, err, resp)
			}
		}
	}
	for range 3 {
		c, _, err := rawDial(ctx, nodes[2].url)
		if err != nil {
			t.Fatalf("node 2 (in-memory limits) refused the upgrade: %v", err)
		}
		tok := clusterToken(t, "late")
		if err := c.ws.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"connect","params":{"token":"`+tok+`"}}`)); err != nil {
			t.Fatal(err)
		}
		f, err := c.read(ctx)
		if err == nil {
			_ = c.ws.CloseNow()
			t.Fatalf("connect admitted while Redis was down: %+v", f)
		}
		if code := websocket.CloseStatus(err); code != websocket.StatusCode(protocol.CloseInternal) {
			t.Fatalf("connect with Redis down closed with %v (%v), want %d", code, err, protocol.CloseInternal)
		}
	}
	for i, cl := range open {
		echo(t, cl, uint64(20+i), fmt.Sprint("during ", i))
	}

	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		retry(t, fmt.Sprintf("a new connection on node %d after the restart", i), func() error {
			c, err := rawConnect(ctx, n.url, fmt.Sprint("new", i))
			if err != nil {
				return err
			}
			defer c.ws.CloseNow()
			_, err = c.subscribe(ctx, channel, nil)
			return err
		})
	}
	for i, cl := range open {
		echo(t, cl, uint64(30+i), fmt.Sprint("after ", i))
	}
}

// TestGatewayClusterTokenRace sends the same single-use token to two
// nodes at once, ten times: each time exactly one connect succeeds and
// the other is closed 4401.
func TestGatewayClusterTokenRace(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, 3, noLimits())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 10 {
		tok := clusterToken(t, "racer")
		frame := []byte(`{"id":1,"method":"connect","params":{"token":"` + tok + `"}}`)
		pair := []*gwNode{nodes[round%3], nodes[(round+1)%3]}
		var conns []*rawConn
		for _, n := range pair {
			c, _, err := rawDial(ctx, n.url)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		start := make(chan struct{})
		outcome := make([]string, 2)
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Go(func() {
				defer c.ws.CloseNow()
				<-start
				if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
					outcome[i] = "write: " + err.Error()
					return
				}
				f, err := c.read(ctx)
				switch {
				case err == nil && f.ID == 1 && f.Error == nil:
					outcome[i] = "connected"
				case err != nil:
					outcome[i] = fmt.Sprint(int(websocket.CloseStatus(err)))
				default:
					outcome[i] = fmt.Sprintf("frame %+v", f)
				}
			})
		}
		close(start)
		wg.Wait()
		slices.Sort(outcome)
		if want := []string{fmt.Sprint(int(protocol.CloseUnauthorized)), "connected"}; !slices.Equal(outcome, want) {
			t.Errorf("round %d: outcomes %q, want exactly one connected and one %d", round, outcome, protocol.CloseUnauthorized)
		}
	}
}

// TestGatewayClusterAttemptsPerIP: the per-IP attempt limit is one budget
// for the whole cluster. Six attempts a minute, spread over three nodes:
// the first six upgrade, every later one is refused 429 on whichever node
// it reaches.
func TestGatewayClusterAttemptsPerIP(t *testing.T) {
	t.Parallel()
	const limit = 6
	limits := noLimits()
	limits.AttemptsPerIP = ratelimit.Per(limit, time.Minute)
	nodes := newCluster(t, 3, limits)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var accepted []int
	for i := range 2 * limit {
		c, resp, err := rawDial(ctx, nodes[i%3].url)
		if err == nil {
			_ = c.ws.CloseNow()
			accepted = append(accepted, i)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("attempt %d on node %d: %v (%+v), want 429", i, i%3, err, resp)
		}
		if resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Limit") != fmt.Sprint(limit) ||
			resp.Header.Get("RateLimit-Remaining") != "0" {
			t.Errorf("attempt %d on node %d: 429 headers %v", i, i%3, resp.Header)
		}
	}
	if want := []int{0, 1, 2, 3, 4, 5}; !slices.Equal(accepted, want) {
		t.Errorf("accepted attempts %v, want %v: the cluster must share one budget", accepted, want)
	}
}

// TestGatewayClusterNodeDeath kills one of three nodes (its Engine first,
// so it cannot clean up). Its user vanishes from the presence the other
// nodes see once the presence TTL passes, while theirs stay; and its
// connection slots come back once its liveness key expires (NodeTTL), so a
// user capped at one connection can connect again elsewhere.
func TestGatewayClusterNodeDeath(t *testing.T) {
	t.Parallel()
	limits := noLimits()
	limits.ConnsPerUser = 1
	nodes := newClusterWith(t, 3, clusterConfig{
		limits:      limits,
		presenceTTL: 1500 * time.Millisecond,
		nodeTTL:     time.Second,
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	const channel = "room:presence"
	join(t, a, "alice", channel)
	join(t, b, "bob", channel)
	carol := join(t, c, "carol", channel)
	presence := func(n *gwNode) []string {
		list, err := n.gw.Presence(ctx, channel)
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, ci := range list {
			users = append(users, ci.User+"@"+ci.Node)
		}
		slices.Sort(users)
		return users
	}
	all := []string{"alice@node-0", "bob@node-1", "carol@node-2"}
	poll.Until(t, "all three users in presence", func() bool { return slices.Equal(presence(a), all) })

	// Carol already holds her one connection, on node C.
	connectClose := func(n *gwNode, user string) (websocket.StatusCode, error) {
		cl, err := wstest.TryDial(t, n.url, nil)
		if err != nil {
			return -1, err
		}
		defer cl.WS.CloseNow()
		cl.Send(`{"id":1,"method":"connect","params":{"token":"` + clusterToken(t, user) + `"}}`)
		f, err := cl.Next()
		if err == nil {
			if f.Error != nil {
				return -1, f.Error
			}
			return 0, nil
		}
		return websocket.CloseStatus(err), nil
	}
	if code, err := connectClose(a, "carol"); err != nil || code != websocket.StatusCode(protocol.CloseRateLimited) {
		t.Fatalf("carol's second connection on node A: close %v (%v), want %d", code, err, protocol.CloseRateLimited)
	}

	// Carol's client reads on, so it answers the dying node's close
	// handshake at once.
	go func() {
		for {
			if _, _, err := carol.WS.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	c.kill()
	alive := []string{"alice@node-0", "bob@node-1"}
	for _, n := range []*gwNode{a, b} {
		poll.Until(t, "the dead node's user to leave presence on "+n.url, func() bool { return slices.Equal(presence(n), alive) })
	}
	poll.Until(t, "carol to connect on node A after node C died", func() bool {
		code, err := connectClose(a, "carol")
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 && code != websocket.StatusCode(protocol.CloseRateLimited) {
			t.Fatalf("carol's connect closed %v, want success or %d", code, protocol.CloseRateLimited)
		}
		return code == 0
	})
}
