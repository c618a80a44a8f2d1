package store_test

import (
	"context"
	"testing"

	"github.com/livegate/livegate/store"
)

func TestPingFailsAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, path := range []string{store.MemoryPath, tempPath(t)} {
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		pingers := map[string]interface{ Ping(context.Context) error }{
			"DB": db, "ReplayStore": db.ReplayStore(), "Revocations": db.Revocations(),
		}
		for name, p := range pingers {
			if err := p.Ping(ctx); err != nil {
				t.Fatalf("%s %s: Ping on an open database: %v", path, name, err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		for name, p := range pingers {
			if err := p.Ping(ctx); err == nil {
				t.Fatalf("%s %s: Ping after Close succeeded", path, name)
			}
		}
	}
}
