package broker

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// LossHandler is an optional interface of a [Handler]. A broker calls
// HandleLoss when it lost publications of a channel the node subscribed to
// and could not replay them — a pub/sub reconnect with a gap it could not
// fill from history, or a change of the channel's epoch. The handler then
// has the channel's subscribers recover from their last position. Like
// HandlePublication, it must not block or call back into the broker.
type LossHandler interface {
	HandleLoss(channel string)
}

const presenceShards = 32

// MemoryPresence is an in-memory [Presence] for a single node. Entries
// expire ttl after they were last added unless refreshed; expired entries
// are never returned and Sweep drops them. It is safe for concurrent use.
type MemoryPresence struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [presenceShards]presenceShard
}

type presenceShard struct {
	mu       sync.Mutex
	channels map[string]map[string]presenceEntry
}

type presenceEntry struct {
	info    ClientInfo
	expires time.Time
}

// NewMemoryPresence returns an empty MemoryPresence reading time from now
// (time.Now when nil).
func NewMemoryPresence(now func() time.Time) *MemoryPresence {
	if now == nil {
		now = time.Now
	}
	p := &MemoryPresence{now: now, seed: maphash.MakeSeed()}
	for i := range p.shards {
		p.shards[i].channels = make(map[string]map[string]presenceEntry)
	}
	return p
}

func (p *MemoryPresence) shard(channel string) *presenceShard {
	return &p.shards[maphash.String(p.seed, channel)%presenceShards]
}

// AddPresence records (or refreshes) c in channel until ttl from now.
func (p *MemoryPresence) AddPresence(ctx context.Context, channel string, c ClientInfo, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := p.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.channels[channel]
	if m == nil {
		m = make(map[string]presenceEntry)
		s.channels[channel] = m
	}
	m[c.ConnID] = presenceEntry{info: c, expires: p.now().Add(ttl)}
	return nil
}

// RemovePresence removes connID from channel.
func (p *MemoryPresence) RemovePresence(ctx context.Context, channel, connID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := p.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.channels[channel]; m != nil {
		delete(m, connID)
		if len(m) == 0 {
			delete(s.channels, channel)
		}
	}
	return nil
}

// Presence returns the unexpired entries of channel.
func (p *MemoryPresence) Presence(ctx context.Context, channel string) ([]ClientInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := p.now()
	s := p.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.channels[channel]
	out := make([]ClientInfo, 0, len(m))
	for _, e := range m {
		if now.Before(e.expires) {
			out = append(out, e.info)
		}
	}
	return out, nil
}

// Sweep drops expired entries and returns how many.
func (p *MemoryPresence) Sweep() int {
	now := p.now()
	n := 0
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for ch, m := range s.channels {
			for id, e := range m {
				if !now.Before(e.expires) {
					delete(m, id)
					n++
				}
			}
			if len(m) == 0 {
				delete(s.channels, ch)
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of entries held, expired or not.
func (p *MemoryPresence) Len() int {
	n := 0
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for _, m := range s.channels {
			n += len(m)
		}
		s.mu.Unlock()
	}
	return n
}
