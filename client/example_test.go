package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/client"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

type say struct {
	Text string `json:"text"`
}

func ExampleClient() {
	// A gateway on a loopback test server.
	secret := []byte("example-secret-at-least-32-bytes-long")
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: secret,
		Namespaces: []policy.NamespaceConfig{
			{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: 100},
		},
	})
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	_ = gw.Handle("echo", livegate.HandlerFunc[say](func(_ context.Context, r *livegate.Request, p say) (any, error) {
		return say{Text: r.Identity.User + " said " + p.Text}, nil
	}))
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: secret})
	if err != nil {
		panic(err)
	}

	// The client: Token is called for every connect and refresh.
	c, err := client.New(client.Config{
		URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
		Token: func(context.Context) (string, error) {
			tok, _, err := signer.Sign(auth.Identity{User: "alice"}, auth.KindConnect, 10*time.Minute)
			return tok, err
		},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		panic(err)
	}
	defer c.Close()

	// Pushes arrive on the client's reader goroutine: hand them off.
	pushes := make(chan client.Push, 16)
	sub, err := c.Subscribe(ctx, "room:lobby", func(p client.Push) { pushes <- p },
		client.WithRecoveryReset(func() { fmt.Println("reload state") }))
	if err != nil {
		panic(err)
	}
	_, _ = gw.Publish(ctx, "room:lobby", say{Text: "welcome"})
	p := <-pushes
	fmt.Println(p.Channel, p.Offset, string(p.Data), sub.Position().Offset)

	var reply say
	if err := c.Call(ctx, "echo", say{Text: "hi"}, &reply); err != nil {
		panic(err)
	}
	fmt.Println(reply.Text)

	var pe *protocol.Error
	if err := c.Call(ctx, "missing", nil, nil); errors.As(err, &pe) {
		fmt.Println(pe.Code)
	}
	// Output:
	// room:lobby 1 {"text":"welcome"} 1
	// alice said hi
	// not_available
}
