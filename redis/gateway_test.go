package redis_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/poll"
	"github.com/livegate/livegate/internal/wstest"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
	"github.com/livegate/livegate/redis"
)

var gwSecret = []byte("0123456789abcdef0123456789abcdef-cluster")

// gwNode is one livegate Gateway on its own HTTP server, sharing Redis
// with the others through its Engine.
type gwNode struct {
	gw  *livegate.Gateway
	e   *redis.Engine // nil for a node without Redis
	srv *httptest.Server
	url string
}

// kill stops the node the way a crash does: its Engine goes first, so the
// node cannot clean up anything it left in Redis (presence entries,
// connection counts), then its connections and its HTTP server.
func (n *gwNode) kill() {
	if n.e != nil {
		_ = n.e.Close()
	}
	_ = n.gw.Close()
	n.srv.Close()
}

// clusterConfig adjusts the nodes newClusterWith starts.
type clusterConfig struct {
	addr        string // the Redis to use; "" is the shared one
	limits      livegate.Limits
	historySize int           // of the "room" namespace; default 100
	presenceTTL time.Duration // Config.PresenceTTL; 0 is the default
	nodeTTL     time.Duration // Options.NodeTTL; 0 is the default
	// configure, when set, adjusts node i's Config last.
	configure func(i int, c *livegate.Config)
}

func newCluster(t testing.TB, n int, limits livegate.Limits) []*gwNode {
	t.Helper()
	return newClusterWith(t, n, clusterConfig{limits: limits})
}

// newClusterWith starts n Gateways named node-0, node-1, … on one Redis
// and one key prefix, each behind its own httptest server.
func newClusterWith(t testing.TB, n int, cc clusterConfig) []*gwNode {
	t.Helper()
	addr := cc.addr
	if addr == "" {
		addr = needRedis(t)
	}
	prefix := testPrefix(t)
	if cc.historySize == 0 {
		cc.historySize = 100
	}
	var nodes []*gwNode
	for i := range n {
		id := fmt.Sprint("node-", i)
		e := newEngine(t, addr, prefix, func(o *redis.Options) {
			o.NodeID = id
			o.NodeTTL = cc.nodeTTL
		})
		l := cc.limits
		l.Store = e.LimitStore()
		cfg := livegate.Config{
			TokenHMACSecret: gwSecret,
			NodeID:          id,
			Broker:          e.Broker(),
			ReplayStore:     e.ReplayStore(),
			Revocations:     e.Revocations(),
			Limits:          l,
			PresenceTTL:     cc.presenceTTL,
			Namespaces: []policy.NamespaceConfig{
				{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: cc.historySize, Presence: true},
			},
		}
		if cc.configure != nil {
			cc.configure(i, &cfg)
		}
		node := startNode(t, cfg)
		node.e = e
		nodes = append(nodes, node)
	}
	return nodes
}

// startNode starts a Gateway made from cfg behind an httptest server at
// /ws, shut down when the test ends.
func startNode(t testing.TB, cfg livegate.Config) *gwNode {
	t.Helper()
	gw, err := livegate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	})
	return &gwNode{gw: gw, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

var gwSigner = sync.OnceValues(func() (*auth.Signer, error) {
	return auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: gwSecret})
})

// signToken mints a connect token (with a fresh jti, so single-use) for
// user; safe to call from any goroutine.
func signToken(user string) (string, error) {
	s, err := gwSigner()
	if err != nil {
		return "", err
	}
	tok, _, err := s.Sign(auth.Identity{User: user}, auth.KindConnect, 5*time.Minute)
	return tok, err
}

func clusterToken(t testing.TB, user string) string {
	t.Helper()
	tok, err := signToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// join connects user to n and subscribes to channel.
func join(t testing.TB, n *gwNode, user, channel string) *wstest.Conn {
	t.Helper()
	c := wstest.Dial(t, n.url, nil)
	c.Connect(protocol.ConnectParams{Token: clusterToken(t, user)})
	c.Subscribe(channel)
	return c
}

func noLimits() livegate.Limits {
	off := ratelimit.Rule{Limit: -1}
	return livegate.Limits{
		AttemptsPerIP: off, AttemptsPerUser: off, TokensPerUser: off, TokensPerIP: off,
		ConnsPerIP: -1, ConnsPerUser: -1, Cooldown: -1,
	}
}

// TestGatewayCluster runs three Gateways on one Redis: a publication on A
// reaches subscribers on B and C in order, presence lists users of every
// node, and revoking a user on A closes the user's sockets on B and C.
func TestGatewayCluster(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, 3, noLimits())
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	onB := join(t, b, "alice", "room:1")
	onC := join(t, c, "alice", "room:1")
	bob := join(t, c, "bob", "room:1")

	for i := range 5 {
		if _, err := a.gw.Publish(ctx, "room:1", map[string]int{"n": i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	for name, cl := range map[string]*wstest.Conn{"B": onB, "C": onC, "C/bob": bob} {
		var offsets []uint64
		for len(offsets) < 5 {
			f, err := cl.Next()
			if err != nil {
				t.Fatalf("%s: %v after %v", name, err, offsets)
			}
			if f.Push != nil && f.Push.IsPublication() {
				offsets = append(offsets, f.Push.Offset)
			}
		}
		if !slices.Equal(offsets, seq(1, 5)) {
			t.Errorf("%s received offsets %v, want 1..5 in order", name, offsets)
		}
	}

	poll.Until(t, "presence of both users from node A", func() bool {
		list, err := a.gw.Presence(ctx, "room:1")
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, ci := range list {
			users = append(users, ci.User+"@"+ci.Node)
		}
		slices.Sort(users)
		return slices.Equal(users, []string{"alice@node-1", "alice@node-2", "bob@node-2"})
	})

	if _, err := a.gw.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for name, cl := range map[string]*wstest.Conn{"B": onB, "C": onC} {
		for {
			_, err := cl.Next()
			if err == nil {
				continue
			}
			if code := websocket.CloseStatus(err); code != websocket.StatusCode(protocol.CloseForbidden) {
				t.Errorf("alice on %s closed with %v (%v), want %d", name, code, err, protocol.CloseForbidden)
			}
			break
		}
	}
	// Bob stays connected and still receives publications.
	if _, err := a.gw.Publish(ctx, "room:1", "after"); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := bob.Next()
		if err != nil {
			t.Fatalf("bob: %v", err)
		}
		if f.Push != nil && f.Push.IsPublication() {
			if f.Push.Offset != 6 {
				t.Fatalf("bob got offset %d, want 6", f.Push.Offset)
			}
			break
		}
	}
	// A revoked user's new connection is refused on every node.
	cl, err := wstest.TryDial(t, b.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.Send(`{"id":1,"method":"connect","params":{"token":"` + clusterToken(t, "alice") + `"}}`)
	if f, err := cl.Next(); err == nil && f.Error == nil {
		t.Fatal("revoked user connected on another node")
	}
}

// TestGatewayClusterConnsPerIP: the per-IP connection cap holds across
// nodes.
func TestGatewayClusterConnsPerIP(t *testing.T) {
	t.Parallel()
	limits := noLimits()
	limits.ConnsPerIP = 2
	nodes := newCluster(t, 3, limits)
	join(t, nodes[0], "u1", "room:2")
	join(t, nodes[2], "u2", "room:2") // node C admits connections
	cl, err := wstest.TryDial(t, nodes[1].url, nil)
	if err != nil {
		return // refused at the upgrade
	}
	cl.Send(`{"id":1,"method":"connect","params":{"token":"` + clusterToken(t, "u3") + `"}}`)
	if f, err := cl.Next(); err == nil && f.Error == nil {
		t.Fatal("a third connection from the same IP was accepted on another node")
	}
}
