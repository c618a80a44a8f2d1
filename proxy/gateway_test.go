package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/internal/poll"
	"github.com/livegate/livegate/internal/wstest"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/proxy"
	"github.com/livegate/livegate/ratelimit"
)

// appBackend is a real backend application: it verifies every request
// with proxy.Verifier, counts requests per path and answers with the
// function set for the path.
type appBackend struct {
	t        *testing.T
	srv      *httptest.Server
	verifier *proxy.Verifier

	mu      sync.Mutex
	counts  map[string]int
	bodies  map[string][]map[string]any
	headers map[string][]http.Header
	badSigs int
	answer  map[string]func(body map[string]any) (int, string)
}

func newAppBackend(t *testing.T) *appBackend {
	t.Helper()
	v, err := proxy.NewVerifier(proxy.VerifierConfig{Secrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	b := &appBackend{t: t, verifier: v, counts: map[string]int{}, bodies: map[string][]map[string]any{},
		headers: map[string][]http.Header{}, answer: map[string]func(map[string]any) (int, string){}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = b.verifier.Verify(r, raw)
		}
		b.mu.Lock()
		if err != nil {
			b.badSigs++
			b.mu.Unlock()
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		b.counts[r.URL.Path]++
		b.bodies[r.URL.Path] = append(b.bodies[r.URL.Path], body)
		b.headers[r.URL.Path] = append(b.headers[r.URL.Path], r.Header.Clone())
		f := b.answer[r.URL.Path]
		b.mu.Unlock()
		if f == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		code, out := f(body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, out)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *appBackend) on(path string, f func(body map[string]any) (int, string)) {
	b.mu.Lock()
	b.answer[path] = f
	b.mu.Unlock()
}

func (b *appBackend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[path]
}

func (b *appBackend) total() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.badSigs
	for _, c := range b.counts {
		n += c
	}
	return n
}

func (b *appBackend) lastBody(path string) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	bs := b.bodies[path]
	if len(bs) == 0 {
		b.t.Fatalf("no request to %s", path)
	}
	return bs[len(bs)-1]
}

func (b *appBackend) lastHeader(path string) http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	hs := b.headers[path]
	if len(hs) == 0 {
		b.t.Fatalf("no request to %s", path)
	}
	return hs[len(hs)-1]
}

func (b *appBackend) signatureFailures() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.badSigs
}

// gatewayEnv is a real gateway in proxy mode on a loopback server.
type gatewayEnv struct {
	gw          *livegate.Gateway
	px          *proxy.Proxy
	url         string
	disconnects atomic.Int64
}

func newGatewayEnv(t *testing.T, b *appBackend, mut func(*proxy.Config)) *gatewayEnv {
	t.Helper()
	return newGatewayEnvWith(t, b, mut, nil)
}

// newGatewayEnvWith is newGatewayEnv with gwMut applied to the gateway's
// configuration.
func newGatewayEnvWith(t *testing.T, b *appBackend, mut func(*proxy.Config), gwMut func(*livegate.Config)) *gatewayEnv {
	t.Helper()
	cfg := proxy.Config{
		Backend: b.srv.URL,
		Secret:  testSecret,
		Routes:  proxy.Routes{Connect: true, Subscribe: true, Disconnect: true, Events: []string{"send"}},
		Logger:  slog.New(slog.DiscardHandler),
	}
	if mut != nil {
		mut(&cfg)
	}
	px, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &gatewayEnv{px: px}
	off := ratelimit.Rule{Limit: -1}
	gcfg := livegate.Config{
		TokenHMACSecret:          []byte("gateway-token-secret-0123456789abcdef"),
		ConnectHook:              px.ConnectHook(),
		AllowConnectWithoutToken: true,
		OnDisconnect: func(info livegate.DisconnectInfo) {
			px.OnDisconnect(info)
			e.disconnects.Add(1)
		},
		Namespaces: []policy.NamespaceConfig{
			{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: 10},
		},
		Limits: livegate.Limits{
			AttemptsPerIP: off, AttemptsPerUser: off, TokensPerUser: off, TokensPerIP: off,
			ConnsPerIP: -1, ConnsPerUser: -1, Cooldown: -1,
		},
	}
	if gwMut != nil {
		gwMut(&gcfg)
	}
	gw, err := livegate.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	if az := px.Authorizer(); az != nil {
		if err := gw.Authorize("room", az); err != nil {
			t.Fatal(err)
		}
	}
	if err := px.Register(gw); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	})
	e.gw, e.url = gw, "ws"+strings.TrimPrefix(srv.URL, "http")
	return e
}

func grantAlice(map[string]any) (int, string) {
	return 200, `{"user":"alice","session":"s1","channels":["room:lobby"]}`
}

// TestGatewayConnectThroughBackend: the backend decides who the client
// is; a Livegate-Signature header the client put on the upgrade does not
// reach the backend, which sees only the gateway's valid signature.
func TestGatewayConnectThroughBackend(t *testing.T) {
	t.Parallel()
	b := newAppBackend(t)
	b.on("/connect", grantAlice)
	e := newGatewayEnv(t, b, nil)
	forged := "v1=" + strings.Repeat("ab", 32)
	c := wstest.Dial(t, e.url, http.Header{
		"Cookie":             {"app_session=xyz"},
		"Livegate-Signature": {forged},
		"Livegate-Timestamp": {"1"},
		"X-Secret-Internal":  {"no"},
	})
	res := c.Connect(protocol.ConnectParams{Data: json.RawMessage(`{"room":"lobby"}`)})
	if res.User != "alice" {
		t.Fatalf("user %q, want the backend's alice", res.User)
	}
	if _, ok := res.Channels["room:lobby"]; !ok {
		t.Fatalf("server-side channels %v", res.Channels)
	}
	body := b.lastBody("/connect")
	if body["conn_id"] != res.Client || body["client_ip"] != "127.0.0.1" || body["identity"] != nil {
		t.Fatalf("connect body %v (client %q)", body, res.Client)
	}
	if d, _ := body["data"].(map[string]any); d["room"] != "lobby" {
		t.Fatalf("connect data %v", body["data"])
	}
	h := b.lastHeader("/connect")
	if got := h.Values("Livegate-Signature"); len(got) != 1 || got[0] == forged {
		t.Fatalf("backend saw signatures %q", got)
	}
	if h.Get("Livegate-Timestamp") == "1" || h.Get("X-Secret-Internal") != "" || h.Get("Cookie") != "app_session=xyz" {
		t.Fatalf("backend headers %v", h)
	}
	if b.signatureFailures() != 0 {
		t.Fatal("backend refused a gateway signature")
	}
	// The server-side subscription works.
	if _, err := e.gw.Publish(context.Background(), "room:lobby", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if p := c.Push(); p.Channel != "room:lobby" || string(p.Data) != `{"n":1}` {
		t.Fatalf("push %+v", p)
	}
	// Closing tells the backend.
	_ = c.WS.Close(websocket.StatusNormalClosure, "")
	poll.Until(t, "disconnect notification", func() bool { return b.count("/disconnect") == 1 })
	if d := b.lastBody("/disconnect"); d["conn_id"] != res.Client || d["identity"].(map[string]any)["sub"] != "alice" || d["client_ip"] != "127.0.0.1" {
		t.Fatalf("disconnect body %v", d)
	}
}

func TestGatewayConnectDenied(t *testing.T) {
	t.Parallel()
	b := newAppBackend(t)
	b.on("/connect", func(map[string]any) (int, string) { return 200, `{"deny":true}` })
	e := newGatewayEnv(t, b, nil)
	c := wstest.Dial(t, e.url, nil)
	c.Command(1, protocol.MethodConnect, protocol.ConnectParams{})
	c.ExpectClose(protocol.CloseForbidden)
	poll.Until(t, "no connections", func() bool { return e.gw.Stats().Connections == 0 })
}

// TestGatewayBackendFailures: whatever goes wrong with the backend, the
// client gets the generic 4500, no connection stays open, and no
// disconnect is reported for a connection that never connected.
func TestGatewayBackendFailures(t *testing.T) {
	t.Parallel()
	for name, answer := range map[string]func(map[string]any) (int, string){
		"5xx":       func(map[string]any) (int, string) { return 503, `{"user":"alice"}` },
		"malformed": func(map[string]any) (int, string) { return 200, `{"user":"alice","root":true}` },
		"oversize":  func(map[string]any) (int, string) { return 200, `{"user":"` + strings.Repeat("a", 70<<10) + `"}` },
		"down":      nil,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newAppBackend(t)
			b.on("/connect", answer)
			if answer == nil {
				b.srv.Close()
			}
			e := newGatewayEnv(t, b, nil)
			c := wstest.Dial(t, e.url, nil)
			c.Command(1, protocol.MethodConnect, protocol.ConnectParams{})
			c.ExpectClose(protocol.CloseInternal)
			poll.Until(t, "no connections", func() bool { return e.gw.Stats().Connections == 0 })
			if e.disconnects.Load() != 0 {
				t.Fatal("OnDisconnect called for a connection that never connected")
			}
		})
	}
}

// TestGatewayEventAllowList: only listed events reach the backend; the
// backend's publications go out through the gateway.
func TestGatewayEventAllowList(t *testing.T) {
	t.Parallel()
	b := newAppBackend(t)
	b.on("/connect", grantAlice)
	b.on("/event", func(body map[string]any) (int, string) {
		text := body["payload"].(map[string]any)["text"].(string)
		out, _ := json.Marshal(map[string]any{
			"reply":   map[string]any{"accepted": true},
			"publish": []map[string]any{{"channel": "room:lobby", "data": map[string]string{"from": "alice", "text": text}}},
		})
		return 200, string(out)
	})
	e := newGatewayEnv(t, b, nil)
	c := wstest.Dial(t, e.url, nil)
	res := c.Connect(protocol.ConnectParams{Data: json.RawMessage(`null`)})
	before := b.total()
	c.Command(2, protocol.MethodEvent, protocol.EventParams{Name: "admin_reset", Payload: json.RawMessage(`{}`)})
	if r := c.Reply(2); r.Error == nil || r.Error.Code != protocol.CodeNotAvailable {
		t.Fatalf("unlisted event: %+v", r)
	}
	if n := b.total(); n != before {
		t.Fatalf("unlisted event reached the backend (%d requests)", n-before)
	}
	c.Command(3, protocol.MethodEvent, protocol.EventParams{Name: "send", Payload: json.RawMessage(`{"text":"hello"}`)})
	var sawPush, sawReply bool
	for !sawPush || !sawReply {
		f, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.Push != nil:
			if f.Push.Channel != "room:lobby" || string(f.Push.Data) != `{"from":"alice","text":"hello"}` {
				t.Fatalf("push %+v", f.Push)
			}
			sawPush = true
		case f.ID == 3:
			if f.Error != nil || string(f.Result) != `{"accepted":true}` {
				t.Fatalf("reply %+v", f)
			}
			sawReply = true
		}
	}
	ev := b.lastBody("/event")
	if ev["event"] != "send" || ev["identity"].(map[string]any)["sub"] != "alice" || ev["conn_id"] != res.Client || ev["client_ip"] != "127.0.0.1" {
		t.Fatalf("event body %v", ev)
	}
	// A backend error code passes through; a backend failure is generic.
	b.on("/event", func(map[string]any) (int, string) { return 200, `{"error":"forbidden"}` })
	c.Command(4, protocol.MethodEvent, protocol.EventParams{Name: "send", Payload: json.RawMessage(`{}`)})
	if r := c.Reply(4); r.Error == nil || r.Error.Code != protocol.CodeForbidden {
		t.Fatalf("backend error: %+v", r)
	}
	b.on("/event", func(map[string]any) (int, string) { return 500, `{"error":"db down: password=hunter2"}` })
	c.Command(5, protocol.MethodEvent, protocol.EventParams{Name: "send", Payload: json.RawMessage(`{}`)})
	r := c.Reply(5)
	if r.Error == nil || r.Error.Code != protocol.CodeUnavailable || strings.Contains(r.Error.Message, "hunter2") {
		t.Fatalf("backend failure: %+v", r.Error)
	}
}

func TestGatewaySubscribeAsksBackend(t *testing.T) {
	t.Parallel()
	b := newAppBackend(t)
	b.on("/connect", func(map[string]any) (int, string) { return 200, `{"user":"alice"}` })
	b.on("/subscribe", func(body map[string]any) (int, string) {
		if body["channel"] == "room:lobby" && body["identity"].(map[string]any)["sub"] == "alice" {
			return 200, `{"allow":true}`
		}
		return 200, `{"allow":false}`
	})
	e := newGatewayEnv(t, b, nil)
	c := wstest.Dial(t, e.url, nil)
	res := c.Connect(protocol.ConnectParams{Data: json.RawMessage(`null`)})
	c.Command(2, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: "room:lobby"})
	if r := c.Reply(2); r.Error != nil {
		t.Fatalf("allowed subscribe: %+v", r.Error)
	}
	if sb := b.lastBody("/subscribe"); sb["conn_id"] != res.Client || sb["client_ip"] != "127.0.0.1" {
		t.Fatalf("subscribe body %v (client %q)", sb, res.Client)
	}
	c.Command(3, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: "room:secret"})
	if r := c.Reply(3); r.Error == nil || r.Error.Code != protocol.CodeForbidden {
		t.Fatalf("denied subscribe: %+v", r)
	}
	b.on("/subscribe", func(map[string]any) (int, string) { return 502, `` })
	c.Command(4, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: "room:other"})
	if r := c.Reply(4); r.Error == nil || r.Error.Code != protocol.CodeForbidden {
		t.Fatalf("subscribe with backend failing: %+v", r)
	}
}

// TestGatewayCircuitOpenRefusesConnects: once the breaker opened, new
// connections fail fast with 4500 and the backend gets no more requests.
func TestGatewayCircuitOpenRefusesConnects(t *testing.T) {
	t.Parallel()
	b := newAppBackend(t)
	b.on("/connect", func(map[string]any) (int, string) { return 500, `` })
	e := newGatewayEnv(t, b, func(c *proxy.Config) {
		c.Breaker = proxy.BreakerConfig{Failures: 2, OpenFor: time.Hour}
	})
	for range 4 {
		c := wstest.Dial(t, e.url, nil)
		c.Command(1, protocol.MethodConnect, protocol.ConnectParams{})
		c.ExpectClose(protocol.CloseInternal)
	}
	if n := b.count("/connect"); n != 2 {
		t.Fatalf("backend got %d connects, want 2", n)
	}
}

// TestGatewayConnAndClientIPReachBackend: subscribe, event and disconnect
// bodies carry each connection's own id and its client IP as the gateway
// resolved it (here from X-Forwarded-For set by a trusted proxy), never
// another connection's.
func TestGatewayConnAndClientIPReachBackend(t *testing.T) {
	t.Parallel()
	b := newAppBackend(t)
	b.on("/connect", func(map[string]any) (int, string) { return 200, `{"user":"alice"}` })
	b.on("/subscribe", func(map[string]any) (int, string) { return 200, `{"allow":true}` })
	b.on("/event", func(map[string]any) (int, string) { return 200, `{"reply":true}` })
	e := newGatewayEnvWith(t, b, nil, func(c *livegate.Config) { c.TrustedProxies = []string{"127.0.0.1"} })

	type client struct {
		c  *wstest.Conn
		id string
		ip string
	}
	var clients []client
	for _, ip := range []string{"203.0.113.9", "2001:db8::7"} {
		c := wstest.Dial(t, e.url, http.Header{"X-Forwarded-For": {"198.51.100.66, " + ip}})
		res := c.Connect(protocol.ConnectParams{})
		if res.Client == "" {
			t.Fatal("no connection id")
		}
		if cb := b.lastBody("/connect"); cb["conn_id"] != res.Client || cb["client_ip"] != ip {
			t.Fatalf("connect body %v, want %q from %s", cb, res.Client, ip)
		}
		clients = append(clients, client{c: c, id: res.Client, ip: ip})
	}
	if clients[0].id == clients[1].id {
		t.Fatal("two connections share an id")
	}
	check := func(route string, body map[string]any, cl client) {
		t.Helper()
		if body["conn_id"] != cl.id || body["client_ip"] != cl.ip {
			t.Fatalf("%s body %v, want conn_id %q client_ip %q", route, body, cl.id, cl.ip)
		}
	}
	for i, cl := range clients {
		cl.c.Command(2, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: "room:lobby"})
		if r := cl.c.Reply(2); r.Error != nil {
			t.Fatalf("client %d subscribe: %+v", i, r.Error)
		}
		check("subscribe", b.lastBody("/subscribe"), cl)
		cl.c.Command(3, protocol.MethodEvent, protocol.EventParams{Name: "send", Payload: json.RawMessage(`{}`)})
		if r := cl.c.Reply(3); r.Error != nil || string(r.Result) != "true" {
			t.Fatalf("client %d event: %+v", i, r)
		}
		check("event", b.lastBody("/event"), cl)
	}
	for i, cl := range clients {
		_ = cl.c.WS.Close(websocket.StatusNormalClosure, "")
		poll.Until(t, "disconnect notification", func() bool { return b.count("/disconnect") == i+1 })
		check("disconnect", b.lastBody("/disconnect"), cl)
	}
}
