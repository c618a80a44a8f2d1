package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/httpapi"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/store"
)

func ExampleNew() {
	ctx := context.Background()
	db, err := store.Open(ctx, store.MemoryPath)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: []byte("an example secret of at least 32 bytes"),
		Namespaces:      []policy.NamespaceConfig{{Name: "room", Subscribe: policy.SubscribeAuthenticated}},
	})
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	keys, err := apikey.New(apikey.Config{Store: db.APIKeys()})
	if err != nil {
		panic(err)
	}
	api, err := httpapi.New(httpapi.Config{Gateway: gw, Keys: keys})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	mux.Handle("/api/", api)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	scopes, _ := apikey.ParseScopes("publish:room:*")
	key, _, err := keys.Create(ctx, apikey.CreateRequest{Name: "backend", Scopes: scopes})
	if err != nil {
		panic(err)
	}
	for _, channel := range []string{"room:42", "admin:x"} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/publish",
			strings.NewReader(`{"channel":"`+channel+`","data":{"text":"hello"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(channel, resp.Status)
	}
	// Output:
	// room:42 200 OK
	// admin:x 403 Forbidden
}
