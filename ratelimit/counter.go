package ratelimit

import (
	"context"
)

// Counter caps how many holders a key may have at once, such as the open
// connections of one IP: Acquire when a connection opens, Release exactly
// once when it closes.
//
// Implementations are safe for concurrent use and keep no state for a key
// whose count is zero.
type Counter interface {
	// Acquire increments key's count and reports true, unless the count is
	// already max or more, in which case it changes nothing and reports
	// false. A max below 1 admits nobody.
	Acquire(ctx context.Context, key string, max int) (bool, error)
	// Release decrements key's count, removing the key when it reaches
	// zero.
	Release(ctx context.Context, key string) error
}

// MemoryCounter is an in-process [Counter]. Counts live in 64 shards keyed
// with [hash/maphash], each behind its own mutex; a key is removed when its
// count returns to zero, so memory is proportional to the keys currently
// held.
//
// MemoryCounter is safe for concurrent use.
type MemoryCounter struct {
	t *table[int]
}

var _ Counter = (*MemoryCounter)(nil)

// NewMemoryCounter returns an empty MemoryCounter.
func NewMemoryCounter() *MemoryCounter {
	return &MemoryCounter{t: newTable[int]()}
}

// Acquire increments key's count and reports true unless it is already at
// max (or max is below 1). The only error is a done context, wrapped, in
// which case nothing changes.
func (c *MemoryCounter) Acquire(ctx context.Context, key string, max int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, ctxErr(err)
	}
	s := c.t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.m[key]
	if n >= max {
		return false, nil
	}
	if ok {
		s.m[key] = n + 1
	} else {
		s.m[ownKey(key)] = 1
	}
	return true, nil
}

// Release decrements key's count and removes the key when it reaches zero.
// It returns [ErrNotAcquired] if key holds nothing. Release does not look at
// ctx: a slot must be given back even while shutting down.
func (c *MemoryCounter) Release(_ context.Context, key string) error {
	s := c.t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.m[key]
	switch {
	case !ok:
		return ErrNotAcquired
	case n <= 1:
		delete(s.m, key)
	default:
		s.m[key] = n - 1
	}
	return nil
}

// Count returns key's current count.
func (c *MemoryCounter) Count(key string) int {
	s := c.t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

// Len returns the number of keys with a non-zero count.
func (c *MemoryCounter) Len() int { return c.t.len() }
