package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/livegate/livegate/apikey"
)

// APIKeys keeps the HTTP API's keys in the api_keys table: it is the
// apikey.Store behind an apikey.Manager. Only each key's SHA-256 hash is
// stored, never its text. Get it from DB.APIKeys; it is safe for
// concurrent use, including by several processes sharing the file (the
// server verifying keys and `livegate apikey` creating and revoking them).
type APIKeys struct {
	db *DB
}

var _ apikey.Store = (*APIKeys)(nil)

// APIKeys returns the database's API key store.
func (db *DB) APIKeys() *APIKeys { return &APIKeys{db: db} }

const (
	apiKeyColumns = `id, name, scopes, tenant, created_at, expires_at, revoked_at, last_used_at`

	insertAPIKeySQL = `INSERT INTO api_keys (id, name, hash, scopes, tenant, created_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING`
	lookupAPIKeySQL = `SELECT ` + apiKeyColumns + `, hash FROM api_keys WHERE id = ?1`
	listAPIKeysSQL  = `SELECT ` + apiKeyColumns + ` FROM api_keys ORDER BY created_at, id`
	revokeAPIKeySQL = `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1`
	touchAPIKeySQL  = `UPDATE api_keys SET last_used_at = max(COALESCE(last_used_at, 0), ?2) WHERE id = ?1`
)

// InsertKey implements apikey.Store.
func (a *APIKeys) InsertKey(ctx context.Context, k apikey.StoredKey) error {
	if k.ID == "" {
		return fmt.Errorf("store: insert api key: %w", ErrEmptyID)
	}
	var expires any
	if !k.ExpiresAt.IsZero() {
		expires = ceilMilli(k.ExpiresAt)
	}
	res, err := a.db.w.ExecContext(ctx, insertAPIKeySQL, k.ID, k.Name, k.Hash, k.Scopes.String(), k.Tenant,
		floorMilli(k.CreatedAt), expires)
	if err != nil {
		return fmt.Errorf("store: insert api key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: insert api key: %w", err)
	} else if n == 0 {
		return fmt.Errorf("store: insert api key: %w", apikey.ErrDuplicateID)
	}
	return nil
}

// LookupKey implements apikey.Store.
func (a *APIKeys) LookupKey(ctx context.Context, id string) (apikey.StoredKey, error) {
	var sk apikey.StoredKey
	k, err := scanAPIKey(a.db.r.QueryRowContext(ctx, lookupAPIKeySQL, id), &sk.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return apikey.StoredKey{}, apikey.ErrNotFound
	}
	if err != nil {
		return apikey.StoredKey{}, fmt.Errorf("store: lookup api key: %w", err)
	}
	sk.Key = k
	return sk, nil
}

// ListKeys implements apikey.Store. It never reads the hashes.
func (a *APIKeys) ListKeys(ctx context.Context) ([]apikey.Key, error) {
	rows, err := a.db.r.QueryContext(ctx, listAPIKeysSQL)
	if err != nil {
		return nil, fmt.Errorf("store: list api keys: %w", err)
	}
	defer rows.Close()
	var out []apikey.Key
	for rows.Next() {
		k, err := scanAPIKey(rows, nil)
		if err != nil {
			return nil, fmt.Errorf("store: list api keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list api keys: %w", err)
	}
	return out, nil
}

// RevokeKey implements apikey.Store.
func (a *APIKeys) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := a.db.w.ExecContext(ctx, revokeAPIKeySQL, id, floorMilli(at))
	if err != nil {
		return fmt.Errorf("store: revoke api key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: revoke api key: %w", err)
	} else if n == 0 {
		return apikey.ErrNotFound
	}
	return nil
}

// TouchKey implements apikey.Store.
func (a *APIKeys) TouchKey(ctx context.Context, id string, at time.Time) error {
	if _, err := a.db.w.ExecContext(ctx, touchAPIKeySQL, id, floorMilli(at)); err != nil {
		return fmt.Errorf("store: touch api key: %w", err)
	}
	return nil
}

// scanAPIKey reads the apiKeyColumns of one row, and the hash after them
// when hash is not nil.
func scanAPIKey(row interface{ Scan(...any) error }, hash *[]byte) (apikey.Key, error) {
	var (
		k                         apikey.Key
		scopes                    string
		created                   int64
		expires, revoked, touched sql.NullInt64
	)
	dst := []any{&k.ID, &k.Name, &scopes, &k.Tenant, &created, &expires, &revoked, &touched}
	if hash != nil {
		dst = append(dst, hash)
	}
	if err := row.Scan(dst...); err != nil {
		return apikey.Key{}, err
	}
	var err error
	if k.Scopes, err = apikey.ParseScopes(scopes); err != nil {
		return apikey.Key{}, fmt.Errorf("key %s: %w", k.ID, err)
	}
	k.CreatedAt = time.UnixMilli(created)
	k.ExpiresAt = nullMilli(expires)
	k.RevokedAt = nullMilli(revoked)
	k.LastUsedAt = nullMilli(touched)
	return k, nil
}

// nullMilli returns the time of Unix milliseconds v, or the zero time for
// NULL.
func nullMilli(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64)
}
