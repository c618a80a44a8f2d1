package store

import (
	"context"
	"fmt"
	"time"

	"github.com/livegate/livegate/auth"
)

// ReplayStore is an auth.ReplayStore kept in the SQLite database, so that a
// consumed token id stays consumed across restarts and across processes
// sharing the file. Get it from DB.ReplayStore; it is safe for concurrent
// use.
type ReplayStore struct {
	db *DB
}

var _ auth.ReplayStore = (*ReplayStore)(nil)

// consumeSQL inserts a consumed id, or takes over the row of an expired
// entry. ?1 = jti, ?2 = expires_at, ?3 = now. A live entry makes the upsert a
// no-op (0 rows affected): that is a replay. Being one statement, it is
// atomic against every connection and process using the file.
const consumeSQL = `INSERT INTO replay (jti, expires_at) VALUES (?1, ?2)
ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at
WHERE replay.expires_at <= ?3`

// Consume atomically marks jti as used until expiresAt. It returns
// auth.ErrReplayed if jti was already consumed and has not expired,
// auth.ErrNoTokenID for an empty jti and an error wrapping the context's
// error if ctx is done. An entry is live while the clock is before its
// expiry; from then on the id may be consumed again.
//
// When several goroutines or processes consume the same id concurrently,
// exactly one succeeds.
func (s *ReplayStore) Consume(ctx context.Context, jti string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: consume: %w", err)
	}
	if jti == "" {
		return auth.ErrNoTokenID
	}
	res, err := s.db.consume.ExecContext(ctx, jti, ceilMilli(expiresAt), floorMilli(s.db.now()))
	if err != nil {
		return fmt.Errorf("store: consume: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: consume: %w", err)
	}
	if n == 0 {
		return auth.ErrReplayed
	}
	return nil
}
