package redis_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/poll"
)

// TestReplayRace: the same jti consumed concurrently through two engines
// succeeds exactly once.
func TestReplayRace(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	stores := []auth.ReplayStore{newEngine(t, addr, prefix).ReplayStore(), newEngine(t, addr, prefix).ReplayStore()}
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	for round := range 3 {
		jti := "jti-" + string(rune('a'+round))
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, replayed := 0, 0
		start := make(chan struct{})
		for i := range 50 {
			s := stores[i%2]
			wg.Go(func() {
				<-start
				err := s.Consume(ctx, jti, exp)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, auth.ErrReplayed):
					replayed++
				default:
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok != 1 || replayed != 49 {
			t.Fatalf("round %d: %d succeeded, %d replayed; want 1 and 49", round, ok, replayed)
		}
	}
}

func TestReplayExpiryAndInput(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a, b := newEngine(t, addr, prefix).ReplayStore(), newEngine(t, addr, prefix).ReplayStore()
	other := newEngine(t, addr, testPrefix(t)).ReplayStore()
	ctx := context.Background()
	if err := a.Consume(ctx, "", time.Now().Add(time.Minute)); !errors.Is(err, auth.ErrNoTokenID) {
		t.Fatalf("empty jti: %v", err)
	}
	if err := a.Consume(ctx, "short", time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := b.Consume(ctx, "short", time.Now().Add(time.Minute)); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("replay on the other node: %v", err)
	}
	// Another key prefix is another deployment.
	if err := other.Consume(ctx, "short", time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("other prefix: %v", err)
	}
	poll.Until(t, "the entry to expire", func() bool {
		return b.Consume(ctx, "short", time.Now().Add(time.Minute)) == nil
	})
	if err := a.Consume(ctx, "short", time.Now().Add(time.Minute)); !errors.Is(err, auth.ErrReplayed) {
		t.Fatalf("after re-consume: %v", err)
	}
	// An already expired token id is not recorded.
	if err := a.Consume(ctx, "past", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := a.Consume(ctx, "past", time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("id consumed with a past expiry was recorded: %v", err)
	}
}

// TestRevocationsAcrossEngines: a revocation written by one engine is seen
// by another, with the user revocation's issued-at cut-off.
func TestRevocationsAcrossEngines(t *testing.T) {
	t.Parallel()
	addr, prefix := needRedis(t), testPrefix(t)
	a, b := newEngine(t, addr, prefix).Revocations(), newEngine(t, addr, prefix).Revocations()
	ctx := context.Background()
	now := time.Now()
	at := now.Truncate(time.Second)
	until := now.Add(time.Hour)
	if err := a.RevokeUser(ctx, "alice", at, until); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeSession(ctx, "s1", until); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(ctx, "t1", until); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   auth.Identity
		want bool
	}{
		{"user before", auth.Identity{User: "alice", IssuedAt: at.Add(-time.Minute)}, true},
		{"user same second", auth.Identity{User: "alice", IssuedAt: at}, true},
		{"user without iat", auth.Identity{User: "alice"}, true},
		{"user after", auth.Identity{User: "alice", IssuedAt: at.Add(time.Second)}, false},
		{"other user", auth.Identity{User: "bob", IssuedAt: at.Add(-time.Minute)}, false},
		{"session", auth.Identity{User: "bob", Session: "s1", IssuedAt: at.Add(time.Hour)}, true},
		{"other session", auth.Identity{User: "bob", Session: "s2"}, false},
		{"token", auth.Identity{User: "bob", TokenID: "t1"}, true},
		{"other token", auth.Identity{User: "bob", TokenID: "t2"}, false},
		{"empty", auth.Identity{}, false},
	}
	for _, tt := range tests {
		got, err := b.Revoked(ctx, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s: Revoked = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Never shortened, never narrowed: an earlier at and until keep the
	// later ones.
	if err := b.RevokeUser(ctx, "alice", at.Add(-time.Hour), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Revoked(ctx, auth.Identity{User: "alice", IssuedAt: at}); !got {
		t.Error("an earlier at narrowed the user revocation")
	}
	// Expiry.
	if err := a.RevokeToken(ctx, "brief", time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Revoked(ctx, auth.Identity{TokenID: "brief"}); !got {
		t.Error("brief revocation not in force")
	}
	poll.Until(t, "the brief revocation to end", func() bool {
		got, err := b.Revoked(ctx, auth.Identity{TokenID: "brief"})
		return err == nil && !got
	})
	// Bad input.
	if err := a.RevokeUser(ctx, "", at, until); err == nil {
		t.Error("empty user accepted")
	}
	if err := a.RevokeSession(ctx, "s", now.Add(-time.Second)); err == nil {
		t.Error("until in the past accepted")
	}
}
