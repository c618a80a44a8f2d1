package ratelimit

import (
	"hash/maphash"
	"strings"
	"sync"
)

// numShards is the number of independently locked parts of every in-memory
// table; a power of two.
const numShards = 64

// shard is one mutex-guarded part of a table, padded to a cache line so that
// neighbouring shards' locks do not contend through false sharing.
type shard[V any] struct {
	mu sync.Mutex
	m  map[string]V
	_  [48]byte
}

// table is a map from key to V spread over numShards shards.
type table[V any] struct {
	seed   maphash.Seed
	shards [numShards]shard[V]
}

func newTable[V any]() *table[V] {
	t := &table[V]{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]V)
	}
	return t
}

// shard returns the shard that holds key.
func (t *table[V]) shard(key string) *shard[V] {
	return &t.shards[maphash.String(t.seed, key)&(numShards-1)]
}

// len returns the number of keys in all shards.
func (t *table[V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// sweep deletes the entries for which remove returns true, one shard at a
// time, and returns how many it deleted.
func (t *table[V]) sweep(remove func(V) bool) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if remove(v) {
				delete(s.m, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// ownKey returns a copy of key for storing in a map, so that a record never
// pins a larger buffer the caller sliced the key from.
func ownKey(key string) string {
	return strings.Clone(key)
}
