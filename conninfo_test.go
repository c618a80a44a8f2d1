package livegate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
)

// TestConnInfoReachesAuthorizerHandlerAndDisconnect checks that the
// connection's id and trusted-proxy-resolved client IP reach an
// Authorizer's context, a Handler's Request and context, and OnDisconnect,
// and that a forwarded address from an untrusted peer is ignored.
func TestConnInfoReachesAuthorizerHandlerAndDisconnect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		wantIP  string
	}{
		{"trusted proxy", []string{"127.0.0.1/32"}, "203.0.113.9"},
		{"untrusted peer", nil, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var azInfo, hCtxInfo livegate.ConnInfo
			var azOK, hCtxOK bool
			var req livegate.Request
			disc := make(chan livegate.DisconnectInfo, 1)
			e := newEnv(t, func(c *livegate.Config) {
				c.TrustedProxies = tc.trusted
				c.OnDisconnect = func(d livegate.DisconnectInfo) { disc <- d }
			})
			if err := e.gw.Authorize("room", func(ctx context.Context, id auth.Identity, channel string) error {
				mu.Lock()
				defer mu.Unlock()
				azInfo, azOK = livegate.ConnFromContext(ctx)
				if channel == "room:closed" {
					return errors.New("closed room")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := e.gw.Handle("who", livegate.HandlerFunc[json.RawMessage](func(ctx context.Context, r *livegate.Request, _ json.RawMessage) (any, error) {
				mu.Lock()
				defer mu.Unlock()
				hCtxInfo, hCtxOK = livegate.ConnFromContext(ctx)
				req = *r
				return "ok", nil
			})); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{
				Subprotocols: []string{protocol.Subprotocol},
				HTTPHeader:   http.Header{"X-Forwarded-For": {"203.0.113.9"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			c := &rawConn{t: t, ws: ws}
			defer ws.CloseNow()
			c.send(`{"id":1,"method":"connect","params":{"token":"` + e.token(t, "alice") + `"}}`)
			r := c.reply(1)
			if r.Error != nil {
				t.Fatalf("connect: %+v", r.Error)
			}
			var res protocol.ConnectResult
			if err := json.Unmarshal(r.Result, &res); err != nil || res.Client == "" {
				t.Fatalf("connect result %s: %v", r.Result, err)
			}
			want := livegate.ConnInfo{ID: res.Client, ClientIP: tc.wantIP}

			c.send(`{"id":2,"method":"subscribe","params":{"channel":"room:open"}}`)
			if r := c.reply(2); r.Error != nil {
				t.Fatalf("subscribe: %+v", r.Error)
			}
			mu.Lock()
			if !azOK || azInfo != want {
				t.Errorf("authorizer ConnFromContext = %+v, %v; want %+v", azInfo, azOK, want)
			}
			mu.Unlock()
			c.send(`{"id":3,"method":"subscribe","params":{"channel":"room:closed"}}`)
			if r := c.reply(3); r.Error == nil || r.Error.Code != "forbidden" {
				t.Fatalf("refused subscribe: %+v", r.Error)
			}

			c.send(`{"id":4,"method":"event","params":{"name":"who","payload":{}}}`)
			if r := c.reply(4); r.Error != nil {
				t.Fatalf("event: %+v", r.Error)
			}
			mu.Lock()
			if req.ConnID != want.ID || req.ClientIP != want.ClientIP {
				t.Errorf("Request ConnID, ClientIP = %q, %q; want %q, %q", req.ConnID, req.ClientIP, want.ID, want.ClientIP)
			}
			if !hCtxOK || hCtxInfo != want {
				t.Errorf("handler ConnFromContext = %+v, %v; want %+v", hCtxInfo, hCtxOK, want)
			}
			mu.Unlock()

			_ = ws.Close(websocket.StatusNormalClosure, "")
			select {
			case d := <-disc:
				if d.ConnID != want.ID || d.ClientIP != want.ClientIP {
					t.Errorf("DisconnectInfo ConnID, ClientIP = %q, %q; want %q, %q", d.ConnID, d.ClientIP, want.ID, want.ClientIP)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("OnDisconnect not called")
			}
		})
	}
}

func TestConnFromContextOutsideGateway(t *testing.T) {
	if info, ok := livegate.ConnFromContext(context.Background()); ok || info != (livegate.ConnInfo{}) {
		t.Fatalf("ConnFromContext(Background) = %+v, %v; want zero, false", info, ok)
	}
}
