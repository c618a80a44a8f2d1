package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/client"
	"github.com/livegate/livegate/protocol"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	token := func(context.Context) (string, error) { return "t", nil }
	tests := []struct {
		name string
		cfg  client.Config
		ok   bool
	}{
		{"minimal", client.Config{URL: "ws://localhost/ws", Token: token}, true},
		{"https scheme", client.Config{URL: "https://example.com/ws", Token: token}, true},
		{"no url", client.Config{Token: token}, false},
		{"bad scheme", client.Config{URL: "ftp://example.com/ws", Token: token}, false},
		{"no host", client.Config{URL: "ws:///ws", Token: token}, false},
		{"no token", client.Config{URL: "ws://localhost/ws"}, false},
		{"negative backoff", client.Config{URL: "ws://localhost/ws", Token: token, MinBackoff: -1}, false},
		{"min above max", client.Config{URL: "ws://localhost/ws", Token: token, MinBackoff: time.Minute, MaxBackoff: time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := client.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New() error = %v, want ok=%v", err, tt.ok)
			}
			if c != nil {
				if got := c.State(); got != client.StateDisconnected {
					t.Errorf("new client state = %v, want disconnected", got)
				}
				_ = c.Close()
			}
		})
	}
}

func TestSubscribeReceivesPushes(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(100)})
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	c := newClient(t, srv.url(), newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)

	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if got := c.State(); got != client.StateConnected {
		t.Fatalf("State() = %v, want connected", got)
	}
	sub, err := c.Subscribe(ctx, "room:a", rec.onPush)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if sub.Channel() != "room:a" || sub.Position().Epoch == "" || sub.Position().Offset != 0 {
		t.Fatalf("fresh subscription: channel %q position %+v", sub.Channel(), sub.Position())
	}
	for i := 1; i <= 3; i++ {
		mustPublish(t, gw, "room:a", i)
	}
	got := rec.waitEvents(t, 3)
	want := []string{`room:a#1={"n":1}`, `room:a#2={"n":2}`, `room:a#3={"n":3}`}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if pos := sub.Position(); pos.Offset != 3 || pos.Epoch != rec.pushes[2].Epoch {
		t.Fatalf("Position() = %+v, want offset 3 in epoch %q", pos, rec.pushes[2].Epoch)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := rec.snapshotStates(); !slices.Equal(got, []client.State{client.StateConnecting, client.StateConnected, client.StateClosed}) {
		t.Fatalf("states = %v", got)
	}
	if _, err := c.Subscribe(ctx, "room:b", rec.onPush); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

type echoPayload struct {
	Text string `json:"text"`
}

func TestCall(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	if err := gw.Handle("echo", livegate.HandlerFunc[echoPayload](func(_ context.Context, r *livegate.Request, p echoPayload) (any, error) {
		return echoPayload{Text: r.Identity.User + ": " + p.Text}, nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := gw.Handle("deny", livegate.HandlerFunc[json.RawMessage](func(context.Context, *livegate.Request, json.RawMessage) (any, error) {
		return nil, livegate.NewError(livegate.CodeForbidden)
	})); err != nil {
		t.Fatal(err)
	}
	srv := newSwitchServer(t, gw)
	c := newClient(t, srv.url(), newTokens(t, time.Minute), newRecorder(), nil)
	if err := c.Connect(testContext(t)); err != nil {
		t.Fatalf("Connect: %v", err)
	}

	tests := []struct {
		name     string
		event    string
		payload  any
		want     string // result text, when no error is expected
		wantCode string // protocol error code
	}{
		{"echo", "echo", echoPayload{Text: "hi"}, "alice: hi", ""},
		{"raw payload", "echo", json.RawMessage(`{"text":"raw"}`), "alice: raw", ""},
		{"unknown event", "nope", nil, "", protocol.CodeNotAvailable},
		{"invalid event name", "Not-Valid", nil, "", protocol.CodeNotAvailable},
		{"handler error", "deny", nil, "", protocol.CodeForbidden},
		{"bad payload", "echo", map[string]any{"text": "x", "admin": true}, "", protocol.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out echoPayload
			err := c.Call(testContext(t), tt.event, tt.payload, &out)
			if tt.wantCode == "" {
				if err != nil || out.Text != tt.want {
					t.Fatalf("Call = %v, %+v; want %q", err, out, tt.want)
				}
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != tt.wantCode {
				t.Fatalf("Call error = %v, want protocol code %s", err, tt.wantCode)
			}
		})
	}
	t.Run("nil result", func(t *testing.T) {
		t.Parallel()
		if err := c.Call(testContext(t), "echo", echoPayload{Text: "x"}, nil); err != nil {
			t.Fatalf("Call: %v", err)
		}
	})
	t.Run("invalid raw payload", func(t *testing.T) {
		t.Parallel()
		if err := c.Call(testContext(t), "echo", json.RawMessage(`{`), nil); err == nil {
			t.Fatal("Call with invalid JSON succeeded")
		}
	})
}

func TestPublish(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	c := newClient(t, srv.url(), newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := c.Subscribe(ctx, "chat:x", rec.onPush); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	pos, err := c.Publish(ctx, "chat:x", map[string]string{"text": "hello"})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if pos.Offset != 1 || pos.Epoch == "" {
		t.Fatalf("Publish position = %+v", pos)
	}
	got := rec.waitEvents(t, 1)
	if want := `chat:x#1={"text":"hello"}`; got[0] != want || rec.pushes[0].Epoch != pos.Epoch {
		t.Fatalf("event %q epoch %q, want %q epoch %q", got[0], rec.pushes[0].Epoch, want, pos.Epoch)
	}

	_, err = c.Publish(ctx, "room:x", "nope")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeForbidden {
		t.Fatalf("Publish to server-only namespace = %v, want forbidden", err)
	}
}

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	c := newClient(t, srv.url(), newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := c.Subscribe(ctx, "room:dup", rec.onPush); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	tests := []struct {
		name     string
		channel  string
		onPush   func(client.Push)
		wantCode string
		wantErr  error
	}{
		{"unknown namespace", "secret:x", rec.onPush, protocol.CodeForbidden, nil},
		{"invalid channel", "room:bad channel", rec.onPush, protocol.CodeForbidden, nil},
		{"duplicate", "room:dup", rec.onPush, "", client.ErrAlreadySubscribed},
		{"nil callback", "room:nil", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sub, err := c.Subscribe(testContext(t), tt.channel, tt.onPush)
			if err == nil || sub != nil {
				t.Fatalf("Subscribe(%q) = %v, %v; want an error", tt.channel, sub, err)
			}
			var pe *protocol.Error
			if tt.wantCode != "" && (!errors.As(err, &pe) || pe.Code != tt.wantCode) {
				t.Fatalf("Subscribe(%q) = %v, want code %s", tt.channel, err, tt.wantCode)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Subscribe(%q) = %v, want %v", tt.channel, err, tt.wantErr)
			}
		})
	}
}

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	c := newClient(t, srv.url(), newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	u, err := c.Subscribe(ctx, "room:u", rec.onPush)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, "room:v", rec.onPush); err != nil {
		t.Fatal(err)
	}
	if err := u.Unsubscribe(ctx); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := u.Unsubscribe(ctx); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	// Pushes of one connection arrive in order: if room:u were still
	// delivered it would come before room:v.
	mustPublish(t, gw, "room:u", 1)
	mustPublish(t, gw, "room:v", 2)
	got := rec.waitEvents(t, 1)
	if want := []string{`room:v#1={"n":2}`}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	// The channel can be subscribed again.
	if _, err := c.Subscribe(ctx, "room:u", rec.onPush); err != nil {
		t.Fatalf("Subscribe again: %v", err)
	}
}

func TestSubscribeWithSince(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	c := newClient(t, srv.url(), newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	sub, err := c.Subscribe(ctx, "room:s", rec.onPush)
	if err != nil {
		t.Fatal(err)
	}
	mustPublish(t, gw, "room:s", 1)
	rec.waitEvents(t, 1)
	saved := sub.Position()
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, gw, "room:s", 2)
	mustPublish(t, gw, "room:s", 3)

	sub, err = c.Subscribe(ctx, "room:s", rec.onPush, client.WithSince(saved), client.WithRecoveryReset(rec.onReset))
	if err != nil {
		t.Fatalf("Subscribe WithSince: %v", err)
	}
	mustPublish(t, gw, "room:s", 4)
	got := rec.waitEvents(t, 4)
	want := []string{`room:s#1={"n":1}`, `room:s#2={"n":2}`, `room:s#3={"n":3}`, `room:s#4={"n":4}`}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}

	// A position from another epoch cannot be recovered.
	sub, err = c.Subscribe(ctx, "room:s", rec.onPush, client.WithSince(protocol.StreamPosition{Offset: 1, Epoch: "gone"}), client.WithRecoveryReset(rec.onReset))
	if err != nil {
		t.Fatalf("Subscribe WithSince old epoch: %v", err)
	}
	got = rec.waitEvents(t, 5)
	if got[4] != "reset" || sub.Position() != (protocol.StreamPosition{Offset: 4, Epoch: rec.pushes[0].Epoch}) {
		t.Fatalf("events = %v, position %+v; want a reset at offset 4", got, sub.Position())
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	srv := newSwitchServer(t, gw)
	dead := httptest.NewServer(nil)
	deadURL := wsURL(dead)
	dead.Close()
	errNoToken := errors.New("no token for you")

	tests := []struct {
		name      string
		url       string
		token     func(n int32, tok string) (string, error)
		check     func(error) bool
		wantClose protocol.CloseCode
	}{
		{"bad token", srv.url(), func(int32, string) (string, error) { return "garbage", nil }, nil, protocol.CloseUnauthorized},
		{"token error", srv.url(), func(int32, string) (string, error) { return "", errNoToken }, func(err error) bool { return errors.Is(err, errNoToken) }, 0},
		{"no server", deadURL + "/ws", nil, func(err error) bool { return err != nil }, 0},
		{"not a gateway", srv.srv.URL + "/other", nil, func(err error) bool { return err != nil }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tk := newTokens(t, time.Minute)
			tk.override = tt.token
			rec := newRecorder()
			c := newClient(t, tt.url, tk, rec, nil)
			ctx := testContext(t)
			err := c.Connect(ctx)
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			ce, isClose := asCloseError(err)
			switch {
			case tt.wantClose != 0 && (!isClose || ce.Code != tt.wantClose):
				t.Fatalf("Connect = %v, want close %d", err, tt.wantClose)
			case tt.check != nil && !tt.check(err):
				t.Fatalf("Connect = %v", err)
			}
			if got := c.State(); got != client.StateDisconnected {
				t.Fatalf("State() = %v, want disconnected", got)
			}
			if err := c.Call(ctx, "echo", nil, nil); !errors.Is(err, client.ErrNotConnected) {
				t.Fatalf("Call after failed Connect = %v, want ErrNotConnected", err)
			}
			// Nothing retries in the background.
			_ = c.Close()
			if n := tk.calls.Load(); n > 1 {
				t.Fatalf("Token called %d times, want at most 1", n)
			}
			if err := c.Connect(ctx); !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Connect after Close = %v, want ErrClosed", err)
			}
		})
	}
}

// TestReconnectRecovery drops the connection by shutting one gateway down
// and serving the client from a second one on the same broker, publishing
// while the client cannot connect.
func TestReconnectRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		history    int
		before     int      // published while connected
		during     int      // published while disconnected
		afterEvent string   // event that shows the resubscribe was applied
		want       []string // all events, ending with one live push
		wantOffset uint64
	}{
		{
			name: "recovered", history: 100, before: 2, during: 3,
			afterEvent: `room:r#5={"n":5}`,
			want: []string{`room:r#1={"n":1}`, `room:r#2={"n":2}`, `room:r#3={"n":3}`,
				`room:r#4={"n":4}`, `room:r#5={"n":5}`, `room:r#6={"n":6}`},
			wantOffset: 6,
		},
		{
			name: "recovery lost", history: 2, before: 2, during: 5,
			afterEvent: "reset",
			want:       []string{`room:r#1={"n":1}`, `room:r#2={"n":2}`, "reset", `room:r#8={"n":8}`},
			wantOffset: 8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := livegate.Config{Broker: broker.NewMemory(broker.MemoryConfig{}), Namespaces: roomNamespace(tt.history)}
			gw1 := newGateway(t, cfg)
			srv := newSwitchServer(t, gw1)
			rec := newRecorder()
			tk := newTokens(t, time.Minute)
			c := newClient(t, srv.url(), tk, rec, nil)
			ctx := testContext(t)
			if err := c.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			sub, err := c.Subscribe(ctx, "room:r", rec.onPush, client.WithRecoveryReset(rec.onReset))
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			n := 0
			for range tt.before {
				n++
				mustPublish(t, gw1, "room:r", n)
			}
			rec.waitEvents(t, tt.before)

			srv.set(nil) // refuse new connections
			if err := gw1.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			rec.waitState(t, client.StateDisconnected, 1)
			gw2 := newGateway(t, cfg) // takes over the broker
			for range tt.during {
				n++
				mustPublish(t, gw2, "room:r", n)
			}
			srv.set(gw2)
			rec.waitState(t, client.StateConnected, 2)
			rec.waitFor(t, tt.afterEvent, func() bool { return slices.Contains(rec.events, tt.afterEvent) })
			n++
			mustPublish(t, gw2, "room:r", n)

			got := rec.waitEvents(t, len(tt.want))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("events = %v, want %v", got, tt.want)
			}
			if pos := sub.Position(); pos.Offset != tt.wantOffset {
				t.Fatalf("Position() = %+v, want offset %d", pos, tt.wantOffset)
			}
			if tk.calls.Load() < 2 {
				t.Fatalf("Token called %d times; each connect needs a fresh token", tk.calls.Load())
			}
			if errs := rec.snapshotErrors(); len(errs) != 0 {
				t.Fatalf("OnError got %v", errs)
			}
			// Exactly-once: one more live push is the next event.
			n++
			mustPublish(t, gw2, "room:r", n)
			got = rec.waitEvents(t, len(tt.want)+1)
			if last := got[len(got)-1]; last != `room:r#`+itoa(tt.wantOffset+1)+`={"n":`+itoa(uint64(n))+`}` {
				t.Fatalf("last event %q after %v", last, got)
			}
		})
	}
}

// TestTokenRefresh keeps a connection whose tokens live two seconds past
// the first token's expiry.
func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	tk := newTokens(t, 2*time.Second)
	c := newClient(t, srv.url(), tk, rec, func(cfg *client.Config) { cfg.RefreshBefore = time.Second })
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := c.Subscribe(ctx, "room:t", rec.onPush); err != nil {
		t.Fatal(err)
	}
	// The server closes at expiry with 4409; the deadline is on the real
	// clock, so the test has to wait for it.
	wait := time.NewTimer(time.Until(tk.firstExpiry()) + 300*time.Millisecond)
	<-wait.C
	mustPublish(t, gw, "room:t", 1)
	rec.waitEvents(t, 1)
	if n := tk.calls.Load(); n < 2 {
		t.Fatalf("Token called %d times, want refreshes", n)
	}
	if states := rec.snapshotStates(); !slices.Equal(states, []client.State{client.StateConnecting, client.StateConnected}) {
		t.Fatalf("states = %v, want one connection throughout", states)
	}
	if errs := rec.snapshotErrors(); len(errs) != 0 {
		t.Fatalf("OnError got %v", errs)
	}
}

// TestRefreshFailureReconnects refuses the refresh token: the server
// closes the connection 4409 at expiry and the client reconnects with a
// new token, keeping its subscription.
func TestRefreshFailureReconnects(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	tk := newTokens(t, 2*time.Second)
	tk.override = func(n int32, tok string) (string, error) {
		if n == 2 {
			return "not-a-token", nil
		}
		return tok, nil
	}
	c := newClient(t, srv.url(), tk, rec, func(cfg *client.Config) { cfg.RefreshBefore = time.Second })
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := c.Subscribe(ctx, "room:f", rec.onPush); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "refresh error", func() bool { return len(rec.errs) > 0 })
	var pe *protocol.Error
	if errs := rec.snapshotErrors(); !errors.As(errs[0], &pe) || pe.Code != protocol.CodeUnauthorized {
		t.Fatalf("OnError got %v, want unauthorized", errs)
	}
	rec.waitState(t, client.StateConnected, 2)
	mustPublish(t, gw, "room:f", 1)
	if got := rec.waitEvents(t, 1); got[0] != `room:f#1={"n":1}` {
		t.Fatalf("events = %v", got)
	}
	if n := tk.calls.Load(); n < 3 {
		t.Fatalf("Token called %d times, want connect, refresh, reconnect", n)
	}
}

// TestCloseCodeAdvice closes the first connection with a code and checks
// that the client stops or reconnects as protocol.AdviceFor says.
func TestCloseCodeAdvice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code protocol.CloseCode
		stop bool
	}{
		{protocol.CloseForbidden, true},
		{protocol.CloseMalformed, true},
		{protocol.CloseNormal, true},
		{protocol.CloseGoingAway, false},
		{protocol.CloseTokenExpired, false},
		{protocol.CloseUnauthorized, false},
		{protocol.CloseSlowConsumer, false},
		{protocol.CloseInternal, false},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			t.Parallel()
			url := fakeServer(t, func(n int, f *fakeConn) {
				if !f.accept() {
					return
				}
				if n == 1 {
					_ = f.ws.Close(websocket.StatusCode(tt.code), tt.code.String())
					return
				}
				f.drain()
			})
			rec := newRecorder()
			tk := newTokens(t, time.Minute)
			c := newClient(t, url, tk, rec, nil)
			ctx := testContext(t)
			if err := c.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if !tt.stop {
				rec.waitState(t, client.StateConnected, 2)
				if errs := rec.snapshotErrors(); len(errs) != 0 {
					t.Fatalf("OnError got %v", errs)
				}
				if tk.calls.Load() != 2 {
					t.Fatalf("Token called %d times, want 2", tk.calls.Load())
				}
				return
			}
			rec.waitState(t, client.StateClosed, 1)
			errs := rec.snapshotErrors()
			if len(errs) != 1 {
				t.Fatalf("OnError got %v, want the close", errs)
			}
			if ce, ok := asCloseError(errs[0]); !ok || ce.Code != tt.code {
				t.Fatalf("OnError got %v, want close %d", errs[0], tt.code)
			}
			if err := c.Call(ctx, "x", nil, nil); !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Call after stop = %v, want ErrClosed", err)
			}
			if err := c.Connect(ctx); !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Connect after stop = %v, want ErrClosed", err)
			}
		})
	}
}

func TestPendingCallFailsOnDisconnect(t *testing.T) {
	t.Parallel()
	url := fakeServer(t, func(n int, f *fakeConn) {
		if !f.accept() {
			return
		}
		cmd, ok := f.read()
		if !ok {
			return
		}
		if n == 1 {
			_ = f.ws.Close(websocket.StatusGoingAway, "")
			return
		}
		f.reply(cmd.ID, map[string]string{"text": "second"})
		f.drain()
	})
	rec := newRecorder()
	c := newClient(t, url, newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	err := c.Call(ctx, "echo", nil, nil)
	ce, ok := asCloseError(err)
	if !errors.Is(err, client.ErrDisconnected) || !ok || ce.Code != protocol.CloseGoingAway {
		t.Fatalf("Call = %v, want ErrDisconnected with close 1001", err)
	}
	// The next call waits for the reconnection.
	var out echoPayload
	if err := c.Call(ctx, "echo", nil, &out); err != nil || out.Text != "second" {
		t.Fatalf("Call after reconnect = %v, %+v", err, out)
	}
}

func TestCloseFailsPendingCall(t *testing.T) {
	t.Parallel()
	got := make(chan struct{})
	url := fakeServer(t, func(_ int, f *fakeConn) {
		if !f.accept() {
			return
		}
		if _, ok := f.read(); ok {
			close(got)
		}
		f.drain() // never answers
	})
	rec := newRecorder()
	c := newClient(t, url, newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Call(ctx, "slow", nil, nil) }()
	<-got
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("pending Call = %v, want ErrClosed", err)
	}
	if s := c.State(); s != client.StateClosed {
		t.Fatalf("State() = %v, want closed", s)
	}
}

// TestPushOrdering scripts subscribe results and pushes to check that
// recovered publications come first and stale or duplicate pushes are
// dropped.
func TestPushOrdering(t *testing.T) {
	t.Parallel()
	recovered, lost := true, false
	type push struct {
		offset uint64
		epoch  string
	}
	tests := []struct {
		name   string
		since  *protocol.StreamPosition
		result protocol.SubscribeResult
		pushes []push
		want   []string
		end    protocol.StreamPosition
	}{
		{
			name:   "fresh",
			result: protocol.SubscribeResult{Offset: 3, Epoch: "e"},
			pushes: []push{{2, "e"}, {3, "e"}, {4, "e"}, {4, "e"}, {5, "e"}},
			want:   []string{"room:p#4=4", "room:p#5=5"},
			end:    protocol.StreamPosition{Offset: 5, Epoch: "e"},
		},
		{
			name:  "recovered",
			since: &protocol.StreamPosition{Offset: 5, Epoch: "e"},
			result: protocol.SubscribeResult{Offset: 7, Epoch: "e", Recovered: &recovered, Publications: []protocol.Publication{
				{Offset: 5, Data: json.RawMessage("5")}, {Offset: 6, Data: json.RawMessage("6")}, {Offset: 7, Data: json.RawMessage("7")},
			}},
			pushes: []push{{7, "e"}, {8, "e"}, {6, "e"}, {9, "e"}},
			want:   []string{"room:p#6=6", "room:p#7=7", "room:p#8=8", "room:p#9=9"},
			end:    protocol.StreamPosition{Offset: 9, Epoch: "e"},
		},
		{
			name:  "recovery lost",
			since: &protocol.StreamPosition{Offset: 5, Epoch: "e"},
			result: protocol.SubscribeResult{Offset: 9, Epoch: "e", Recovered: &lost, Publications: []protocol.Publication{
				{Offset: 8, Data: json.RawMessage("8")}, {Offset: 9, Data: json.RawMessage("9")},
			}},
			pushes: []push{{9, "e"}, {10, "e"}},
			want:   []string{"reset", "room:p#10=10"},
			end:    protocol.StreamPosition{Offset: 10, Epoch: "e"},
		},
		{
			name:   "epoch change mid-stream",
			result: protocol.SubscribeResult{Offset: 3, Epoch: "e"},
			pushes: []push{{4, "e"}, {5, "f"}, {6, "f"}, {1, "g"}, {2, "g"}},
			want:   []string{"room:p#4=4", "reset", "room:p#5=5", "room:p#6=6", "room:p#1=1", "room:p#2=2"},
			end:    protocol.StreamPosition{Offset: 2, Epoch: "g"},
		},
		{
			name:   "new epoch",
			since:  &protocol.StreamPosition{Offset: 5, Epoch: "e"},
			result: protocol.SubscribeResult{Offset: 0, Epoch: "f", Recovered: &lost},
			pushes: []push{{1, "f"}, {1, "f"}, {2, "f"}},
			want:   []string{"reset", "room:p#1=1", "room:p#2=2"},
			end:    protocol.StreamPosition{Offset: 2, Epoch: "f"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sinceSeen := make(chan *protocol.StreamPosition, 1)
			url := fakeServer(t, func(_ int, f *fakeConn) {
				if !f.accept() {
					return
				}
				cmd, ok := f.read()
				if !ok || cmd.Method != protocol.MethodSubscribe {
					return
				}
				var p protocol.SubscribeParams
				_ = protocol.DecodeParams(cmd.Params, &p)
				sinceSeen <- p.Since
				f.reply(cmd.ID, tt.result)
				for _, p := range tt.pushes {
					f.push("room:p", p.offset, p.epoch, itoa(p.offset))
				}
				f.drain()
			})
			rec := newRecorder()
			c := newClient(t, url, newTokens(t, time.Minute), rec, nil)
			ctx := testContext(t)
			if err := c.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			opts := []client.SubscribeOption{client.WithRecoveryReset(rec.onReset)}
			if tt.since != nil {
				opts = append(opts, client.WithSince(*tt.since))
			}
			sub, err := c.Subscribe(ctx, "room:p", rec.onPush, opts...)
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			if since := <-sinceSeen; (since == nil) != (tt.since == nil) || (since != nil && *since != *tt.since) {
				t.Fatalf("server saw since %+v, want %+v", since, tt.since)
			}
			rec.waitFor(t, "last push", func() bool {
				return len(rec.pushes) > 0 && rec.pushes[len(rec.pushes)-1].Offset == tt.end.Offset
			})
			if got := rec.waitEvents(t, len(tt.want)); !slices.Equal(got, tt.want) {
				t.Fatalf("events = %v, want %v", got, tt.want)
			}
			if pos := sub.Position(); pos != tt.end {
				t.Fatalf("Position() = %+v, want %+v", pos, tt.end)
			}
		})
	}
}

// TestAbandonedSubscribeIsUndone gives up on a subscribe the server then
// accepts: the client unsubscribes so that a retry is not a duplicate.
func TestAbandonedSubscribeIsUndone(t *testing.T) {
	t.Parallel()
	got, release := make(chan struct{}), make(chan struct{})
	unsubscribed := make(chan string, 1)
	url := fakeServer(t, func(_ int, f *fakeConn) {
		if !f.accept() {
			return
		}
		cmd, ok := f.read()
		if !ok {
			return
		}
		close(got)
		<-release
		f.reply(cmd.ID, protocol.SubscribeResult{Offset: 0, Epoch: "e"})
		cmd, ok = f.read()
		if ok && cmd.Method == protocol.MethodUnsubscribe {
			var p protocol.UnsubscribeParams
			_ = protocol.DecodeParams(cmd.Params, &p)
			unsubscribed <- p.Channel
			f.reply(cmd.ID, struct{}{})
		}
		f.drain()
	})
	rec := newRecorder()
	c := newClient(t, url, newTokens(t, time.Minute), rec, nil)
	if err := c.Connect(testContext(t)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(ctx, "room:late", rec.onPush)
		errc <- err
	}()
	<-got
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe = %v, want context.Canceled", err)
	}
	close(release)
	select {
	case ch := <-unsubscribed:
		if ch != "room:late" {
			t.Fatalf("unsubscribed %q", ch)
		}
	case <-time.After(waitLimit):
		t.Fatal("no unsubscribe for the abandoned subscription")
	}
}

// TestSilentServerIsDropped: a server that stops pinging is given up on
// after its ping interval plus DialTimeout.
func TestSilentServerIsDropped(t *testing.T) {
	t.Parallel()
	url := fakeServer(t, func(n int, f *fakeConn) {
		cmd, ok := f.read()
		if !ok {
			return
		}
		ping := 25
		if n == 1 {
			ping = 1 // promise a ping every second, never send one
		}
		f.reply(cmd.ID, protocol.ConnectResult{Client: "fake", User: "alice", Expires: time.Now().Add(time.Hour).Unix(), Ping: ping})
		f.drain()
	})
	rec := newRecorder()
	c := newClient(t, url, newTokens(t, time.Minute), rec, func(cfg *client.Config) { cfg.DialTimeout = 500 * time.Millisecond })
	if err := c.Connect(testContext(t)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	rec.waitState(t, client.StateConnected, 2)
}

// TestResubscribeRefused drops the first connection; the second answers
// the resubscribe with the scripted errors before (maybe) accepting it.
func TestResubscribeRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		refusals []string // error codes, in order
		wantCode string   // OnError's code; "" means the subscription survives
	}{
		{"forbidden", []string{protocol.CodeForbidden}, protocol.CodeForbidden},
		{"unavailable then ok", []string{protocol.CodeUnavailable}, ""},
		{"rate limited then ok", []string{protocol.CodeRateLimited, protocol.CodeRateLimited}, ""},
		{"unavailable too long", []string{"unavailable", "unavailable", "unavailable", "unavailable"}, protocol.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := fakeServer(t, func(n int, f *fakeConn) {
				if !f.accept() {
					return
				}
				cmd, ok := f.read()
				if !ok || cmd.Method != protocol.MethodSubscribe {
					return
				}
				if n == 1 {
					f.reply(cmd.ID, protocol.SubscribeResult{Offset: 0, Epoch: "e"})
					_ = f.ws.Close(websocket.StatusGoingAway, "")
					return
				}
				for i, code := range tt.refusals {
					if i > 0 {
						if cmd, ok = f.read(); !ok {
							return
						}
					}
					f.send(protocol.Reply{ID: cmd.ID, Error: protocol.NewError(code)})
				}
				if tt.wantCode == "" {
					if cmd, ok = f.read(); !ok {
						return
					}
					f.reply(cmd.ID, protocol.SubscribeResult{Offset: 0, Epoch: "e", Recovered: new(true)})
					f.push("room:q", 1, "e", "1")
				}
				f.drain()
			})
			rec := newRecorder()
			c := newClient(t, url, newTokens(t, time.Minute), rec, nil)
			ctx := testContext(t)
			if err := c.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if _, err := c.Subscribe(ctx, "room:q", rec.onPush); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			if tt.wantCode == "" {
				if got := rec.waitEvents(t, 1); got[0] != "room:q#1=1" {
					t.Fatalf("events = %v", got)
				}
				if errs := rec.snapshotErrors(); len(errs) != 0 {
					t.Fatalf("OnError got %v", errs)
				}
				return
			}
			rec.waitFor(t, "resubscribe error", func() bool { return len(rec.errs) > 0 })
			var pe *protocol.Error
			if err := rec.snapshotErrors()[0]; !errors.As(err, &pe) || pe.Code != tt.wantCode {
				t.Fatalf("OnError got %v, want code %s", err, tt.wantCode)
			}
		})
	}
}

func TestCommandTooLarge(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(10)})
	if err := gw.Handle("echo", livegate.HandlerFunc[echoPayload](func(_ context.Context, _ *livegate.Request, p echoPayload) (any, error) {
		return p, nil
	})); err != nil {
		t.Fatal(err)
	}
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	c := newClient(t, srv.url(), newTokens(t, time.Minute), rec, func(cfg *client.Config) { cfg.MaxFrameSize = 1024 })
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	big := echoPayload{Text: strings.Repeat("x", 2048)}
	if err := c.Call(ctx, "echo", big, nil); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("Call with a big payload = %v, want ErrTooLarge", err)
	}
	var out echoPayload
	if err := c.Call(ctx, "echo", echoPayload{Text: "small"}, &out); err != nil || out.Text != "small" {
		t.Fatalf("Call after refusal = %v, %+v", err, out)
	}
	if states := rec.snapshotStates(); len(states) != 2 {
		t.Fatalf("states = %v, want one connection", states)
	}
}
