package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/livegate/livegate/audit"
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

func ExampleAudit_Query() {
	ctx := context.Background()
	db, err := store.Open(ctx, store.MemoryPath)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	// An audit.Recorder normally writes these, in batches.
	a := db.Audit()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	err = a.WriteEvents(ctx, []audit.Event{
		{Type: audit.TypeAuthFailed, Time: at, Severity: audit.SeverityWarning, User: "alice", Reason: "signature"},
		{Type: audit.TypeTokenReplayed, Time: at.Add(time.Second), Severity: audit.SeverityCritical, User: "alice"},
		{Type: audit.TypeAuthFailed, Time: at.Add(2 * time.Second), Severity: audit.SeverityWarning, User: "bob\nforged"},
	})
	if err != nil {
		panic(err)
	}
	recs, err := a.Query(ctx, store.AuditFilter{Types: []string{audit.TypeAuthFailed}, Since: at})
	if err != nil {
		panic(err)
	}
	for _, r := range recs {
		fmt.Println(r.ID, r.Time.UTC().Format(time.RFC3339), r.Type, r.User)
	}
	// Output:
	// 1 2025-01-02T03:04:05Z auth_failed alice
	// 3 2025-01-02T03:04:07Z auth_failed bob�forged
}
