package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/client"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// waitLimit bounds every wait in these tests; nothing should come close.
const waitLimit = 10 * time.Second

var testSecret = []byte("client-test-secret-0123456789abcdef")

// roomNamespace is the namespace most tests use.
func roomNamespace(history int) []policy.NamespaceConfig {
	return []policy.NamespaceConfig{
		{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: history},
		{Name: "chat", Subscribe: policy.SubscribeAuthenticated, Publish: policy.Authenticated, HistorySize: 10},
	}
}

// newGateway returns a gateway for cfg (secret filled in), shut down at
// the end of the test.
func newGateway(t *testing.T, cfg livegate.Config) *livegate.Gateway {
	t.Helper()
	if cfg.TokenHMACSecret == nil {
		cfg.TokenHMACSecret = testSecret
	}
	gw, err := livegate.New(cfg)
	if err != nil {
		t.Fatalf("livegate.New: %v", err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	return gw
}

// switchServer serves /ws with whichever gateway is set; with none it
// answers 503, so clients cannot connect.
type switchServer struct {
	gw  atomic.Pointer[livegate.Gateway]
	srv *httptest.Server
}

func newSwitchServer(t *testing.T, gw *livegate.Gateway) *switchServer {
	t.Helper()
	s := &switchServer{}
	s.gw.Store(gw)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		g := s.gw.Load()
		if g == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		g.ServeHTTP(w, r)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *switchServer) set(gw *livegate.Gateway) { s.gw.Store(gw) }

func (s *switchServer) url() string { return wsURL(s.srv) + "/ws" }

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

// tokens mints connect tokens for alice and counts the calls.
type tokens struct {
	signer *auth.Signer
	ttl    time.Duration
	calls  atomic.Int32
	// override, when set, may replace the token of call n (from 1).
	override func(n int32, tok string) (string, error)

	mu      sync.Mutex
	expires []time.Time
}

func newTokens(t *testing.T, ttl time.Duration) *tokens {
	t.Helper()
	s, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: testSecret})
	if err != nil {
		t.Fatalf("auth.NewSigner: %v", err)
	}
	return &tokens{signer: s, ttl: ttl}
}

func (tk *tokens) Token(context.Context) (string, error) {
	n := tk.calls.Add(1)
	tok, id, err := tk.signer.Sign(auth.Identity{User: "alice"}, auth.KindConnect, tk.ttl)
	if err != nil {
		return "", err
	}
	tk.mu.Lock()
	tk.expires = append(tk.expires, id.ExpiresAt)
	tk.mu.Unlock()
	if tk.override != nil {
		return tk.override(n, tok)
	}
	return tok, nil
}

func (tk *tokens) firstExpiry() time.Time {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.expires[0]
}

// recorder collects states, errors and events (pushes and resets) without
// ever blocking the client.
type recorder struct {
	mu      sync.Mutex
	states  []client.State
	errs    []error
	events  []string
	pushes  []client.Push
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) note(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) onState(s client.State) { r.note(func() { r.states = append(r.states, s) }) }
func (r *recorder) onError(err error)      { r.note(func() { r.errs = append(r.errs, err) }) }
func (r *recorder) onReset()               { r.note(func() { r.events = append(r.events, "reset") }) }
func (r *recorder) onPush(p client.Push) {
	r.note(func() {
		r.pushes = append(r.pushes, p)
		r.events = append(r.events, p.Channel+"#"+itoa(p.Offset)+"="+string(p.Data))
	})
}

// waitFor waits until cond (called under the lock) holds.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s; states %v, events %v, errors %v", what, r.states, r.events, r.errs)
		}
	}
}

func (r *recorder) count(s client.State) int {
	n := 0
	for _, x := range r.states {
		if x == s {
			n++
		}
	}
	return n
}

func (r *recorder) waitState(t *testing.T, s client.State, n int) {
	t.Helper()
	r.waitFor(t, itoa(uint64(n))+"x "+s.String(), func() bool { return r.count(s) >= n })
}

func (r *recorder) waitEvents(t *testing.T, n int) []string {
	t.Helper()
	r.waitFor(t, itoa(uint64(n))+" events", func() bool { return len(r.events) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) snapshotStates() []client.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.states)
}

func (r *recorder) snapshotErrors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// newClient returns a client for url with fast back-off, wired to rec and
// closed at the end of the test.
func newClient(t *testing.T, url string, tk *tokens, rec *recorder, mutate func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{
		URL:        url,
		Token:      tk.Token,
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
		OnState:    rec.onState,
		OnError:    rec.onError,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func mustPublish(t *testing.T, gw *livegate.Gateway, channel string, n int) {
	t.Helper()
	if _, err := gw.Publish(context.Background(), channel, map[string]int{"n": n}); err != nil {
		t.Fatalf("Publish(%s, %d): %v", channel, n, err)
	}
}

// fakeServer runs script for every WebSocket connection, numbered from 1.
// Scripts must not call t.Fatal: they run on server goroutines and may
// outlive the test.
func fakeServer(t *testing.T, script func(n int, f *fakeConn)) string {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{protocol.Subprotocol}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		script(int(conns.Add(1)), &fakeConn{ws: ws, ctx: ctx})
	}))
	t.Cleanup(srv.Close)
	return wsURL(srv)
}

// fakeConn is the server side of one scripted connection.
type fakeConn struct {
	ws  *websocket.Conn
	ctx context.Context
}

// read returns the next command, or ok false when the connection ended.
func (f *fakeConn) read() (protocol.Command, bool) {
	_, b, err := f.ws.Read(f.ctx)
	if err != nil {
		return protocol.Command{}, false
	}
	cmd, err := protocol.DecodeCommand(b)
	return cmd, err == nil
}

func (f *fakeConn) send(v any) {
	b, _ := json.Marshal(v)
	_ = f.ws.Write(f.ctx, websocket.MessageText, b)
}

func (f *fakeConn) reply(id uint64, result any) {
	r, _ := json.Marshal(result)
	f.send(protocol.Reply{ID: id, Result: r})
}

func (f *fakeConn) push(channel string, offset uint64, epoch string, data string) {
	f.send(map[string]any{"push": protocol.Push{Channel: channel, Offset: offset, Epoch: epoch, Data: json.RawMessage(data)}})
}

// accept reads connect and accepts it; ok false if anything else came.
func (f *fakeConn) accept() bool {
	cmd, ok := f.read()
	if !ok || cmd.Method != protocol.MethodConnect {
		return false
	}
	f.reply(cmd.ID, protocol.ConnectResult{Client: "fake", User: "alice", Expires: time.Now().Add(time.Hour).Unix(), Ping: 25})
	return true
}

// drain reads until the client goes away.
func (f *fakeConn) drain() {
	for {
		if _, _, err := f.ws.Read(f.ctx); err != nil {
			return
		}
	}
}

func asCloseError(err error) (*client.CloseError, bool) {
	var ce *client.CloseError
	ok := errors.As(err, &ce)
	return ce, ok
}
