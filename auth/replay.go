package auth

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
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

// minSweepLen is the shard size below which Consume never sweeps.
const minSweepLen = 256

// MemoryReplayStore is a sharded in-memory ReplayStore for a single node.
// Expired entries are removed by Sweep and opportunistically: a shard is
// swept when it has doubled in size since its last sweep, which keeps the
// cost amortised constant. Use NewMemoryReplayStore; it is safe for
// concurrent use.
type MemoryReplayStore struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [replayShards]replayShard
}

type replayShard struct {
	mu      sync.Mutex
	entries map[string]time.Time // jti -> expiry
	sweepAt int                  // sweep when len(entries) reaches this
	_       [40]byte             // keep shards on separate cache lines
}

var _ ReplayStore = (*MemoryReplayStore)(nil)

// NewMemoryReplayStore returns an empty store using now as its clock
// (nil now = time.Now).
func NewMemoryReplayStore(now func() time.Time) *MemoryReplayStore {
	if now == nil {
		now = time.Now
	}
	s := &MemoryReplayStore{now: now, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].entries = make(map[string]time.Time)
		s.shards[i].sweepAt = minSweepLen
	}
	return s
}

func (s *MemoryReplayStore) shard(jti string) *replayShard {
	return &s.shards[maphash.String(s.seed, jti)%replayShards]
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
	sh := s.shard(jti)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if exp, ok := sh.entries[jti]; ok && now.Before(exp) {
		return ErrReplayed
	}
	sh.entries[jti] = expiresAt
	if len(sh.entries) >= sh.sweepAt {
		sh.sweepLocked(now)
	}
	return nil
}

// sweepLocked removes expired entries and sets the next sweep threshold.
func (sh *replayShard) sweepLocked(now time.Time) int {
	n := 0
	for jti, exp := range sh.entries {
		if !now.Before(exp) {
			delete(sh.entries, jti)
			n++
		}
	}
	sh.sweepAt = max(2*len(sh.entries), minSweepLen)
	return n
}

// Sweep removes expired entries and returns how many it removed.
func (s *MemoryReplayStore) Sweep() int {
	now := s.now()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.sweepLocked(now)
		sh.mu.Unlock()
	}
	return n
}

// Len returns the number of entries held, including expired entries not yet
// swept.
func (s *MemoryReplayStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}
