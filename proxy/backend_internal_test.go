package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/poll"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// backend is a real HTTP backend that verifies every request with the
// package's Verifier and answers with reply.
type backend struct {
	t        *testing.T
	srv      *httptest.Server
	verifier *Verifier
	requests atomic.Int64

	mu     sync.Mutex
	reply  func(w http.ResponseWriter, path string, body []byte)
	bodies []map[string]any
	heads  []http.Header
	errs   []error
}

func newBackend(t *testing.T, reply func(w http.ResponseWriter, path string, body []byte)) *backend {
	t.Helper()
	v, err := NewVerifier(VerifierConfig{Secrets: [][]byte{secret}})
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{t: t, verifier: v, reply: reply}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = b.verifier.Verify(r, body)
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		b.mu.Lock()
		b.bodies = append(b.bodies, m)
		b.heads = append(b.heads, r.Header.Clone())
		b.errs = append(b.errs, err)
		reply := b.reply
		b.mu.Unlock()
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		reply(w, r.URL.Path, body)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) setReply(f func(w http.ResponseWriter, path string, body []byte)) {
	b.mu.Lock()
	b.reply = f
	b.mu.Unlock()
}

func (b *backend) last() (map[string]any, http.Header) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.bodies) == 0 {
		b.t.Fatal("backend got no request")
	}
	if err := b.errs[len(b.errs)-1]; err != nil {
		b.t.Fatalf("backend could not verify the gateway's request: %v", err)
	}
	return b.bodies[len(b.bodies)-1], b.heads[len(b.heads)-1]
}

func jsonReply(s string) func(w http.ResponseWriter, path string, body []byte) {
	return func(w http.ResponseWriter, _ string, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, s)
	}
}

func newTestProxy(t *testing.T, b *backend, mut func(*Config)) *Proxy {
	t.Helper()
	cfg := Config{
		Backend: b.srv.URL + "/lg/",
		Secret:  secret,
		Routes:  Routes{Connect: true, Subscribe: true, Disconnect: true, Events: []string{"send"}},
	}
	if mut != nil {
		mut(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConnectForwardsAndGrants(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).Unix()
	b := newBackend(t, jsonReply(`{"user":"alice","session":"s1","tenant":"acme","groups":["staff"],"perms":["chat"],"expires_at":`+
		itoa(exp)+`,"channels":["room:lobby"]}`))
	p := newTestProxy(t, b, nil)
	h := http.Header{
		"Cookie":             {"session=abc"},
		"Authorization":      {"Bearer xyz"},
		"User-Agent":         {"test-browser"},
		"X-Internal":         {"secret"},
		"Livegate-Signature": {"v1=" + strings.Repeat("0", 64)},
		"Livegate-Nonce":     {"AAAAAAAAAAAAAAAAAAAAAA"},
		"Upgrade":            {"websocket"},
		"Sec-Websocket-Key":  {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	tokExp := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	tok := &auth.Identity{User: "alice-token", TokenID: "jti-1", ExpiresAt: tokExp, Groups: []string{"g"}}
	id, chans, err := p.connect(context.Background(), "9f4e2a71d03b-1", "::ffff:203.0.113.9", h, tok, "raw.jwt.token", json.RawMessage(`{"room":"lobby"}`))
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "alice" || id.Session != "s1" || id.Tenant != "acme" || len(id.Groups) != 1 || id.Perms[0] != "chat" {
		t.Fatalf("identity %+v", id)
	}
	if !id.ExpiresAt.Equal(tokExp) {
		t.Fatalf("expiry %v, want the token's earlier %v", id.ExpiresAt, tokExp)
	}
	if id.TokenID != "jti-1" {
		t.Fatalf("token id %q lost", id.TokenID)
	}
	if len(chans) != 1 || chans[0] != "room:lobby" {
		t.Fatalf("channels %v", chans)
	}
	body, head := b.last()
	if body["conn_id"] != "9f4e2a71d03b-1" || body["client_ip"] != "203.0.113.9" {
		t.Fatalf("body %v", body)
	}
	if _, ok := body["token"]; ok {
		t.Fatal("raw token forwarded without ForwardToken")
	}
	if ident := body["identity"].(map[string]any); ident["sub"] != "alice-token" || ident["jti"] != "jti-1" {
		t.Fatalf("identity claims %v", ident)
	}
	if d := body["data"].(map[string]any); d["room"] != "lobby" {
		t.Fatalf("data %v", body["data"])
	}
	if head.Get("Cookie") != "session=abc" || head.Get("Authorization") != "Bearer xyz" || head.Get("User-Agent") != "test-browser" {
		t.Fatalf("forwarded headers missing: %v", head)
	}
	if head.Get("X-Internal") != "" || head.Get("Sec-Websocket-Key") != "" || head.Get("Upgrade") != "" {
		t.Fatalf("unlisted header forwarded: %v", head)
	}
	if head.Get("Livegate-Nonce") == "AAAAAAAAAAAAAAAAAAAAAA" || len(head.Values("Livegate-Signature")) != 1 ||
		head.Get("Livegate-Signature") == "v1="+strings.Repeat("0", 64) {
		t.Fatalf("client's Livegate-* headers reached the backend: %v", head)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestConnectForwardToken(t *testing.T) {
	t.Parallel()
	b := newBackend(t, jsonReply(`{"user":"bob"}`))
	p := newTestProxy(t, b, func(c *Config) { c.ForwardToken = true; c.ForwardHeaders = []string{} })
	_, _, err := p.connect(context.Background(), "a-1", "127.0.0.1", http.Header{"Cookie": {"x=1"}}, nil, "raw.jwt", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, head := b.last()
	if body["token"] != "raw.jwt" || body["identity"] != nil {
		t.Fatalf("body %v", body)
	}
	if _, ok := body["data"]; ok {
		t.Fatalf("absent data sent: %v", body)
	}
	if head.Get("Cookie") != "" {
		t.Fatal("cookie forwarded with an empty ForwardHeaders")
	}
}

func TestConnectConnectionHeaderNamesAreNotForwarded(t *testing.T) {
	t.Parallel()
	b := newBackend(t, jsonReply(`{"user":"bob"}`))
	p := newTestProxy(t, b, nil)
	h := http.Header{"Connection": {"Upgrade, Cookie"}, "Cookie": {"x=1"}, "User-Agent": {"ua"}}
	if _, _, err := p.connect(context.Background(), "a-1", "127.0.0.1", h, nil, "", nil); err != nil {
		t.Fatal(err)
	}
	_, head := b.last()
	if head.Get("Cookie") != "" || head.Get("User-Agent") != "ua" {
		t.Fatalf("headers %v", head)
	}
}

func TestConnectDeny(t *testing.T) {
	t.Parallel()
	b := newBackend(t, jsonReply(`{"deny":true}`))
	p := newTestProxy(t, b, nil)
	_, _, err := p.connect(context.Background(), "a-1", "127.0.0.1", nil, nil, "", nil)
	if !errors.Is(err, ErrDenied) || errors.Is(err, ErrBackend) {
		t.Fatalf("got %v, want ErrDenied only", err)
	}
}

func TestConnectFailures(t *testing.T) {
	t.Parallel()
	past := itoa(time.Now().Add(-time.Minute).Unix())
	cases := []struct {
		name  string
		reply func(w http.ResponseWriter, path string, body []byte)
		want  error
	}{
		{"500", func(w http.ResponseWriter, _ string, _ []byte) { http.Error(w, "boom", 500) }, ErrBadResponse},
		{"403 status", func(w http.ResponseWriter, _ string, _ []byte) { http.Error(w, "no", http.StatusForbidden) }, ErrBadResponse},
		{"redirect", func(w http.ResponseWriter, _ string, _ []byte) {
			w.Header().Set("Location", "https://elsewhere.test/")
			w.WriteHeader(http.StatusFound)
		}, ErrBadResponse},
		{"not json", jsonReply(`<html>`), ErrBadResponse},
		{"wrong content type", func(w http.ResponseWriter, _ string, _ []byte) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, `{"user":"alice"}`)
		}, ErrBadResponse},
		{"unknown field", jsonReply(`{"user":"alice","admin":true}`), ErrBadResponse},
		{"case-folded field", jsonReply(`{"USER":"alice"}`), ErrBadResponse},
		{"duplicate key", jsonReply(`{"user":"alice","user":"root"}`), ErrBadResponse},
		{"trailing data", jsonReply(`{"user":"alice"}{"user":"root"}`), ErrBadResponse},
		{"array", jsonReply(`[{"user":"alice"}]`), ErrBadResponse},
		{"no user", jsonReply(`{"session":"s"}`), ErrBadResponse},
		{"control char in user", jsonReply(`{"user":"al\nice"}`), ErrBadResponse},
		{"expired", jsonReply(`{"user":"alice","expires_at":` + past + `}`), ErrBadResponse},
		{"too many channels", jsonReply(`{"user":"alice","channels":[` + strings.Repeat(`"a:b",`, MaxChannels) + `"a:b"]}`), ErrBadResponse},
		{"oversize", jsonReply(`{"user":"alice","session":"` + strings.Repeat("x", 70<<10) + `"}`), ErrResponseTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, tc.reply)
			p := newTestProxy(t, b, nil)
			id, chans, err := p.connect(context.Background(), "a-1", "127.0.0.1", nil, nil, "", nil)
			if !errors.Is(err, ErrBackend) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want ErrBackend and %v", err, tc.want)
			}
			if errors.Is(err, ErrDenied) {
				t.Fatal("a failure reads as a deny")
			}
			if id.User != "" || chans != nil {
				t.Fatalf("partial grant %+v %v", id, chans)
			}
			if b.requests.Load() != 1 {
				t.Fatalf("backend got %d requests", b.requests.Load())
			}
		})
	}
}

func TestOversizeStreamedResponse(t *testing.T) {
	t.Parallel()
	// No Content-Length: the limit must hold while reading.
	b := newBackend(t, func(w http.ResponseWriter, _ string, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"reply":"`)
		w.(http.Flusher).Flush()
		for range 64 {
			io.WriteString(w, strings.Repeat("x", 1024))
		}
		io.WriteString(w, `"}`)
	})
	p := newTestProxy(t, b, func(c *Config) { c.MaxResponseBytes = 1024 })
	if _, err := p.event(context.Background(), "a-1", "127.0.0.1", auth.Identity{User: "u"}, "send", nil); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("got %v, want ErrResponseTooLarge", err)
	}
}

func TestBackendDownAndTimeout(t *testing.T) {
	t.Parallel()
	b := newBackend(t, jsonReply(`{}`))
	url := b.srv.URL
	b.srv.Close()
	p, err := New(Config{Backend: url, Secret: secret, Routes: Routes{Connect: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.connect(context.Background(), "a-1", "127.0.0.1", nil, nil, "", nil); !errors.Is(err, ErrBackend) {
		t.Fatalf("down: got %v", err)
	}

	release := make(chan struct{})
	slow := newBackend(t, func(w http.ResponseWriter, _ string, _ []byte) { <-release })
	t.Cleanup(func() { close(release) })
	p = newTestProxy(t, slow, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, _, err = p.connect(context.Background(), "a-1", "127.0.0.1", nil, nil, "", nil)
	if !errors.Is(err, ErrBackend) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: got %v", err)
	}
}

func TestInvalidConnIDNotForwarded(t *testing.T) {
	t.Parallel()
	b := newBackend(t, jsonReply(`{"user":"alice"}`))
	p := newTestProxy(t, b, nil)
	for _, id := range []string{"", "-1", "a b", "a\n1", strings.Repeat("a", 129), "a/../b", `a"b`} {
		if _, _, err := p.connect(context.Background(), id, "127.0.0.1", nil, nil, "", nil); !errors.Is(err, ErrInvalidConnID) {
			t.Errorf("connect %q: got %v", id, err)
		}
		if _, err := p.event(context.Background(), id, "127.0.0.1", auth.Identity{User: "u"}, "send", nil); !errors.Is(err, ErrInvalidConnID) {
			t.Errorf("event %q: got %v", id, err)
		}
		if err := p.subscribe(context.Background(), id, "127.0.0.1", auth.Identity{User: "u"}, "room:x"); !errors.Is(err, ErrInvalidConnID) {
			t.Errorf("subscribe %q: got %v", id, err)
		}
		if err := p.disconnect(context.Background(), id, "127.0.0.1", auth.Identity{User: "u"}, 1000, "bye"); !errors.Is(err, ErrInvalidConnID) {
			t.Errorf("disconnect %q: got %v", id, err)
		}
	}
	// An Authorizer called with a context the gateway did not pass has no
	// connection to name: it refuses without asking the backend.
	if err := p.Authorizer()(context.Background(), auth.Identity{User: "u"}, "room:x"); !errors.Is(err, ErrInvalidConnID) {
		t.Errorf("authorizer outside a connection: got %v", err)
	}
	if n := b.requests.Load(); n != 0 {
		t.Fatalf("backend got %d requests", n)
	}
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, _ string, body []byte) {
		var in SubscribeBody
		_ = json.Unmarshal(body, &in)
		w.Header().Set("Content-Type", "application/json")
		if in.Channel == "room:lobby" && in.Identity.Sub == "alice" && in.ConnID == "a-1" && in.ClientIP == "127.0.0.1" {
			io.WriteString(w, `{"allow":true}`)
			return
		}
		io.WriteString(w, `{"allow":false}`)
	})
	p := newTestProxy(t, b, nil)
	if err := p.subscribe(context.Background(), "a-1", "127.0.0.1", auth.Identity{User: "alice"}, "room:lobby"); err != nil {
		t.Fatal(err)
	}
	if err := p.subscribe(context.Background(), "a-1", "127.0.0.1", auth.Identity{User: "mallory"}, "room:lobby"); !errors.Is(err, ErrDenied) {
		t.Fatalf("got %v, want ErrDenied", err)
	}
	b.setReply(jsonReply(`{}`))
	if err := p.subscribe(context.Background(), "a-1", "127.0.0.1", auth.Identity{User: "alice"}, "room:lobby"); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("missing allow: got %v", err)
	}
}

func TestEventResponse(t *testing.T) {
	t.Parallel()
	b := newBackend(t, jsonReply(`{"reply":{"ok":1},"publish":[{"channel":"room:lobby","data":{"text":"hi"}}]}`))
	p := newTestProxy(t, b, nil)
	resp, err := p.event(context.Background(), "a-1", "::ffff:192.0.2.1", auth.Identity{User: "alice", Tenant: "t"}, "send", json.RawMessage(`{"text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Reply) != `{"ok":1}` || len(resp.Publish) != 1 || string(resp.Publish[0].Data) != `{"text":"hi"}` {
		t.Fatalf("response %+v", resp)
	}
	body, _ := b.last()
	if body["event"] != "send" || body["conn_id"] != "a-1" || body["client_ip"] != "192.0.2.1" || body["payload"].(map[string]any)["text"] != "hi" {
		t.Fatalf("body %v", body)
	}
	b.setReply(jsonReply(`{"publish":[{"channel":"room:lobby","data":1,"extra":true}]}`))
	if _, err := p.event(context.Background(), "a-1", "127.0.0.1", auth.Identity{User: "alice"}, "send", nil); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("unknown publication field: got %v", err)
	}
	b.setReply(jsonReply(`{"publish":[{"channel":"room:lobby"}]}`))
	if _, err := p.event(context.Background(), "a-1", "127.0.0.1", auth.Identity{User: "alice"}, "send", nil); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("publication without data: got %v", err)
	}
}

func TestDisconnectBody(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, _ string, _ []byte) { w.WriteHeader(http.StatusNoContent) })
	p := newTestProxy(t, b, nil)
	if err := p.disconnect(context.Background(), "a-1", "192.0.2.1", auth.Identity{User: "alice"}, 1000, "bye"); err != nil {
		t.Fatal(err)
	}
	body, _ := b.last()
	if body["conn_id"] != "a-1" || body["code"] != float64(1000) || body["client_ip"] != "192.0.2.1" {
		t.Fatalf("body %v", body)
	}
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, _ string, _ []byte) { http.Error(w, "down", http.StatusServiceUnavailable) })
	// The open period is long enough that the checks below run inside it
	// on any machine; the half-open transition is then waited for.
	const open = 2 * time.Second
	p := newTestProxy(t, b, func(c *Config) { c.Breaker = BreakerConfig{Failures: 3, OpenFor: open} })
	ctx := context.Background()
	for i := range 3 {
		if err := p.subscribe(ctx, "a-1", "127.0.0.1", auth.Identity{User: "u"}, "room:x"); errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrBackend) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if p.breaker.State() != gobreaker.StateOpen {
		t.Fatalf("state %v after 3 failures", p.breaker.State())
	}
	for range 5 {
		err := p.subscribe(ctx, "a-1", "127.0.0.1", auth.Identity{User: "u"}, "room:x")
		if p.breaker.State() != gobreaker.StateOpen {
			break // the open period ended on a very slow machine
		}
		if !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrBackend) {
			t.Fatalf("open circuit: got %v", err)
		}
		if _, _, err := p.connect(ctx, "a-1", "127.0.0.1", nil, nil, "", nil); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("open circuit, connect: got %v", err)
		}
	}
	if n := b.requests.Load(); n != 3 {
		t.Fatalf("backend got %d requests, want 3: the open circuit let calls through", n)
	}
	b.setReply(jsonReply(`{"allow":true}`))
	poll.Until(t, "the breaker to go half-open", func() bool { return p.breaker.State() == gobreaker.StateHalfOpen })
	if err := p.subscribe(ctx, "a-1", "127.0.0.1", auth.Identity{User: "u"}, "room:x"); err != nil {
		t.Fatalf("half-open probe: %v", err)
	}
	if n := b.requests.Load(); n != 4 {
		t.Fatalf("backend got %d requests, want 4", n)
	}
	if p.breaker.State() != gobreaker.StateClosed {
		t.Fatalf("state %v after a good probe", p.breaker.State())
	}
}

func TestDenyIsNotAFailure(t *testing.T) {
	t.Parallel()
	b := newBackend(t, jsonReply(`{"allow":false}`))
	p := newTestProxy(t, b, func(c *Config) { c.Breaker.Failures = 2 })
	for range 5 {
		if err := p.subscribe(context.Background(), "a-1", "127.0.0.1", auth.Identity{User: "u"}, "room:x"); !errors.Is(err, ErrDenied) {
			t.Fatalf("got %v", err)
		}
	}
	if p.breaker.State() != gobreaker.StateClosed {
		t.Fatal("denials opened the circuit")
	}
}

func TestCallerGoneDoesNotTrip(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, _ string, _ []byte) { <-release })
	t.Cleanup(func() { close(release) })
	p := newTestProxy(t, b, func(c *Config) { c.Breaker.Failures = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		poll.Until(t, "the backend request", func() bool { return b.requests.Load() == 1 })
		cancel()
	}()
	if err := p.subscribe(ctx, "a-1", "127.0.0.1", auth.Identity{User: "u"}, "room:x"); !errors.Is(err, ErrBackend) {
		t.Fatalf("got %v", err)
	}
	if p.breaker.State() != gobreaker.StateClosed {
		t.Fatal("a departed client opened the circuit")
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	ok := Config{Backend: "https://app.test", Secret: secret}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no backend":           func(c *Config) { c.Backend = "" },
		"http remote":          func(c *Config) { c.Backend = "http://app.test" },
		"ftp":                  func(c *Config) { c.Backend = "ftp://app.test" },
		"relative":             func(c *Config) { c.Backend = "/connect" },
		"userinfo":             func(c *Config) { c.Backend = "https://u:p@app.test" },
		"query":                func(c *Config) { c.Backend = "https://app.test/?a=1" },
		"short secret":         func(c *Config) { c.Secret = make([]byte, 31) },
		"negative timeout":     func(c *Config) { c.Timeout = -1 },
		"negative max":         func(c *Config) { c.MaxResponseBytes = -1 },
		"bad event":            func(c *Config) { c.Routes.Events = []string{"Send"} },
		"duplicate event":      func(c *Config) { c.Routes.Events = []string{"send", "send"} },
		"livegate header":      func(c *Config) { c.ForwardHeaders = []string{"livegate-signature"} },
		"hop-by-hop header":    func(c *Config) { c.ForwardHeaders = []string{"Connection"} },
		"host header":          func(c *Config) { c.ForwardHeaders = []string{"Host"} },
		"websocket header":     func(c *Config) { c.ForwardHeaders = []string{"Sec-WebSocket-Key"} },
		"invalid header":       func(c *Config) { c.ForwardHeaders = []string{"X Bad"} },
		"path without slash":   func(c *Config) { c.Paths.Connect = "connect" },
		"path with query":      func(c *Config) { c.Paths.Event = "/event?x=1" },
		"negative open period": func(c *Config) { c.Breaker.OpenFor = -1 },
	} {
		c := ok
		mut(&c)
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1/x", "http://[::1]:9"} {
		c := ok
		c.Backend = u
		if _, err := New(c); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	c := ok
	c.Backend, c.InsecureAllowHTTP = "http://app.test", true
	if _, err := New(c); err != nil {
		t.Errorf("InsecureAllowHTTP: %v", err)
	}
}
