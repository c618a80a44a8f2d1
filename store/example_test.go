package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/store"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "livegate-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "data", "livegate.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	// A single-use token id is consumed once; presenting it again is a replay.
	replay := db.ReplayStore()
	expires := time.Now().Add(5 * time.Minute)
	fmt.Println("first use:", replay.Consume(ctx, "token-id-1", expires))
	err = replay.Consume(ctx, "token-id-1", expires)
	fmt.Println("replayed:", errors.Is(err, auth.ErrReplayed))

	// Revoking a session revokes every token bound to it.
	rev := db.Revocations()
	if err := rev.RevokeSession(ctx, "sess-42", expires); err != nil {
		panic(err)
	}
	revoked, err := rev.Revoked(ctx, auth.Identity{User: "alice", Session: "sess-42"})
	fmt.Println("session revoked:", revoked, err)

	// Sweep reclaims expired rows; run it periodically.
	n, err := db.Sweep(ctx)
	fmt.Println("swept:", n, err)
	// Output:
	// first use: <nil>
	// replayed: true
	// session revoked: true <nil>
	// swept: 0 <nil>
}
