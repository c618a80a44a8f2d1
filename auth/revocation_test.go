package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
)

func TestMemoryRevocationsKinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	until := t0.Add(time.Hour)
	base := auth.Identity{User: "alice", Session: "sess-1", TokenID: "jti-1", IssuedAt: t0.Add(-time.Minute)}
	tests := []struct {
		name    string
		revoke  func(r *auth.MemoryRevocations) error
		id      auth.Identity
		revoked bool
	}{
		{"nothing revoked", func(*auth.MemoryRevocations) error { return nil }, base, false},
		{"session", func(r *auth.MemoryRevocations) error { return r.RevokeSession(ctx, "sess-1", until) }, base, true},
		{"other session", func(r *auth.MemoryRevocations) error { return r.RevokeSession(ctx, "sess-2", until) }, base, false},
		{"token", func(r *auth.MemoryRevocations) error { return r.RevokeToken(ctx, "jti-1", until) }, base, true},
		{"other token", func(r *auth.MemoryRevocations) error { return r.RevokeToken(ctx, "jti-2", until) }, base, false},
		{"user, issued before", func(r *auth.MemoryRevocations) error { return r.RevokeUser(ctx, "alice", t0, until) }, base, true},
		{"other user", func(r *auth.MemoryRevocations) error { return r.RevokeUser(ctx, "bob", t0, until) }, base, false},
		{
			"user, iat equal to at",
			func(r *auth.MemoryRevocations) error { return r.RevokeUser(ctx, "alice", t0, until) },
			auth.Identity{User: "alice", IssuedAt: t0},
			true,
		},
		{
			"user, iat one second after at",
			func(r *auth.MemoryRevocations) error { return r.RevokeUser(ctx, "alice", t0, until) },
			auth.Identity{User: "alice", IssuedAt: t0.Add(time.Second)},
			false,
		},
		{
			"user, no iat counts as the epoch",
			func(r *auth.MemoryRevocations) error { return r.RevokeUser(ctx, "alice", t0, until) },
			auth.Identity{User: "alice"},
			true,
		},
		{
			"session ids do not collide with user ids",
			func(r *auth.MemoryRevocations) error { return r.RevokeSession(ctx, "alice", until) },
			auth.Identity{User: "alice", IssuedAt: t0},
			false,
		},
		{
			"token ids do not collide with session ids",
			func(r *auth.MemoryRevocations) error { return r.RevokeToken(ctx, "sess-1", until) },
			auth.Identity{User: "alice", Session: "sess-1"},
			false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := auth.NewMemoryRevocations(fixedClock(t0))
			if err := tt.revoke(r); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			got, err := r.Revoked(ctx, tt.id)
			if err != nil {
				t.Fatalf("Revoked: %v", err)
			}
			if got != tt.revoked {
				t.Errorf("Revoked = %v, want %v", got, tt.revoked)
			}
		})
	}
}

func TestMemoryRevocationsExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock(t0)
	r := auth.NewMemoryRevocations(clock.Now)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.RevokeSession(ctx, "s", t0.Add(10*time.Minute)))
	must(r.RevokeToken(ctx, "j", t0.Add(20*time.Minute)))
	must(r.RevokeUser(ctx, "u", t0, t0.Add(30*time.Minute)))
	// A shorter revocation never shortens one in force.
	must(r.RevokeSession(ctx, "s", t0.Add(time.Minute)))
	// A later "at" extends a user revocation to newer tokens.
	must(r.RevokeUser(ctx, "u", t0.Add(time.Minute), t0.Add(time.Minute)))

	revoked := func(id auth.Identity) bool {
		t.Helper()
		ok, err := r.Revoked(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !revoked(auth.Identity{User: "x", Session: "s"}) || !revoked(auth.Identity{User: "x", TokenID: "j"}) {
		t.Fatal("session or token not revoked")
	}
	if !revoked(auth.Identity{User: "u", IssuedAt: t0.Add(time.Minute)}) {
		t.Error("user revocation not extended to the later at")
	}
	if n := r.Sweep(); n != 0 || r.Len() != 3 {
		t.Fatalf("Sweep = %d, Len = %d before expiry, want 0 and 3", n, r.Len())
	}

	clock.Advance(10*time.Minute - time.Nanosecond)
	if !revoked(auth.Identity{User: "x", Session: "s"}) {
		t.Error("session revocation ended early (shortened?)")
	}
	clock.Advance(time.Nanosecond)
	if revoked(auth.Identity{User: "x", Session: "s"}) {
		t.Error("session still revoked at its until, before Sweep")
	}
	if n := r.Sweep(); n != 1 || r.Len() != 2 {
		t.Errorf("Sweep = %d, Len = %d at 10m, want 1 and 2", n, r.Len())
	}
	clock.Advance(20 * time.Minute)
	if revoked(auth.Identity{User: "x", TokenID: "j"}) || revoked(auth.Identity{User: "u", IssuedAt: t0}) {
		t.Error("revocations still in force after until")
	}
	if n := r.Sweep(); n != 2 || r.Len() != 0 {
		t.Errorf("Sweep = %d, Len = %d at 30m, want 2 and 0", n, r.Len())
	}
	// An expired entry is replaced, not merged.
	must(r.RevokeSession(ctx, "s", clock.Now().Add(time.Minute)))
	if r.Len() != 1 || !revoked(auth.Identity{User: "x", Session: "s"}) {
		t.Error("session not revoked again")
	}
}

func TestMemoryRevocationsOpportunisticSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock(t0)
	r := auth.NewMemoryRevocations(clock.Now)
	const n = 20_000
	for i := range n {
		if err := r.RevokeToken(ctx, fmt.Sprint("old", i), t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	for i := range n {
		if err := r.RevokeToken(ctx, fmt.Sprint("new", i), clock.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.Len(); got >= 2*n {
		t.Errorf("Len = %d: writes never swept expired entries", got)
	}
}

func TestMemoryRevocationsRejects(t *testing.T) {
	t.Parallel()
	r := auth.NewMemoryRevocations(fixedClock(t0))
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	later := t0.Add(time.Minute)
	tests := []struct {
		name string
		err  error
	}{
		{"empty session", r.RevokeSession(ctx, "", later)},
		{"empty user", r.RevokeUser(ctx, "", t0, later)},
		{"empty token", r.RevokeToken(ctx, "", later)},
		{"zero until", r.RevokeSession(ctx, "s", time.Time{})},
		{"until now", r.RevokeToken(ctx, "j", t0)},
		{"until in the past", r.RevokeUser(ctx, "u", t0, t0.Add(-time.Second))},
		{"cancelled context", r.RevokeSession(done, "s", later)},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if r.Len() != 0 {
		t.Errorf("Len = %d after refused revocations", r.Len())
	}
	if _, err := r.Revoked(done, auth.Identity{User: "u"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Revoked with a cancelled context = %v", err)
	}
}

func TestMemoryRevocationsConcurrent(t *testing.T) {
	t.Parallel()
	r := auth.NewMemoryRevocations(fixedClock(t0))
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				sid := fmt.Sprintf("s%d-%d", g, i)
				if err := r.RevokeSession(ctx, sid, t0.Add(time.Minute)); err != nil {
					t.Error(err)
					return
				}
				ok, err := r.Revoked(ctx, auth.Identity{User: "u", Session: sid})
				if err != nil || !ok {
					t.Errorf("Revoked(%s) = %v, %v", sid, ok, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			r.Sweep()
		}
	})
	wg.Wait()
	if got := r.Len(); got != 8*200 {
		t.Errorf("Len = %d, want %d", got, 8*200)
	}
}

// TestVerifyRevocations wires MemoryRevocations into a Verifier.
func TestVerifyRevocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock(t0)
	revs := auth.NewMemoryRevocations(clock.Now)
	cfg := hsConfig()
	cfg.Now = clock.Now
	cfg.Revocations = revs
	v := newVerifier(t, cfg)

	tok := hs256(t, baseClaims()) // sub alice, sid sess-1, jti jti-1, iat t0
	if _, err := v.Verify(tok, auth.KindConnect); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	until := t0.Add(time.Hour)

	if err := revs.RevokeToken(ctx, "jti-1", until); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(tok, auth.KindConnect)
	assertReason(t, err, auth.ReasonRevoked)
	if !errors.Is(err, auth.ErrRevoked) {
		t.Errorf("errors.Is(err, ErrRevoked) = false for %v", err)
	}
	// A revoked token is not consumed by VerifyOnce.
	store := auth.NewMemoryReplayStore(clock.Now)
	_, err = v.VerifyOnce(ctx, store, tok, auth.KindConnect)
	assertReason(t, err, auth.ReasonRevoked)
	if store.Len() != 0 {
		t.Error("VerifyOnce consumed a revoked token")
	}

	other := hs256(t, with(baseClaims(), map[string]any{"jti": "jti-2"}))
	if _, err := v.Verify(other, auth.KindConnect); err != nil {
		t.Fatalf("other token: %v", err)
	}
	if err := revs.RevokeSession(ctx, "sess-1", until); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(other, auth.KindConnect)
	assertReason(t, err, auth.ReasonRevoked)

	// User revocation at t0: tokens issued at t0 are refused, a token
	// issued a second later (a new sign-in) is accepted.
	if err := revs.RevokeUser(ctx, "alice", t0, until); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	sameSecond := hs256(t, with(baseClaims(), map[string]any{"jti": "jti-3", "sid": "sess-2"}))
	_, err = v.Verify(sameSecond, auth.KindConnect)
	assertReason(t, err, auth.ReasonRevoked)
	noIAT := hs256(t, with(baseClaims(), map[string]any{"jti": "jti-4", "sid": "sess-2", "iat": nil}))
	_, err = v.Verify(noIAT, auth.KindConnect)
	assertReason(t, err, auth.ReasonRevoked)
	fresh := hs256(t, with(baseClaims(), map[string]any{
		"jti": "jti-5", "sid": "sess-2", "iat": t0.Add(time.Second).Unix(), "exp": t0.Add(6 * time.Minute).Unix(),
	}))
	if _, err := v.Verify(fresh, auth.KindConnect); err != nil {
		t.Fatalf("token issued after the user revocation: %v", err)
	}
}

// failingRevocations is a Revocations whose back end is down.
type failingRevocations struct{ auth.Revocations }

var errRevocationsDown = errors.New("revocations down")

func (failingRevocations) Revoked(context.Context, auth.Identity) (bool, error) {
	return false, errRevocationsDown
}

func TestVerifyRevocationsFailure(t *testing.T) {
	t.Parallel()
	cfg := hsConfig()
	cfg.Revocations = failingRevocations{}
	id, err := newVerifier(t, cfg).Verify(hs256(t, baseClaims()), auth.KindConnect)
	if !errors.Is(err, errRevocationsDown) {
		t.Fatalf("Verify = %v, want the back end's error", err)
	}
	if errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("a back-end failure must not look like an invalid token: %v", err)
	}
	if id.User != "" {
		t.Errorf("identity %+v returned with an error", id)
	}
}
