package identity

import (
	"sync"
	"time"
)

// LockoutConfig configures a [Lockout]. Its zero value gives the defaults.
type LockoutConfig struct {
	// FreeFailures is how many consecutive failures a key may have before
	// it must wait: the FreeFailures-th failure locks it for BaseDelay.
	// Zero means 5; values below 1 act as 1 (every failure locks).
	FreeFailures int
	// BaseDelay is the first lock; each further failure doubles it. Zero
	// means 1 s.
	BaseDelay time.Duration
	// MaxDelay caps the lock. Zero means 15 min.
	MaxDelay time.Duration
	// IdleTTL is how long after its last failure, and once no longer
	// locked, a key's record is forgotten, so its count starts again.
	// Zero means 1 h.
	IdleTTL time.Duration
	// MaxKeys bounds the number of records kept. When it is reached, idle
	// records are swept and, if that frees nothing, a sampled record
	// (preferring ones not locked) is dropped. Zero means 100,000.
	MaxKeys int
}

func (c LockoutConfig) withDefaults() LockoutConfig {
	if c.FreeFailures == 0 {
		c.FreeFailures = 5
	}
	if c.FreeFailures < 1 {
		c.FreeFailures = 1
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 15 * time.Minute
	}
	if c.MaxDelay < c.BaseDelay {
		c.MaxDelay = c.BaseDelay
	}
	if c.IdleTTL <= 0 {
		c.IdleTTL = time.Hour
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100_000
	}
	return c
}

// Lockout throttles guessing: it counts consecutive failures per key (a user
// name, a client address) and locks a key with exponential back-off. With
// the defaults, five attempts in a row may fail without waiting; the fifth
// failure locks the key for 1 s, the sixth for 2 s, the seventh for 4 s, and
// so on up to 15 min. A
// success resets the key. A record idle for [LockoutConfig.IdleTTL] is
// forgotten (counting starts again) and [Lockout.Sweep] frees its memory.
//
// Check, Fail and Succeed suit callers that handle one attempt per key at a
// time. Callers that verify passwords concurrently use Begin and Done
// instead, which also count the attempts in flight, so that a burst of
// parallel guesses gets no more tries than a sequence would.
//
// Every method takes the current time, so tests drive a fake clock. A
// Lockout is safe for concurrent use.
type Lockout struct {
	cfg LockoutConfig

	mu        sync.Mutex
	records   map[string]*lockRecord
	lastSweep time.Time // of a sweep forced by MaxKeys
}

type lockRecord struct {
	failures int
	pending  int       // attempts admitted by Begin and not yet Done
	last     time.Time // of the latest failure
	until    time.Time // locked before this instant
}

// NewLockout returns a Lockout configured by cfg (zero fields take the
// defaults documented on [LockoutConfig]).
func NewLockout(cfg LockoutConfig) *Lockout {
	return &Lockout{cfg: cfg.withDefaults(), records: make(map[string]*lockRecord)}
}

// Check reports whether key is locked at now and, if so, for how long still.
// It changes nothing: a refused attempt is not a further failure.
func (l *Lockout) Check(key string, now time.Time) (retryAfter time.Duration, locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.records[key]
	if r == nil || !now.Before(r.until) {
		return 0, false
	}
	return r.until.Sub(now), true
}

// Fail records a failure of key at now and returns how long key is now
// locked, zero while it still has free failures.
func (l *Lockout) Fail(key string, now time.Time) (retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail(l.record(key, now), now)
}

// Begin admits an attempt for key at now, for callers that verify
// concurrently: with only Check and Fail, many guesses sent at once could
// all pass Check before the first Fail. Begin refuses (ok false) while key
// is locked and also when the attempts already admitted could use up the
// free failures: past them only one attempt at a time is admitted. A refusal
// because of attempts in flight reports BaseDelay as retryAfter. Every
// admitted attempt must be ended by exactly one [Lockout.Done].
func (l *Lockout) Begin(key string, now time.Time) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.records[key]; r != nil && now.Before(r.until) {
		return r.until.Sub(now), false
	}
	r := l.record(key, now)
	if r.pending > 0 && r.failures+r.pending >= l.cfg.FreeFailures {
		return l.cfg.BaseDelay, false
	}
	r.pending++
	return 0, true
}

// Done ends an attempt admitted by [Lockout.Begin], recording a failure if
// failed (as Fail does) and returning how long key is then locked. A
// success is not a reset by itself: call [Lockout.Succeed] for that, as
// suits the key (a user name, but not an address shared by many users).
func (l *Lockout) Done(key string, now time.Time, failed bool) (retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.records[key]
	if r != nil && r.pending > 0 {
		r.pending--
	}
	if !failed {
		if r != nil && now.Before(r.until) {
			return r.until.Sub(now)
		}
		return 0
	}
	return l.fail(l.record(key, now), now)
}

// Succeed resets key after a success.
func (l *Lockout) Succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.records[key]
	if r == nil {
		return
	}
	if r.pending > 0 {
		*r = lockRecord{pending: r.pending}
		return
	}
	delete(l.records, key)
}

// record returns key's record, creating it (making room if the map is full)
// or restarting it when idle. It is called with l.mu held.
func (l *Lockout) record(key string, now time.Time) *lockRecord {
	r := l.records[key]
	switch {
	case r == nil:
		if len(l.records) >= l.cfg.MaxKeys {
			l.makeRoom(now)
		}
		r = &lockRecord{}
		l.records[key] = r
	case l.idle(r, now):
		*r = lockRecord{}
	}
	return r
}

// fail counts a failure on r at now and returns the lock; l.mu is held.
func (l *Lockout) fail(r *lockRecord, now time.Time) time.Duration {
	if r.failures < 1<<30 {
		r.failures++
	}
	r.last = now
	if d := l.delay(r.failures); d > 0 {
		if until := now.Add(d); until.After(r.until) {
			r.until = until
		}
	}
	if now.Before(r.until) {
		return r.until.Sub(now)
	}
	return 0
}

// Sweep forgets the records idle at now (no failure for IdleTTL, not locked,
// no attempt in flight) and returns how many it removed. Call it
// periodically, say every minute.
func (l *Lockout) Sweep(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sweep(now)
}

// Len returns the number of keys with a record.
func (l *Lockout) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.records)
}

func (l *Lockout) sweep(now time.Time) int {
	n := 0
	for k, r := range l.records {
		if l.idle(r, now) {
			delete(l.records, k)
			n++
		}
	}
	return n
}

// idle reports whether r can be forgotten: nothing in flight, not locked and
// no failure for IdleTTL. A record made by Begin and never failed has a zero
// last failure, so it is idle as soon as its attempts are done.
func (l *Lockout) idle(r *lockRecord, now time.Time) bool {
	return r.pending == 0 && !now.Before(r.until) && now.Sub(r.last) >= l.cfg.IdleTTL
}

// delay returns the lock earned by the n-th consecutive failure.
func (l *Lockout) delay(n int) time.Duration {
	if n < l.cfg.FreeFailures {
		return 0
	}
	d := l.cfg.BaseDelay
	for i := l.cfg.FreeFailures; i < n && d < l.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.cfg.MaxDelay)
}

// makeRoom frees at least one record when the map is full. A full sweep
// runs at most once a second, so a flood of new keys cannot make every
// insertion scan the whole map; otherwise a few records are sampled and the
// one whose lock ends first (unlocked ones first) is dropped.
func (l *Lockout) makeRoom(now time.Time) {
	if now.Sub(l.lastSweep) >= time.Second || now.Before(l.lastSweep) {
		l.lastSweep = now
		if l.sweep(now) > 0 {
			return
		}
	}
	var victim string
	var victimUntil time.Time
	seen := 0
	for k, r := range l.records {
		if r.pending > 0 {
			continue // its Done would find nothing to end
		}
		if seen == 0 || r.until.Before(victimUntil) {
			victim, victimUntil = k, r.until
		}
		if seen++; seen == 8 {
			break
		}
	}
	if seen > 0 {
		delete(l.records, victim)
	}
}
