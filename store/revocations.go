package store

import (
	"context"
	"fmt"
	"time"

	"github.com/livegate/livegate/auth"
)

// Revocations records revoked sessions, users and tokens in the SQLite
// database, so that revocations survive restarts and are seen by every
// process sharing the file. Get it from DB.Revocations; it is safe for
// concurrent use.
//
// Every revocation carries an until time: it applies while the clock is
// before until and is ignored from then on (Sweep deletes it). Pick until no
// earlier than the expiry of the last token it must stop — typically now
// plus the verifier's maximum token lifetime and leeway; an until not after
// the clock is refused, since it would silently revoke nothing. Revocations
// only ever grow: revoking again keeps the later until (and, for a user, the
// later cut-off), unless the earlier revocation had already expired. This
// matches auth.MemoryRevocations.
type Revocations struct {
	db *DB
}

var _ auth.Revocations = (*Revocations)(nil)

const (
	// ?1 = sid, ?2 = until.
	revokeSessionSQL = `INSERT INTO revoked_session (sid, until) VALUES (?1, ?2)
ON CONFLICT (sid) DO UPDATE SET until = max(until, excluded.until)`

	// ?1 = sub, ?2 = revoked_at, ?3 = until, ?4 = now. A live revocation is
	// widened; an expired one is replaced.
	revokeUserSQL = `INSERT INTO revoked_user (sub, revoked_at, until) VALUES (?1, ?2, ?3)
ON CONFLICT (sub) DO UPDATE SET
	revoked_at = CASE WHEN until <= ?4 THEN excluded.revoked_at ELSE max(revoked_at, excluded.revoked_at) END,
	until      = CASE WHEN until <= ?4 THEN excluded.until      ELSE max(until, excluded.until) END`

	// ?1 = jti, ?2 = until.
	revokeTokenSQL = `INSERT INTO revoked_token (jti, until) VALUES (?1, ?2)
ON CONFLICT (jti) DO UPDATE SET until = max(until, excluded.until)`

	// ?1 = jti, ?2 = sid, ?3 = sub, ?4 = now, ?5 = iat. Three primary-key
	// lookups; an empty id never matches.
	revokedSQL = `SELECT
	   (?1 <> '' AND EXISTS (SELECT 1 FROM revoked_token   WHERE jti = ?1 AND until > ?4))
	OR (?2 <> '' AND EXISTS (SELECT 1 FROM revoked_session WHERE sid = ?2 AND until > ?4))
	OR (?3 <> '' AND EXISTS (SELECT 1 FROM revoked_user    WHERE sub = ?3 AND until > ?4 AND revoked_at >= ?5))`
)

// check validates the arguments common to the Revoke methods.
func (r *Revocations) check(ctx context.Context, what, id string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: revoke %s: %w", what, err)
	}
	if id == "" {
		return fmt.Errorf("store: revoke %s: %w", what, ErrEmptyID)
	}
	if now := r.db.now(); !now.Before(until) {
		return fmt.Errorf("store: revoke %s: until %v is not after now %v", what, until, now)
	}
	return nil
}

// RevokeSession revokes every token bound to session sid (the "sid" claim)
// until the given time. It returns ErrEmptyID for an empty sid and an error
// for an until not after the clock or a done ctx.
func (r *Revocations) RevokeSession(ctx context.Context, sid string, until time.Time) error {
	if err := r.check(ctx, "session", sid, until); err != nil {
		return err
	}
	if _, err := r.db.w.ExecContext(ctx, revokeSessionSQL, sid, ceilMilli(until)); err != nil {
		return fmt.Errorf("store: revoke session: %w", err)
	}
	return nil
}

// RevokeUser revokes, until the given time, every token of user sub (the
// "sub" claim) issued at or before at: "iat" <= at, where a token without
// "iat" counts as issued at the Unix epoch and so is always revoked. Tokens
// issued after at stay valid, so a user can sign in again. Since "iat" has
// one-second precision, a token minted in the same second as at is revoked
// too. It returns ErrEmptyID for an empty sub and an error for an until not
// after the clock or a done ctx.
func (r *Revocations) RevokeUser(ctx context.Context, sub string, at time.Time, until time.Time) error {
	if err := r.check(ctx, "user", sub, until); err != nil {
		return err
	}
	if _, err := r.db.w.ExecContext(ctx, revokeUserSQL, sub, ceilMilli(at), ceilMilli(until), floorMilli(r.db.now())); err != nil {
		return fmt.Errorf("store: revoke user: %w", err)
	}
	return nil
}

// RevokeToken revokes the single token jti (the "jti" claim) until the given
// time. It returns ErrEmptyID for an empty jti and an error for an until not
// after the clock or a done ctx.
func (r *Revocations) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	if err := r.check(ctx, "token", jti, until); err != nil {
		return err
	}
	if _, err := r.db.w.ExecContext(ctx, revokeTokenSQL, jti, ceilMilli(until)); err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	return nil
}

// Revoked reports whether a live revocation covers id: its token
// (id.TokenID), its session (id.Session) or its user (id.User, when
// id.IssuedAt is at or before the user's cut-off; a zero IssuedAt counts as
// the epoch). Empty ids match nothing. Expired revocations are ignored even
// before Sweep removes them. It errors only if the query fails or ctx is
// done.
func (r *Revocations) Revoked(ctx context.Context, id auth.Identity) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("store: revoked: %w", err)
	}
	var revoked bool
	err := r.db.revoked.QueryRowContext(ctx, id.TokenID, id.Session, id.User, floorMilli(r.db.now()), floorMilli(id.IssuedAt)).Scan(&revoked)
	if err != nil {
		return false, fmt.Errorf("store: revoked: %w", err)
	}
	return revoked, nil
}
