package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/livegate/livegate/ops"
	"github.com/livegate/livegate/ops/opstest"
	"github.com/livegate/livegate/store"
)

// TestOperationsContract runs the ops.Store contract against both kinds of
// database.
func TestOperationsContract(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			opstest.TestStore(t, func(t *testing.T) ops.Store {
				return open(t, k.path(t), newFakeClock(t0)).Operations()
			})
		})
	}
}

// TestOperationsSurviveReopen checks that an operation, its logs and its
// swaps are on disk.
func TestOperationsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	o := db.Operations()
	if err := o.Create(ctx, ops.Record{Snapshot: ops.Snapshot{ID: "a", Kind: "k", State: ops.StateRunning,
		CreatedAt: t0, UpdatedAt: t0}, User: "alice"}); err != nil {
		t.Fatal(err)
	}
	line := "hello"
	if err := o.Update(ctx, "a", ops.Update{Seq: 2, At: t0, Log: &line, KeepLogs: 5,
		Swaps: []ops.Swap{{Target: "x", HTML: "<b>y</b>"}}}); err != nil {
		t.Fatal(err)
	}
	if err := o.Finish(ctx, "a", ops.StateDone, 3, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := open(t, path, newFakeClock(t0)).Operations().Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ops.StateDone || len(got.Logs) != 1 || got.Swaps["x"] != "<b>y</b>" || got.Seq != 3 {
		t.Fatalf("after reopening: %+v", got)
	}
	// Deleting an operation deletes its logs and swaps (foreign keys).
	if n, err := open(t, path, newFakeClock(t0)).Operations().DeleteFinishedBefore(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteFinishedBefore = %d, %v", n, err)
	}
	for _, table := range []string{"operation", "operation_log", "operation_swap"} {
		if n := count(t, path, table); n != 0 {
			t.Errorf("%s has %d rows after deletion, want 0", table, n)
		}
	}
}

// TestOperationsSchemaChecks checks that the schema refuses inconsistent
// rows even from a buggy caller.
func TestOperationsSchemaChecks(t *testing.T) {
	ctx := context.Background()
	o := open(t, store.MemoryPath, newFakeClock(t0)).Operations()
	if err := o.Create(ctx, ops.Record{Snapshot: ops.Snapshot{ID: "a", Kind: "k", State: ops.StateRunning,
		Percent: 101, CreatedAt: t0, UpdatedAt: t0}, User: "alice"}); err == nil {
		t.Fatal("percent 101 stored")
	}
	if err := o.Create(ctx, ops.Record{Snapshot: ops.Snapshot{ID: "a", Kind: "k", State: ops.StateDone,
		CreatedAt: t0, UpdatedAt: t0}, User: "alice"}); err == nil {
		t.Fatal("a new operation in a final state stored")
	}
}
