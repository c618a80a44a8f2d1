package ratelimit

// Store makes the limiters, counters and cooldowns of a gateway. The
// default, [MemoryStore], keeps them in the process; a store backed by a
// shared database makes the limits hold across every node using it. name
// identifies the limit ("attempts_ip", "conns_ip", "cooldown", …) and
// keeps the keys of different limits apart.
type Store interface {
	// NewLimiter returns a Limiter enforcing rule under name.
	NewLimiter(name string, rule Rule) (Limiter, error)
	// NewCounter returns a Counter of concurrent holders under name.
	NewCounter(name string) Counter
	// NewCooldown returns a Cooldown under name.
	NewCooldown(name string) Cooldown
}

// MemoryStore is the in-process [Store]: [NewMemory], [NewMemoryCounter]
// and [NewMemoryCooldown]. The values it returns have Sweep methods their
// owner should call periodically.
type MemoryStore struct{}

// NewLimiter returns NewMemory(rule).
func (MemoryStore) NewLimiter(_ string, rule Rule) (Limiter, error) { return NewMemory(rule) }

// NewCounter returns NewMemoryCounter().
func (MemoryStore) NewCounter(string) Counter { return NewMemoryCounter() }

// NewCooldown returns NewMemoryCooldown().
func (MemoryStore) NewCooldown(string) Cooldown { return NewMemoryCooldown() }
