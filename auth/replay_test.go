package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
)

func TestMemoryReplayStoreConsumeTwice(t *testing.T) {
	t.Parallel()
	s := auth.NewMemoryReplayStore(fixedClock(t0))
	ctx := context.Background()
	exp := t0.Add(time.Minute)
	if err := s.Consume(ctx, "jti-1", exp); err != nil {
		t.Fatalf("first Consume: %v", err)
	}
	if err := s.Consume(ctx, "jti-1", exp); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("second Consume = %v, want ErrReplayed", err)
	}
	if err := s.Consume(ctx, "jti-2", exp); err != nil {
		t.Fatalf("Consume of another id: %v", err)
	}
	if n := s.Len(); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}
}

func TestMemoryReplayStoreConcurrentConsume(t *testing.T) {
	t.Parallel()
	s := auth.NewMemoryReplayStore(fixedClock(t0))
	var ok, replayed atomic.Int32
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			<-start
			switch err := s.Consume(context.Background(), "shared", t0.Add(time.Minute)); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, auth.ErrReplayed):
				replayed.Add(1)
			default:
				t.Errorf("Consume: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 49 {
		t.Fatalf("%d successes and %d replays, want 1 and 49", ok.Load(), replayed.Load())
	}
}

func TestMemoryReplayStoreExpiry(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	s := auth.NewMemoryReplayStore(clock.Now)
	ctx := context.Background()
	exp := t0.Add(time.Minute)
	if err := s.Consume(ctx, "a", exp); err != nil {
		t.Fatal(err)
	}
	if err := s.Consume(ctx, "b", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	clock.Advance(time.Minute - time.Nanosecond)
	if err := s.Consume(ctx, "a", exp); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("Consume just before expiry = %v, want ErrReplayed", err)
	}
	if n := s.Sweep(); n != 0 {
		t.Errorf("Sweep before expiry removed %d", n)
	}

	clock.Advance(time.Nanosecond)
	if n := s.Sweep(); n != 1 {
		t.Errorf("Sweep at expiry removed %d, want 1", n)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len after Sweep = %d, want 1", n)
	}
	if err := s.Consume(ctx, "a", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Consume after expiry: %v", err)
	}
	if err := s.Consume(ctx, "a", t0.Add(2*time.Minute)); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("replay of the re-consumed id = %v, want ErrReplayed", err)
	}
}

// TestMemoryReplayStoreExpiredWithoutSweep checks that an expired entry is
// consumable even before any sweep removed it.
func TestMemoryReplayStoreExpiredWithoutSweep(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	s := auth.NewMemoryReplayStore(clock.Now)
	ctx := context.Background()
	if err := s.Consume(ctx, "a", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if err := s.Consume(ctx, "a", t0.Add(time.Minute)); err != nil {
		t.Fatalf("Consume of expired entry: %v", err)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

func TestMemoryReplayStoreOpportunisticSweep(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	s := auth.NewMemoryReplayStore(clock.Now)
	ctx := context.Background()
	const n = 100_000
	for i := range n {
		if err := s.Consume(ctx, fmt.Sprint("old-", i), t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Hour)
	for i := range n {
		if err := s.Consume(ctx, fmt.Sprint("new-", i), t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// Without opportunistic sweeps the store would hold 2n entries.
	if got := s.Len(); got >= 2*n-n/2 {
		t.Errorf("Len = %d after %d expired and %d live inserts; expired entries were not swept", got, n, n)
	}
	s.Sweep()
	if got := s.Len(); got != n {
		t.Errorf("Len after Sweep = %d, want %d", got, n)
	}
}

func TestMemoryReplayStoreRejects(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		jti  string
		want error
	}{
		{"empty jti", context.Background(), "", auth.ErrNoTokenID},
		{"cancelled context", cancelled, "a", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := auth.NewMemoryReplayStore(nil)
			if err := s.Consume(tt.ctx, tt.jti, time.Now().Add(time.Minute)); !errors.Is(err, tt.want) {
				t.Fatalf("Consume = %v, want %v", err, tt.want)
			}
			if n := s.Len(); n != 0 {
				t.Errorf("Len = %d after a refused Consume", n)
			}
		})
	}
}

func TestVerifyOnce(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	v := newVerifier(t, auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret, Now: clock.Now, Leeway: 30 * time.Second})
	store := auth.NewMemoryReplayStore(clock.Now)
	ctx := context.Background()
	tok := hs256(t, baseClaims())

	if _, err := v.VerifyOnce(ctx, store, tok, auth.KindConnect); err != nil {
		t.Fatalf("first VerifyOnce: %v", err)
	}
	_, err := v.VerifyOnce(ctx, store, tok, auth.KindConnect)
	assertReason(t, err, auth.ReasonReplayed)
	if !errors.Is(err, auth.ErrReplayed) {
		t.Errorf("errors.Is(err, ErrReplayed) = false for %v", err)
	}

	// Inside the leeway after exp the token still verifies, so its id must
	// still be remembered.
	clock.Advance(5*time.Minute + 20*time.Second)
	_, err = v.VerifyOnce(ctx, store, tok, auth.KindConnect)
	assertReason(t, err, auth.ReasonReplayed)

	_, err = v.VerifyOnce(ctx, store, hs256(t, with(baseClaims(), map[string]any{"jti": nil})), auth.KindConnect)
	assertReason(t, err, auth.ReasonNoJTI)

	_, err = v.VerifyOnce(ctx, store, hs256(t, with(baseClaims(), map[string]any{"jti": "other", "kind": "subscribe"})), auth.KindConnect)
	assertReason(t, err, auth.ReasonKind)
}

// failingStore is a ReplayStore whose back end is down.
type failingStore struct{}

var errStoreDown = errors.New("store down")

func (failingStore) Consume(context.Context, string, time.Time) error { return errStoreDown }

func TestVerifyOnceStoreFailure(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, hsConfig())
	_, err := v.VerifyOnce(context.Background(), failingStore{}, hs256(t, baseClaims()), auth.KindConnect)
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("VerifyOnce = %v, want the store's error", err)
	}
	if errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("a store failure must not look like an invalid token: %v", err)
	}
}

func TestReplayExpiry(t *testing.T) {
	t.Parallel()
	cfg := hsConfig()
	cfg.Leeway = 10 * time.Second
	v := newVerifier(t, cfg)
	id := auth.Identity{ExpiresAt: t0}
	if got := v.ReplayExpiry(id); !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("ReplayExpiry = %v, want %v", got, t0.Add(10*time.Second))
	}
}

func BenchmarkMemoryReplayStoreConsume(b *testing.B) {
	s := auth.NewMemoryReplayStore(fixedClock(t0))
	ctx := context.Background()
	exp := t0.Add(time.Minute)
	var i atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Consume(ctx, fmt.Sprint(i.Add(1)), exp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
