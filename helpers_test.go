package livegate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// recorder is a real audit.Sink that keeps events for assertions.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) has(typ, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Type == typ && (reason == "" || e.Reason == reason) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type env struct {
	gw     *livegate.Gateway
	srv    *httptest.Server
	signer *auth.Signer
	events *recorder
	url    string
}

func defaultNamespaces() []policy.NamespaceConfig {
	return []policy.NamespaceConfig{
		{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: 100},
		{Name: "chat", Subscribe: policy.SubscribeAuthenticated, Publish: policy.Authenticated, HistorySize: 10},
		{Name: "small", Subscribe: policy.SubscribeAuthenticated, HistorySize: 2},
	}
}

func newEnv(t testing.TB, mutate func(*livegate.Config)) *env {
	t.Helper()
	rec := &recorder{}
	cfg := livegate.Config{
		TokenHMACSecret: testSecret,
		Namespaces:      defaultNamespaces(),
		SecurityEvents:  rec,
		// Tests open many connections from 127.0.0.1; the limits have
		// tests of their own (limits_test.go) that set them.
		Limits: noLimits(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := livegate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewServer(mux)
	signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	})
	return &env{gw: gw, srv: srv, signer: signer, events: rec, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

func (e *env) token(t testing.TB, user string) string {
	t.Helper()
	tok, _, err := e.signer.Sign(auth.Identity{User: user}, auth.KindConnect, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signClaims signs arbitrary claims with method and key, for forged tokens.
func signClaims(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func validClaims(user string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": user, "aud": "livegate", "kind": "connect",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// rawConn is a test client speaking the wire protocol by hand.
type rawConn struct {
	t  testing.TB
	ws *websocket.Conn
}

func (e *env) dial(t testing.TB) *rawConn {
	t.Helper()
	return e.dialURL(t, e.url)
}

func (e *env) dialURL(t testing.TB, url string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &rawConn{t: t, ws: ws}
}

// connect dials and authenticates as user.
func (e *env) connect(t testing.TB, user string) *rawConn {
	t.Helper()
	c := e.dial(t)
	c.send(`{"id":1,"method":"connect","params":{"token":"` + e.token(t, user) + `"}}`)
	r := c.reply(1)
	if r.Error != nil {
		t.Fatalf("connect: %+v", r.Error)
	}
	return c
}

func (c *rawConn) send(frame string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawConn) sendCmd(id uint64, method string, params any) {
	c.t.Helper()
	p, err := json.Marshal(params)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := json.Marshal(protocol.Command{ID: id, Method: method, Params: p})
	c.send(string(b))
}

// read returns the next frame's bytes.
func (c *rawConn) read() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	return b, err
}

func (c *rawConn) frame() protocol.ServerFrame {
	c.t.Helper()
	b, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f protocol.ServerFrame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("bad frame %s: %v", b, err)
	}
	return f
}

// reply reads frames until the reply to id, failing on anything else.
func (c *rawConn) reply(id uint64) protocol.ServerFrame {
	c.t.Helper()
	f := c.frame()
	if f.Push != nil || f.ID != id {
		c.t.Fatalf("want reply %d, got %+v", id, f)
	}
	return f
}

func (c *rawConn) rawReply() string {
	c.t.Helper()
	b, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return string(b)
}

func (c *rawConn) push() *protocol.Push {
	c.t.Helper()
	f := c.frame()
	if f.Push == nil {
		c.t.Fatalf("want push, got %+v", f)
	}
	return f.Push
}

// expectClose reads until the server closes and checks the code.
func (c *rawConn) expectClose(code protocol.CloseCode) {
	c.t.Helper()
	for {
		_, err := c.read()
		if err == nil {
			continue
		}
		got := websocket.CloseStatus(err)
		if got != websocket.StatusCode(code) {
			c.t.Fatalf("close: got %d (%v), want %d", got, err, code)
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) && strings.Contains(ce.Reason, "\n") {
			c.t.Fatalf("close reason not generic: %q", ce.Reason)
		}
		return
	}
}

// noLimits turns off the per-IP and per-user connection limits.
func noLimits() livegate.Limits {
	off := ratelimit.Rule{Limit: -1}
	return livegate.Limits{
		AttemptsPerIP: off, AttemptsPerUser: off, TokensPerUser: off, TokensPerIP: off,
		ConnsPerIP: -1, ConnsPerUser: -1, Cooldown: -1,
	}
}
