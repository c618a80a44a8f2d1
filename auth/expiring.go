package auth

import (
	"sync"
	"time"
)

// minSweepLen is the shard size below which a store never sweeps on write.
const minSweepLen = 256

// expiringShard is one independently locked part of an expiringMap.
type expiringShard[K comparable, V any] struct {
	mu      sync.RWMutex
	entries map[K]V
	sweepAt int      // sweep when len(entries) reaches this
	_       [24]byte // keep shards on separate cache lines
}

// expiringMap is a sharded map whose values carry an expiry. Expired
// entries are removed by sweep, and by storeLocked when a shard has doubled
// in size since its last sweep, which keeps the cost amortised constant.
// Callers pick the shard (with their own hash) and hold its lock.
type expiringMap[K comparable, V any] struct {
	shards []expiringShard[K, V]
	expiry func(V) time.Time
}

func newExpiringMap[K comparable, V any](shards int, expiry func(V) time.Time) expiringMap[K, V] {
	m := expiringMap[K, V]{shards: make([]expiringShard[K, V], shards), expiry: expiry}
	for i := range m.shards {
		m.shards[i].entries = make(map[K]V)
		m.shards[i].sweepAt = minSweepLen
	}
	return m
}

// storeLocked sets k to v in sh, whose lock the caller holds, sweeping the
// shard when it has grown enough.
func (m *expiringMap[K, V]) storeLocked(sh *expiringShard[K, V], k K, v V, now time.Time) {
	sh.entries[k] = v
	if len(sh.entries) >= sh.sweepAt {
		m.sweepLocked(sh, now)
	}
}

// sweepLocked removes sh's expired entries and sets its next sweep
// threshold.
func (m *expiringMap[K, V]) sweepLocked(sh *expiringShard[K, V], now time.Time) int {
	n := 0
	for k, v := range sh.entries {
		if !now.Before(m.expiry(v)) {
			delete(sh.entries, k)
			n++
		}
	}
	sh.sweepAt = max(2*len(sh.entries), minSweepLen)
	return n
}

// sweep removes every expired entry and returns how many it removed.
func (m *expiringMap[K, V]) sweep(now time.Time) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += m.sweepLocked(sh, now)
		sh.mu.Unlock()
	}
	return n
}

// len returns the number of entries, including expired ones not yet swept.
func (m *expiringMap[K, V]) len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += len(sh.entries)
		sh.mu.RUnlock()
	}
	return n
}
