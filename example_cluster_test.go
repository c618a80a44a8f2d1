package livegate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// A connect hook lets a backend decide who connects: here any client may
// connect without a token, and the hook names the user from the connect's
// "data" and subscribes it to its inbox.
func ExampleConnectHook() {
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret:          []byte("an example secret of at least 32 bytes"),
		Namespaces:               []policy.NamespaceConfig{{Name: "inbox"}},
		AllowConnectWithoutToken: true,
		ConnectHook: func(ctx context.Context, req *livegate.ConnectRequest) (livegate.ConnectResult, error) {
			if string(req.Data) != `"guest-42"` {
				return livegate.ConnectResult{}, fmt.Errorf("unknown guest: %w", livegate.ErrConnectDenied)
			}
			return livegate.ConnectResult{
				Identity: auth.Identity{User: "guest-42"},
				Channels: []string{"inbox:guest-42"},
			}, nil
		},
		OnDisconnect: func(d livegate.DisconnectInfo) {},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close()
	srv := httptest.NewServer(gw)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
		&websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"connect","params":{"data":"guest-42"}}`))
	_, reply, _ := ws.Read(ctx)
	fmt.Println(strings.Contains(string(reply), `"user":"guest-42"`), strings.Contains(string(reply), `"inbox:guest-42":{"offset":0`))
	// Output: true true
}

// Backends list a node's channels, read history and close connections.
func ExampleGateway_Disconnect() {
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: []byte("an example secret of at least 32 bytes"),
		Namespaces:      []policy.NamespaceConfig{{Name: "room", HistorySize: 10}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close()
	ctx := context.Background()
	pub, _ := gw.Publish(ctx, "room:a", map[string]string{"text": "hi"})
	hist, _ := gw.History(ctx, "room:a", &broker.Position{Offset: 0, Epoch: pub.Epoch}, 10)
	fmt.Println(len(hist.Publications), string(hist.Publications[0].Data))
	fmt.Println(len(gw.Channels("room:"))) // no local subscribers
	n, err := gw.Disconnect(ctx, livegate.DisconnectFilter{User: "alice"})
	fmt.Println(n, err)
	_, err = gw.Presence(ctx, "room:a")
	fmt.Println(errors.Is(err, livegate.ErrPresenceOff))
	// Output:
	// 1 {"text":"hi"}
	// 0
	// 0 <nil>
	// true
}

// Configuration reloads swap namespaces and limits in place.
func ExampleGateway_SetNamespaces() {
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: []byte("an example secret of at least 32 bytes"),
		Namespaces:      []policy.NamespaceConfig{{Name: "room"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close()
	err = gw.SetNamespaces([]policy.NamespaceConfig{
		{Name: "room"},
		{Name: "lobby", Subscribe: policy.SubscribeAuthenticated, Presence: true, JoinLeave: true},
	})
	fmt.Println(err)
	err = gw.SetLimits(livegate.Limits{ConnsPerIP: 50})
	fmt.Println(err)
	_, err = gw.Publish(context.Background(), "lobby:main", 1)
	fmt.Println(err)
	// Output:
	// <nil>
	// <nil>
	// <nil>
}

var _ http.Handler = (*livegate.Gateway)(nil)
