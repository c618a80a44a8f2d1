package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/store"
)

func TestRevoked(t *testing.T) {
	t.Parallel()
	type revoke func(context.Context, *store.Revocations) error
	session := func(sid string, until time.Time) revoke {
		return func(ctx context.Context, r *store.Revocations) error { return r.RevokeSession(ctx, sid, until) }
	}
	user := func(sub string, at, until time.Time) revoke {
		return func(ctx context.Context, r *store.Revocations) error { return r.RevokeUser(ctx, sub, at, until) }
	}
	token := func(jti string, until time.Time) revoke {
		return func(ctx context.Context, r *store.Revocations) error { return r.RevokeToken(ctx, jti, until) }
	}
	alice := auth.Identity{User: "alice", Session: "s1", TokenID: "t1", IssuedAt: t0.Add(-time.Minute)}
	with := func(f func(*auth.Identity)) auth.Identity { id := alice; f(&id); return id }
	later := t0.Add(time.Hour)

	tests := []struct {
		name    string
		revoke  []revoke
		advance time.Duration
		id      auth.Identity
		want    bool
	}{
		{"nothing revoked", nil, 0, alice, false},
		{"session", []revoke{session("s1", later)}, 0, alice, true},
		{"other session", []revoke{session("s2", later)}, 0, alice, false},
		{"session, identity without session", []revoke{session("s1", later)}, 0, with(func(id *auth.Identity) { id.Session = "" }), false},
		{"token", []revoke{token("t1", later)}, 0, alice, true},
		{"other token", []revoke{token("t2", later)}, 0, alice, false},
		{"token, identity without id", []revoke{token("t1", later)}, 0, with(func(id *auth.Identity) { id.TokenID = "" }), false},
		{"user, iat before cut-off", []revoke{user("alice", t0, later)}, 0, alice, true},
		{"user, iat equal to cut-off", []revoke{user("alice", t0, later)}, 0, with(func(id *auth.Identity) { id.IssuedAt = t0 }), true},
		{"user, iat 1s after cut-off", []revoke{user("alice", t0, later)}, 0, with(func(id *auth.Identity) { id.IssuedAt = t0.Add(time.Second) }), false},
		{"user, iat 1ms after cut-off", []revoke{user("alice", t0, later)}, 0, with(func(id *auth.Identity) { id.IssuedAt = t0.Add(time.Millisecond) }), false},
		{"user, no iat", []revoke{user("alice", t0, later)}, 0, with(func(id *auth.Identity) { id.IssuedAt = time.Time{} }), true},
		{"user, cut-off at epoch, no iat", []revoke{user("alice", time.Unix(0, 0), later)}, 0, with(func(id *auth.Identity) { id.IssuedAt = time.Time{} }), true},
		{"user, cut-off at epoch, with iat", []revoke{user("alice", time.Unix(0, 0), later)}, 0, alice, false},
		{"other user", []revoke{user("bob", t0, later)}, 0, alice, false},
		{"session expired", []revoke{session("s1", t0.Add(time.Minute))}, time.Minute, alice, false},
		{"session 1ms before expiry", []revoke{session("s1", t0.Add(time.Minute))}, time.Minute - time.Millisecond, alice, true},
		{"user expired", []revoke{user("alice", t0, t0.Add(time.Minute))}, time.Minute, alice, false},
		{"token expired", []revoke{token("t1", t0.Add(time.Minute))}, time.Minute, alice, false},
		{"session re-revoked keeps later until", []revoke{session("s1", later), session("s1", t0.Add(time.Minute))}, 2 * time.Minute, alice, true},
		{"token re-revoked keeps later until", []revoke{token("t1", later), token("t1", t0.Add(time.Minute))}, 2 * time.Minute, alice, true},
		{"user re-revoked keeps later cut-off", []revoke{user("alice", t0, later), user("alice", t0.Add(-time.Hour), later)}, 0, alice, true},
		{"user re-revoked widens cut-off", []revoke{user("alice", t0.Add(-time.Hour), later), user("alice", t0, later)}, 0, alice, true},
		{"user re-revoked keeps later until", []revoke{user("alice", t0, later), user("alice", t0, t0.Add(time.Minute))}, 2 * time.Minute, alice, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := newFakeClock(t0)
			rv := open(t, store.MemoryPath, clock).Revocations()
			for _, r := range tt.revoke {
				if err := r(ctx, rv); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(tt.advance)
			got, err := rv.Revoked(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Revoked(%+v) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

// TestRevokeUserAfterExpiry checks that a new revocation replaces an expired
// one instead of inheriting its cut-off.
func TestRevokeUserAfterExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock(t0)
	rv := open(t, store.MemoryPath, clock).Revocations()
	if err := rv.RevokeUser(ctx, "alice", t0.Add(time.Hour), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if err := rv.RevokeUser(ctx, "alice", t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iat  time.Time
		want bool
	}{{t0, true}, {t0.Add(time.Second), false}} {
		got, err := rv.Revoked(ctx, auth.Identity{User: "alice", IssuedAt: tc.iat})
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("iat %v: Revoked = %v, want %v", tc.iat.Sub(t0), got, tc.want)
		}
	}
}

func TestRevokeEmptyID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rv := open(t, store.MemoryPath, newFakeClock(t0)).Revocations()
	for name, err := range map[string]error{
		"session": rv.RevokeSession(ctx, "", t0.Add(time.Hour)),
		"user":    rv.RevokeUser(ctx, "", t0, t0.Add(time.Hour)),
		"token":   rv.RevokeToken(ctx, "", t0.Add(time.Hour)),
	} {
		if !errors.Is(err, store.ErrEmptyID) {
			t.Errorf("%s: err = %v, want ErrEmptyID", name, err)
		}
	}
	got, err := rv.Revoked(ctx, auth.Identity{})
	if err != nil || got {
		t.Fatalf("Revoked(empty identity) = %v, %v; want false, nil", got, err)
	}
}

func TestRevocationsPersistAndShare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	clock := newFakeClock(t0)
	alice := auth.Identity{User: "alice", Session: "s1", TokenID: "t1", IssuedAt: t0}

	db, err := store.Open(ctx, path, store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	other := open(t, path, clock).Revocations() // a second process
	if err := db.Revocations().RevokeSession(ctx, "s1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Revoked(ctx, alice); err != nil || !got {
		t.Fatalf("Revoked through the other handle = %v, %v; want true, nil", got, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := open(t, path, clock).Revocations().Revoked(ctx, alice); err != nil || !got {
		t.Fatalf("Revoked after reopen = %v, %v; want true, nil", got, err)
	}
}

func TestRevokedContext(t *testing.T) {
	t.Parallel()
	rv := open(t, tempPath(t), newFakeClock(t0)).Revocations()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rv.Revoked(ctx, auth.Identity{User: "alice"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Revoked with cancelled context = %v, want context.Canceled", err)
	}
	if err := rv.RevokeUser(ctx, "alice", t0, t0.Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Fatalf("RevokeUser with cancelled context = %v, want context.Canceled", err)
	}
}

func TestRevokePastUntil(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rv := open(t, store.MemoryPath, newFakeClock(t0)).Revocations()
	for name, err := range map[string]error{
		"session now": rv.RevokeSession(ctx, "s1", t0),
		"user past":   rv.RevokeUser(ctx, "alice", t0, t0.Add(-time.Second)),
		"token zero":  rv.RevokeToken(ctx, "t1", time.Time{}),
	} {
		if err == nil {
			t.Errorf("%s: revocation with an until not after now succeeded", name)
		}
	}
}
