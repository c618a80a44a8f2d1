package auth

import (
	"context"
	"fmt"
	"hash/maphash"
	"time"
)

// Revocations records revoked sessions, users and single tokens.
//
// Implementations must be safe for concurrent use. A revocation is in force
// until its until time: pass at least the time the last affected token
// expires (for a user or session revoked now, now plus the verifier's
// MaxLifetime and Leeway) so that no affected token outlives it. Revoking
// something already revoked extends the revocation, never shortens it.
type Revocations interface {
	// RevokeSession refuses every token whose "sid" is sid until until.
	RevokeSession(ctx context.Context, sid string, until time.Time) error
	// RevokeUser refuses, until until, every token for sub issued at or
	// before at; tokens without "iat" count as issued at the Unix epoch and
	// are refused too. Tokens issued after at are accepted, so the user can
	// sign in again. Since "iat" has one-second precision, a token minted
	// in the same second as at is refused as well.
	RevokeUser(ctx context.Context, sub string, at time.Time, until time.Time) error
	// RevokeToken refuses the token whose "jti" is jti until until.
	RevokeToken(ctx context.Context, jti string, until time.Time) error
	// Revoked reports whether id is revoked by any of the above.
	Revoked(ctx context.Context, id Identity) (bool, error)
}

// revocationShards is the number of independently locked shards of a
// MemoryRevocations.
const revocationShards = 32

type revKind uint8

const (
	revSession revKind = iota + 1
	revUser
	revToken
)

type revKey struct {
	kind revKind
	id   string
}

type revEntry struct {
	at    time.Time // user revocations: tokens issued at or before at
	until time.Time // in force while the clock is before until
}

// MemoryRevocations is a sharded in-memory Revocations for a single node.
// Expired entries are removed by Sweep and opportunistically when a shard
// has doubled in size since its last sweep; an expired entry never revokes
// anything, swept or not. Lookups take only read locks. Use
// NewMemoryRevocations; it is safe for concurrent use.
type MemoryRevocations struct {
	now     func() time.Time
	seed    maphash.Seed
	entries expiringMap[revKey, revEntry]
}

var _ Revocations = (*MemoryRevocations)(nil)

// NewMemoryRevocations returns an empty store using now as its clock (nil
// now = time.Now).
func NewMemoryRevocations(now func() time.Time) *MemoryRevocations {
	if now == nil {
		now = time.Now
	}
	return &MemoryRevocations{
		now:     now,
		seed:    maphash.MakeSeed(),
		entries: newExpiringMap[revKey](revocationShards, func(e revEntry) time.Time { return e.until }),
	}
}

func (r *MemoryRevocations) shard(k revKey) *expiringShard[revKey, revEntry] {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteByte(byte(k.kind))
	h.WriteString(k.id)
	return &r.entries.shards[h.Sum64()%revocationShards]
}

// RevokeSession implements Revocations. It errors for an empty sid, an
// until not after the clock, or a done ctx.
func (r *MemoryRevocations) RevokeSession(ctx context.Context, sid string, until time.Time) error {
	return r.revoke(ctx, "session", revKey{revSession, sid}, time.Time{}, until)
}

// RevokeUser implements Revocations. It errors for an empty sub, an until
// not after the clock, or a done ctx.
func (r *MemoryRevocations) RevokeUser(ctx context.Context, sub string, at, until time.Time) error {
	return r.revoke(ctx, "user", revKey{revUser, sub}, at, until)
}

// RevokeToken implements Revocations. It errors for an empty jti, an until
// not after the clock, or a done ctx.
func (r *MemoryRevocations) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	return r.revoke(ctx, "token", revKey{revToken, jti}, time.Time{}, until)
}

func (r *MemoryRevocations) revoke(ctx context.Context, what string, k revKey, at, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("auth: revoke %s: %w", what, err)
	}
	if k.id == "" {
		return fmt.Errorf("auth: revoke %s: empty id", what)
	}
	now := r.now()
	if !now.Before(until) {
		// Refused rather than ignored: a zero or past until would silently
		// revoke nothing.
		return fmt.Errorf("auth: revoke %s: until %v is not after now %v", what, until, now)
	}
	sh := r.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.entries[k]; ok && now.Before(old.until) {
		if old.at.After(at) {
			at = old.at
		}
		if old.until.After(until) {
			until = old.until
		}
	}
	r.entries.storeLocked(sh, k, revEntry{at: at, until: until}, now)
	return nil
}

// Revoked implements Revocations: it reports whether id's token id,
// session or user (for a token issued at or before the user revocation) is
// revoked. It errors only for a done ctx.
func (r *MemoryRevocations) Revoked(ctx context.Context, id Identity) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("auth: revoked: %w", err)
	}
	now := r.now()
	if id.TokenID != "" {
		if _, ok := r.live(revKey{revToken, id.TokenID}, now); ok {
			return true, nil
		}
	}
	if id.Session != "" {
		if _, ok := r.live(revKey{revSession, id.Session}, now); ok {
			return true, nil
		}
	}
	if id.User != "" {
		if e, ok := r.live(revKey{revUser, id.User}, now); ok {
			// A missing iat counts as the Unix epoch.
			iat := id.IssuedAt
			if iat.IsZero() {
				iat = time.Unix(0, 0)
			}
			if !iat.After(e.at) {
				return true, nil
			}
		}
	}
	return false, nil
}

// live returns k's entry if it is in force at now.
func (r *MemoryRevocations) live(k revKey, now time.Time) (revEntry, bool) {
	sh := r.shard(k)
	sh.mu.RLock()
	e, ok := sh.entries[k]
	sh.mu.RUnlock()
	return e, ok && now.Before(e.until)
}

// Sweep removes expired entries and returns how many it removed.
func (r *MemoryRevocations) Sweep() int { return r.entries.sweep(r.now()) }

// Len returns the number of entries held, including expired entries not yet
// swept.
func (r *MemoryRevocations) Len() int { return r.entries.len() }
