package apikey_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/store"
)

func Example() {
	ctx := context.Background()
	db, err := store.Open(ctx, store.MemoryPath)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	keys, err := apikey.New(apikey.Config{Store: db.APIKeys()})
	if err != nil {
		panic(err)
	}

	scopes, err := apikey.ParseScopes("publish:room:*,disconnect")
	if err != nil {
		panic(err)
	}
	// The text is shown once; only its hash is stored.
	text, key, err := keys.Create(ctx, apikey.CreateRequest{Name: "backend", Scopes: scopes})
	if err != nil {
		panic(err)
	}
	fmt.Println("id is the prefix:", text[3:11] == key.ID)

	// A backend presents the text; the key's scopes decide what it may do.
	k, err := keys.Verify(ctx, text)
	if err != nil {
		panic(err)
	}
	fmt.Println("publish to room:42:", k.Scopes.Allows(apikey.VerbPublish, "room:42"))
	fmt.Println("publish to admin:x:", k.Scopes.Allows(apikey.VerbPublish, "admin:x"))

	// After revocation the key is refused.
	if err := keys.Revoke(ctx, key.ID); err != nil {
		panic(err)
	}
	_, err = keys.Verify(ctx, text)
	fmt.Println("revoked:", errors.Is(err, apikey.ErrRevoked))
	// Output:
	// id is the prefix: true
	// publish to room:42: true
	// publish to admin:x: false
	// revoked: true
}

func ExampleParseScopes() {
	_, err := apikey.ParseScopes("publish:room:*,delete")
	fmt.Println(errors.Is(err, apikey.ErrInvalidScope))
	ss, _ := apikey.ParseScopes("history:news:*, channels")
	fmt.Println(ss)
	// Output:
	// true
	// history:news:*,channels
}
