package auth

import (
	"context"
	"fmt"
	"hash/maphash"
	"time"
)

// ReplayStore records consumed single-use token ids.
//
// Implementations must be safe for concurrent use and Consume must be
// atomic: when several callers consume the same id concurrently, exactly one
// succeeds. Pass Verifier.ReplayExpiry (the token's expiry plus the verifier
// leeway) as expiresAt so that an id is remembered for as long as its token
// could verify.
type ReplayStore interface {
	// Consume atomically marks jti as used until expiresAt. It returns
	// ErrReplayed if jti was already consumed and has not expired.
	Consume(ctx context.Context, jti string, expiresAt time.Time) error
}

// replayShards is the number of independently locked shards of a
// MemoryReplayStore.
const replayShards = 64

// MemoryReplayStore is a sharded in-memory ReplayStore for a single node.
// Expired entries are removed by Sweep and opportunistically: a shard is
// swept when it has doubled in size since its last sweep, which keeps the
// cost amortised constant. Use NewMemoryReplayStore; it is safe for
// concurrent use.
type MemoryReplayStore struct {
	now     func() time.Time
	seed    maphash.Seed
	entries expiringMap[string, time.Time] // jti -> expiry
}

var _ ReplayStore = (*MemoryReplayStore)(nil)

// NewMemoryReplayStore returns an empty store using now as its clock
// (nil now = time.Now).
func NewMemoryReplayStore(now func() time.Time) *MemoryReplayStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayStore{
		now:     now,
		seed:    maphash.MakeSeed(),
		entries: newExpiringMap[string](replayShards, func(exp time.Time) time.Time { return exp }),
	}
}

// Consume atomically marks jti as used until expiresAt. It returns
// ErrReplayed if jti was already consumed and has not expired, ErrNoTokenID
// for an empty jti and the context's error if ctx is already done. An entry
// is live while the clock is before its expiry; from then on the id may be
// consumed again.
func (s *MemoryReplayStore) Consume(ctx context.Context, jti string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("auth: consume: %w", err)
	}
	if jti == "" {
		return ErrNoTokenID
	}
	now := s.now()
	sh := &s.entries.shards[maphash.String(s.seed, jti)%replayShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if exp, ok := sh.entries[jti]; ok && now.Before(exp) {
		return ErrReplayed
	}
	s.entries.storeLocked(sh, jti, expiresAt, now)
	return nil
}

// Sweep removes expired entries and returns how many it removed.
func (s *MemoryReplayStore) Sweep() int { return s.entries.sweep(s.now()) }

// Len returns the number of entries held, including expired entries not yet
// swept.
func (s *MemoryReplayStore) Len() int { return s.entries.len() }
