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
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// Greet is a typed event payload. Unknown fields are rejected before the
// handler runs, and Validate must pass.
type Greet struct {
	Name string `json:"name"`
}

func (g Greet) Validate() error {
	if g.Name == "" || len(g.Name) > 40 {
		return errors.New("name: 1..40 bytes")
	}
	return nil
}

func Example() {
	secret := []byte("an example secret of at least 32 bytes")
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: secret,
		Namespaces: []policy.NamespaceConfig{
			{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: 100},
		},
	})
	if err != nil {
		panic(err)
	}
	_ = gw.Handle("greet", livegate.HandlerFunc[Greet](func(ctx context.Context, r *livegate.Request, g Greet) (any, error) {
		return map[string]string{"greeting": "hello " + g.Name + " from " + r.Identity.User}, nil
	}))
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer gw.Shutdown(context.Background())

	// The application's backend mints a short-lived connect token.
	signer, _ := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: secret})
	token, _, _ := signer.Sign(auth.Identity{User: "alice"}, auth.KindConnect, 5*time.Minute)

	// A client speaks protocol v1 (package client does this for you).
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws",
		&websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		panic(err)
	}
	defer ws.CloseNow()
	send := func(s string) { _ = ws.Write(ctx, websocket.MessageText, []byte(s)) }
	recv := func() string { _, b, _ := ws.Read(ctx); return string(b) }

	send(`{"id":1,"method":"connect","params":{"token":"` + token + `"}}`)
	recv()
	send(`{"id":2,"method":"event","params":{"name":"greet","payload":{"name":"bob"}}}`)
	fmt.Println(recv())
	send(`{"id":3,"method":"event","params":{"name":"greet","payload":{"name":"bob","admin":true}}}`)
	fmt.Println(recv())
	send(`{"id":4,"method":"event","params":{"name":"__proto__"}}`)
	fmt.Println(recv())
	// Output:
	// {"id":2,"result":{"greeting":"hello bob from alice"}}
	// {"id":3,"error":{"code":"bad_request","message":"bad request"}}
	// {"id":4,"error":{"code":"not_available","message":"not available"}}
}

func ExampleGateway_Publish() {
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: []byte("an example secret of at least 32 bytes"),
		Namespaces:      []policy.NamespaceConfig{{Name: "news", Subscribe: policy.SubscribeAuthenticated, HistorySize: 10}},
	})
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	ctx := context.Background()
	for _, headline := range []string{"first", "second"} {
		res, err := gw.Publish(ctx, "news:today", map[string]string{"headline": headline})
		fmt.Println(res.Offset, err)
	}
	_, err = gw.Publish(ctx, "secret:today", "x")
	fmt.Println(err)
	_, err = gw.Publish(ctx, "news:<script>", "x")
	fmt.Println(err)
	// Output:
	// 1 <nil>
	// 2 <nil>
	// livegate: unknown namespace
	// livegate: invalid channel
}

func ExampleNewError() {
	gw, _ := livegate.New(livegate.Config{TokenHMACSecret: []byte("an example secret of at least 32 bytes")})
	defer gw.Close()
	err := gw.Handle("delete_post", livegate.HandlerFunc[struct {
		ID int `json:"id"`
	}](func(ctx context.Context, r *livegate.Request, p struct {
		ID int `json:"id"`
	}) (any, error) {
		if r.Identity.User != "admin" {
			// The client receives the generic "forbidden" error.
			return nil, livegate.NewError(livegate.CodeForbidden)
		}
		return nil, nil
	}))
	fmt.Println(err)
	// Output: <nil>
}

// An Authorizer learns the connection's id and client IP from its context.
func ExampleConnFromContext() {
	secret := []byte("an example secret of at least 32 bytes")
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: secret,
		Namespaces:      []policy.NamespaceConfig{{Name: "doc", Subscribe: policy.SubscribeAuthenticated}},
	})
	if err != nil {
		panic(err)
	}
	_ = gw.Authorize("doc", func(ctx context.Context, id auth.Identity, channel string) error {
		conn, ok := livegate.ConnFromContext(ctx)
		fmt.Println(ok, conn.ClientIP, conn.ID != "")
		if conn.ClientIP != "127.0.0.1" {
			return errors.New("documents are open to the local network only")
		}
		return nil
	})
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer gw.Shutdown(context.Background())

	signer, _ := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: secret})
	token, _, _ := signer.Sign(auth.Identity{User: "alice"}, auth.KindConnect, 5*time.Minute)
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
		&websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		panic(err)
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"connect","params":{"token":"`+token+`"}}`))
	_, _, _ = ws.Read(ctx)
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"id":2,"method":"subscribe","params":{"channel":"doc:plan"}}`))
	_, reply, _ := ws.Read(ctx)
	fmt.Println("subscribed:", strings.Contains(string(reply), `"result"`))
	// Output:
	// true 127.0.0.1 true
	// subscribed: true
}
