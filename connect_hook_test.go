package livegate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
)

// hookEnv is an env whose gateway has a connect hook recording its calls.
type hookEnv struct {
	*env
	mu    sync.Mutex
	calls []*livegate.ConnectRequest
}

func newHookEnv(t *testing.T, hook livegate.ConnectHook, mutate func(*livegate.Config)) *hookEnv {
	h := &hookEnv{}
	h.env = newEnv(t, func(c *livegate.Config) {
		c.ConnectHook = func(ctx context.Context, req *livegate.ConnectRequest) (livegate.ConnectResult, error) {
			h.mu.Lock()
			h.calls = append(h.calls, req)
			h.mu.Unlock()
			return hook(ctx, req)
		}
		if mutate != nil {
			mutate(c)
		}
	})
	return h
}

func (h *hookEnv) lastCall(t *testing.T) *livegate.ConnectRequest {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) == 0 {
		t.Fatal("hook not called")
	}
	return h.calls[len(h.calls)-1]
}

func (h *hookEnv) callCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

func TestConnectHookAllows(t *testing.T) {
	t.Parallel()
	h := newHookEnv(t, func(_ context.Context, req *livegate.ConnectRequest) (livegate.ConnectResult, error) {
		var d struct{ Room string }
		_ = json.Unmarshal(req.Data, &d)
		return livegate.ConnectResult{
			Identity: auth.Identity{User: "backend-" + req.Identity.User, Session: "s1"},
			Channels: []string{"room:" + d.Room},
		}, nil
	}, func(c *livegate.Config) { c.AllowConnectWithoutToken = true })
	c := h.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: h.token(t, "alice"), Data: json.RawMessage(`{"room":"lobby"}`)})
	r := c.reply(1)
	if r.Error != nil {
		t.Fatalf("connect: %+v", r.Error)
	}
	var res protocol.ConnectResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatal(err)
	}
	if res.User != "backend-alice" {
		t.Fatalf("user = %q, want the hook's", res.User)
	}
	pos, ok := res.Channels["room:lobby"]
	if !ok || pos.Epoch == "" {
		t.Fatalf("connect result channels = %+v", res.Channels)
	}
	req := h.lastCall(t)
	if req.Identity == nil || req.Identity.User != "alice" || req.Token == "" || string(req.Data) != `{"room":"lobby"}` ||
		req.ConnID != res.Client || req.ClientIP == "" || req.Header.Get("Sec-WebSocket-Protocol") == "" {
		t.Fatalf("hook request = %+v", req)
	}
	// The server-side subscription is live: a publication arrives, at the
	// offset after the one the connect result gave.
	if _, err := h.gw.Publish(context.Background(), "room:lobby", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	p := c.push()
	if p.Channel != "room:lobby" || p.Offset != pos.Offset+1 || p.Epoch != pos.Epoch || string(p.Data) != `{"n":1}` {
		t.Fatalf("push = %+v", p)
	}
	// The client can drop the subscription like its own.
	c.sendCmd(2, "unsubscribe", protocol.UnsubscribeParams{Channel: "room:lobby"})
	if r := c.reply(2); r.Error != nil {
		t.Fatalf("unsubscribe: %+v", r.Error)
	}
}

func TestConnectHookWithoutToken(t *testing.T) {
	t.Parallel()
	hook := func(_ context.Context, req *livegate.ConnectRequest) (livegate.ConnectResult, error) {
		if req.Identity != nil || req.Token != "" {
			return livegate.ConnectResult{}, errors.New("unexpected token")
		}
		return livegate.ConnectResult{Identity: auth.Identity{User: "cookie-user"}}, nil
	}
	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		h := newHookEnv(t, hook, func(c *livegate.Config) { c.AllowConnectWithoutToken = true })
		c := h.dial(t)
		c.send(`{"id":1,"method":"connect","params":{"data":null}}`)
		r := c.reply(1)
		var res protocol.ConnectResult
		if r.Error != nil || json.Unmarshal(r.Result, &res) != nil || res.User != "cookie-user" {
			t.Fatalf("connect = %+v", r)
		}
		// No token: the identity lasts MaxConnLifetime.
		if exp := time.Unix(res.Expires, 0); exp.Before(time.Now().Add(livegate.DefaultMaxConnLifetime - time.Minute)) {
			t.Fatalf("expires %v", exp)
		}
		if h.lastCall(t).Data != nil {
			t.Fatal("null data not reported as absent")
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		t.Parallel()
		h := newHookEnv(t, hook, nil)
		c := h.dial(t)
		c.send(`{"id":1,"method":"connect","params":{}}`)
		c.expectClose(protocol.CloseUnauthorized)
		if h.callCount() != 0 {
			t.Fatal("hook ran for a connect without token")
		}
	})
	t.Run("forged token still refused", func(t *testing.T) {
		t.Parallel()
		h := newHookEnv(t, hook, func(c *livegate.Config) { c.AllowConnectWithoutToken = true })
		forged := signClaims(t, jwt.SigningMethodHS256, []byte("another-secret-that-is-32-bytes-long!!"), validClaims("alice"))
		c := h.dial(t)
		c.sendCmd(1, "connect", protocol.ConnectParams{Token: forged})
		c.expectClose(protocol.CloseUnauthorized)
		if h.callCount() != 0 {
			t.Fatal("hook ran for a forged token")
		}
	})
	t.Run("config needs hook", func(t *testing.T) {
		t.Parallel()
		if _, err := livegate.New(livegate.Config{TokenHMACSecret: testSecret, AllowConnectWithoutToken: true}); err == nil {
			t.Fatal("AllowConnectWithoutToken without ConnectHook accepted")
		}
	})
}

func TestConnectHookRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		result livegate.ConnectResult
		err    error
		panics bool
		code   protocol.CloseCode
		reason string
	}{
		{name: "denied", err: fmt.Errorf("banned: %w", livegate.ErrConnectDenied), code: protocol.CloseForbidden, reason: "connect_denied"},
		{name: "error", err: errors.New("backend down: secret detail"), code: protocol.CloseInternal, reason: "connect_hook"},
		{name: "panic", panics: true, code: protocol.CloseInternal, reason: "connect_hook"},
		{name: "no user", result: livegate.ConnectResult{}, code: protocol.CloseInternal, reason: "connect_hook"},
		{name: "bad tenant", result: livegate.ConnectResult{Identity: auth.Identity{User: "u", Tenant: "a/b"}},
			code: protocol.CloseInternal, reason: "connect_hook"},
		// A bad channel after a good one: the good one must be undone.
		{name: "unknown namespace", result: livegate.ConnectResult{Identity: auth.Identity{User: "u"},
			Channels: []string{"room:ok", "nope:x"}}, code: protocol.CloseInternal, reason: "connect_hook_channel"},
		{name: "invalid channel", result: livegate.ConnectResult{Identity: auth.Identity{User: "u"},
			Channels: []string{"room:ok", "room:a b"}}, code: protocol.CloseInternal, reason: "connect_hook_channel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var disconnects atomic.Int32
			h := newHookEnv(t, func(context.Context, *livegate.ConnectRequest) (livegate.ConnectResult, error) {
				if tc.panics {
					panic("boom")
				}
				return tc.result, tc.err
			}, func(c *livegate.Config) {
				c.OnDisconnect = func(livegate.DisconnectInfo) { disconnects.Add(1) }
			})
			c := h.dial(t)
			c.sendCmd(1, "connect", protocol.ConnectParams{Token: h.token(t, "alice")})
			c.expectClose(tc.code)
			waitFor(t, "audit "+tc.reason, func() bool { return h.events.hasReason(tc.reason) })
			waitFor(t, "connection gone", func() bool { return h.gw.Connections() == 0 })
			if ch := h.gw.Channels(""); len(ch) != 0 {
				t.Fatalf("subscriptions left after a refused connect: %+v", ch)
			}
			if disconnects.Load() != 0 {
				t.Fatal("OnDisconnect called for a connection that never connected")
			}
		})
	}
}

func TestConnectHookIdentityChecks(t *testing.T) {
	t.Parallel()
	// The hook's identity is checked like a token's: revocation and the
	// replay of its token id.
	h := newHookEnv(t, func(_ context.Context, req *livegate.ConnectRequest) (livegate.ConnectResult, error) {
		return livegate.ConnectResult{Identity: auth.Identity{User: "mapped", TokenID: "fixed-jti"}}, nil
	}, func(c *livegate.Config) { c.AllowConnectWithoutToken = true })
	c := h.dial(t)
	c.send(`{"id":1,"method":"connect"}`)
	if r := c.reply(1); r.Error != nil {
		t.Fatalf("first connect: %+v", r.Error)
	}
	c2 := h.dial(t)
	c2.send(`{"id":1,"method":"connect"}`)
	c2.expectClose(protocol.CloseUnauthorized) // fixed-jti replayed
	if !h.events.has(audit.TypeTokenReplayed, "") {
		t.Fatal("no replay event")
	}

	// A token's jti stays single-use even when the hook's identity drops it.
	h3 := newHookEnv(t, func(_ context.Context, req *livegate.ConnectRequest) (livegate.ConnectResult, error) {
		return livegate.ConnectResult{Identity: auth.Identity{User: req.Identity.User}}, nil
	}, nil)
	tok, _, err := h3.signer.Sign(auth.Identity{User: "alice", TokenID: "once"}, auth.KindConnect, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c4 := h3.dial(t)
	c4.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	if r := c4.reply(1); r.Error != nil {
		t.Fatal(r.Error)
	}
	c5 := h3.dial(t)
	c5.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	c5.expectClose(protocol.CloseUnauthorized)

	h2 := newHookEnv(t, func(_ context.Context, req *livegate.ConnectRequest) (livegate.ConnectResult, error) {
		return livegate.ConnectResult{Identity: auth.Identity{User: "mapped", Session: "s9"}}, nil
	}, func(c *livegate.Config) { c.AllowConnectWithoutToken = true })
	if _, err := h2.gw.RevokeSession(context.Background(), "s9"); err != nil {
		t.Fatal(err)
	}
	c3 := h2.dial(t)
	c3.send(`{"id":1,"method":"connect"}`)
	c3.expectClose(protocol.CloseForbidden)
}

func TestConnectDataTooLarge(t *testing.T) {
	t.Parallel()
	h := newHookEnv(t, func(context.Context, *livegate.ConnectRequest) (livegate.ConnectResult, error) {
		return livegate.ConnectResult{Identity: auth.Identity{User: "u"}}, nil
	}, nil)
	c := h.dial(t)
	big := `"` + strings.Repeat("x", protocol.MaxConnectData) + `"`
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: h.token(t, "alice"), Data: json.RawMessage(big)})
	c.expectClose(protocol.CloseMalformed)
	if h.callCount() != 0 {
		t.Fatal("hook ran with oversize data")
	}
	// Exactly at the limit is fine.
	c = h.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: h.token(t, "alice"), Data: json.RawMessage(big[:protocol.MaxConnectData-1] + `"`)})
	if r := c.reply(1); r.Error != nil {
		t.Fatalf("connect: %+v", r.Error)
	}
}

func TestConnectHookDeadline(t *testing.T) {
	t.Parallel()
	h := newHookEnv(t, func(ctx context.Context, _ *livegate.ConnectRequest) (livegate.ConnectResult, error) {
		<-ctx.Done() // a backend that never answers
		return livegate.ConnectResult{}, ctx.Err()
	}, func(c *livegate.Config) { c.ConnectTimeout = 200 * time.Millisecond })
	c := h.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: h.token(t, "alice")})
	c.expectClose(protocol.CloseConnectTimeout)
}

func TestOnDisconnectCalledOnce(t *testing.T) {
	t.Parallel()
	got := make(chan livegate.DisconnectInfo, 4)
	e := newEnv(t, func(c *livegate.Config) {
		c.OnDisconnect = func(d livegate.DisconnectInfo) { got <- d }
	})
	c := e.connect(t, "alice")
	never := e.dial(t) // never connects: no callback
	_ = never.ws.CloseNow()
	if _, err := e.gw.RevokeUser(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	c.expectClose(protocol.CloseForbidden)
	select {
	case d := <-got:
		if d.Identity.User != "alice" || d.Code != int(protocol.CloseForbidden) || d.ConnID == "" || d.Reason == "" {
			t.Fatalf("info = %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnDisconnect not called")
	}
	waitFor(t, "connections closed", func() bool { return e.gw.Connections() == 0 })
	select {
	case d := <-got:
		t.Fatalf("second OnDisconnect: %+v", d)
	case <-time.After(100 * time.Millisecond):
	}
}

func (r *recorder) hasReason(reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Reason == reason {
			return true
		}
	}
	return false
}
