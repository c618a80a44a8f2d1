package ratelimit

import (
	"context"
	"time"
)

// Cooldown refuses keys until a given time, such as an IP whose connection
// was closed with 4429, which may not reconnect for a few seconds.
//
// Implementations are safe for concurrent use.
type Cooldown interface {
	// Block refuses key until until. A key already blocked longer stays
	// blocked longer: Block never shortens a block.
	Block(ctx context.Context, key string, until time.Time) error
	// Blocked reports whether key is refused at now and, if so, for how
	// much longer (always positive then).
	Blocked(ctx context.Context, key string, now time.Time) (retryAfter time.Duration, blocked bool, err error)
}

// MemoryCooldown is an in-process [Cooldown]. Blocks live in 64 shards keyed
// with [hash/maphash], each behind its own mutex. An expired block is
// removed when Blocked sees it; [MemoryCooldown.Sweep] removes the others,
// so the owner should call it periodically.
//
// MemoryCooldown is safe for concurrent use.
type MemoryCooldown struct {
	t *table[time.Time]
}

var _ Cooldown = (*MemoryCooldown)(nil)

// NewMemoryCooldown returns an empty MemoryCooldown.
func NewMemoryCooldown() *MemoryCooldown {
	return &MemoryCooldown{t: newTable[time.Time]()}
}

// Block refuses key until until, or longer if it is already blocked longer.
// The only error is a done context, wrapped, in which case nothing changes.
func (c *MemoryCooldown) Block(ctx context.Context, key string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return ctxErr(err)
	}
	s := c.t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[key]
	switch {
	case !ok:
		s.m[ownKey(key)] = until
	case until.After(old):
		s.m[key] = until
	}
	return nil
}

// Blocked reports whether key is refused at now and for how much longer. It
// forgets the key if its block has expired. The only error is a done
// context, wrapped, in which case blocked is true: a caller that ignores the
// error still refuses.
func (c *MemoryCooldown) Blocked(ctx context.Context, key string, now time.Time) (time.Duration, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, true, ctxErr(err)
	}
	s := c.t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.m[key]
	if !ok {
		return 0, false, nil
	}
	if !now.Before(until) {
		delete(s.m, key)
		return 0, false, nil
	}
	return until.Sub(now), true, nil
}

// Sweep removes the blocks that have expired at now and returns how many
// it removed.
func (c *MemoryCooldown) Sweep(now time.Time) int {
	return c.t.sweep(func(until time.Time) bool { return !now.Before(until) })
}

// Len returns the number of keys with a block, including expired blocks
// not yet removed.
func (c *MemoryCooldown) Len() int { return c.t.len() }
