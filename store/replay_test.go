package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/store"
)

func TestConsume(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rs := open(t, k.path(t), newFakeClock(t0)).ReplayStore()
			exp := t0.Add(5 * time.Minute)
			if err := rs.Consume(ctx, "a", exp); err != nil {
				t.Fatalf("first Consume: %v", err)
			}
			if err := rs.Consume(ctx, "a", exp); !errors.Is(err, auth.ErrReplayed) {
				t.Fatalf("second Consume = %v, want ErrReplayed", err)
			}
			if err := rs.Consume(ctx, "b", exp); err != nil {
				t.Fatalf("other id: %v", err)
			}
			if err := rs.Consume(ctx, "", exp); !errors.Is(err, auth.ErrNoTokenID) {
				t.Fatalf("empty id = %v, want ErrNoTokenID", err)
			}
		})
	}
}

func TestConsumeContext(t *testing.T) {
	t.Parallel()
	rs := open(t, tempPath(t), newFakeClock(t0)).ReplayStore()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rs.Consume(ctx, "a", t0.Add(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume with cancelled context = %v, want context.Canceled", err)
	}
	// The cancelled call consumed nothing.
	if err := rs.Consume(context.Background(), "a", t0.Add(time.Minute)); err != nil {
		t.Fatalf("Consume after cancelled call: %v", err)
	}
}

func TestConsumeExpired(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := newFakeClock(t0)
			rs := open(t, k.path(t), clock).ReplayStore()
			exp := t0.Add(time.Minute)
			if err := rs.Consume(ctx, "a", exp); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute - time.Millisecond)
			if err := rs.Consume(ctx, "a", exp); !errors.Is(err, auth.ErrReplayed) {
				t.Fatalf("1ms before expiry = %v, want ErrReplayed", err)
			}
			clock.Advance(time.Millisecond) // now == expiry: no longer live
			if err := rs.Consume(ctx, "a", t0.Add(2*time.Minute)); err != nil {
				t.Fatalf("at expiry: %v", err)
			}
			// Consumed again with the new expiry.
			clock.Advance(30 * time.Second)
			if err := rs.Consume(ctx, "a", t0.Add(3*time.Minute)); !errors.Is(err, auth.ErrReplayed) {
				t.Fatalf("after re-consume = %v, want ErrReplayed", err)
			}
		})
	}
}

func TestConsumeSubMillisecondExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock(t0)
	rs := open(t, store.MemoryPath, clock).ReplayStore()
	// The expiry rounds up, so the entry is never forgotten early.
	if err := rs.Consume(ctx, "a", t0.Add(time.Millisecond+time.Microsecond)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Millisecond + time.Microsecond/2)
	if err := rs.Consume(ctx, "a", t0.Add(time.Minute)); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("before sub-millisecond expiry = %v, want ErrReplayed", err)
	}
}

// consumeRace runs n goroutines, spread over stores, consuming one jti at
// once, and returns how many succeeded. Every failure must be ErrReplayed.
func consumeRace(t *testing.T, n int, stores ...*store.ReplayStore) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = stores[i%len(stores)].Consume(context.Background(), "shared", t0.Add(time.Minute))
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, auth.ErrReplayed):
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	return ok
}

func TestConsumeConcurrent(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			rs := open(t, k.path(t), newFakeClock(t0)).ReplayStore()
			if ok := consumeRace(t, 50, rs); ok != 1 {
				t.Fatalf("%d of 50 concurrent Consume calls succeeded, want 1", ok)
			}
		})
	}
}

// TestConsumeTwoHandles stands in for two processes sharing the file: each
// Open has its own connections, and only SQLite's file locking keeps them
// apart.
func TestConsumeTwoHandles(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	clock := newFakeClock(t0)
	a := open(t, path, clock).ReplayStore()
	b := open(t, path, clock).ReplayStore()
	for round := range 20 {
		jti := fmt.Sprintf("jti-%d", round)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  [2][5]error
		)
		for i, rs := range []*store.ReplayStore{a, b} {
			for j := range 5 {
				wg.Go(func() {
					<-start
					errs[i][j] = rs.Consume(context.Background(), jti, t0.Add(time.Minute))
				})
			}
		}
		close(start)
		wg.Wait()
		ok := 0
		for i := range errs {
			for _, err := range errs[i] {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, auth.ErrReplayed):
					t.Fatalf("round %d, handle %d: %v", round, i, err)
				}
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 10 Consume calls over two handles succeeded, want 1", round, ok)
		}
	}
	// Each handle sees what the other consumed.
	if err := a.Consume(context.Background(), "x", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Consume(context.Background(), "x", t0.Add(time.Minute)); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("replay through the other handle = %v, want ErrReplayed", err)
	}
}

func TestConsumePersists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	clock := newFakeClock(t0)
	db, err := store.Open(ctx, path, store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ReplayStore().Consume(ctx, "a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	rs := open(t, path, clock).ReplayStore()
	if err := rs.Consume(ctx, "a", t0.Add(time.Hour)); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("Consume after reopen = %v, want ErrReplayed", err)
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	clock := newFakeClock(t0)
	db := open(t, path, clock)
	rs, rv := db.ReplayStore(), db.Revocations()

	// More expired replay rows than one sweep batch holds.
	const short = 2500
	for i := range short {
		if err := rs.Consume(ctx, fmt.Sprintf("short-%d", i), t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.Consume(ctx, "long", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		rv.RevokeSession(ctx, "s-short", t0.Add(time.Minute)),
		rv.RevokeSession(ctx, "s-long", t0.Add(time.Hour)),
		rv.RevokeUser(ctx, "u-short", t0, t0.Add(time.Minute)),
		rv.RevokeUser(ctx, "u-long", t0, t0.Add(time.Hour)),
		rv.RevokeToken(ctx, "t-short", t0.Add(time.Minute)),
		rv.RevokeToken(ctx, "t-long", t0.Add(time.Hour)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	if n, err := db.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep before expiry = %d, %v; want 0, nil", n, err)
	}
	clock.Advance(2 * time.Minute)
	if n, err := db.Sweep(ctx); err != nil || n != short+3 {
		t.Fatalf("Sweep = %d, %v; want %d, nil", n, err, short+3)
	}
	if n, err := db.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0, nil", n, err)
	}
	for table, want := range map[string]int{"replay": 1, "revoked_session": 1, "revoked_user": 1, "revoked_token": 1} {
		if got := count(t, path, table); got != want {
			t.Errorf("%s has %d rows after Sweep, want %d", table, got, want)
		}
	}
	if err := rs.Consume(ctx, "long", t0.Add(time.Hour)); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("live entry after Sweep = %v, want ErrReplayed", err)
	}
	if err := rs.Consume(ctx, "short-0", t0.Add(time.Hour)); err != nil {
		t.Fatalf("swept entry: %v", err)
	}
}
