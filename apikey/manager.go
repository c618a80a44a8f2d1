package apikey

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/livegate/livegate/policy"
)

// DefaultTouchInterval is the default Config.TouchInterval.
const DefaultTouchInterval = time.Minute

// Config configures a Manager.
type Config struct {
	// Store keeps the keys; required (store.DB.APIKeys).
	Store Store
	// TouchInterval is the least time between two writes of a key's
	// last-used time, so verifying a key costs a database write at most
	// once per interval, not once per request. Default one minute.
	TouchInterval time.Duration
	// Logger receives failures to record a key's last use; nil discards
	// them.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Manager creates, verifies, lists and revokes API keys. It is safe for
// concurrent use; several processes may share one Store (for instance a
// server verifying keys and the CLI revoking them): every Verify reads the
// store, so a revocation takes effect at the next request.
type Manager struct {
	store    Store
	interval time.Duration
	logger   *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	touched map[string]time.Time // last-used time last written, per key id
}

// New returns a Manager for cfg.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("apikey: Config.Store is required")
	}
	if cfg.TouchInterval < 0 {
		return nil, errors.New("apikey: negative TouchInterval")
	}
	m := &Manager{
		store:    cfg.Store,
		interval: cfg.TouchInterval,
		logger:   cfg.Logger,
		now:      cfg.Now,
		touched:  make(map[string]time.Time),
	}
	if m.interval == 0 {
		m.interval = DefaultTouchInterval
	}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// CreateRequest describes a key to create.
type CreateRequest struct {
	// Name says what the key is for: [A-Za-z0-9_.-]{1,64}. Required.
	Name string
	// Scopes say what the key may do; at least one.
	Scopes Scopes
	// TTL is the key's lifetime; zero: it never expires.
	TTL time.Duration
	// Tenant, when set, binds the key to that tenant.
	Tenant string
}

// Create makes a new key and returns its whole text, the only time it is
// available: only its SHA-256 hash is stored. Show the text to the
// operator once and never log it.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (text string, k Key, err error) {
	if !validName(req.Name) {
		return "", Key{}, fmt.Errorf("%w: want 1 to %d of A-Z a-z 0-9 _ . -", ErrInvalidName, MaxNameLen)
	}
	if len(req.Scopes) == 0 || len(req.Scopes) > MaxScopes {
		return "", Key{}, fmt.Errorf("%w: want 1 to %d scopes", ErrInvalidScope, MaxScopes)
	}
	for _, s := range req.Scopes {
		// Scopes built by hand rather than parsed are checked the same.
		if _, err := ParseScope(s.String()); err != nil {
			return "", Key{}, err
		}
	}
	if req.TTL < 0 || req.TTL > maxTTL {
		return "", Key{}, fmt.Errorf("apikey: create: TTL out of range")
	}
	if req.Tenant != "" && !policy.ValidTenant(req.Tenant) {
		return "", Key{}, fmt.Errorf("apikey: create: invalid tenant")
	}
	now := m.now()
	k = Key{
		Name:      req.Name,
		Scopes:    append(Scopes(nil), req.Scopes...),
		Tenant:    req.Tenant,
		CreatedAt: now,
	}
	if req.TTL > 0 {
		k.ExpiresAt = now.Add(req.TTL)
	}
	// 40-bit ids rarely collide; draw again when one does.
	for range 5 {
		var id string
		if id, text, err = generate(); err != nil {
			return "", Key{}, err
		}
		k.ID = id
		err = m.store.InsertKey(ctx, StoredKey{Key: k, Hash: hashText(text)})
		if !errors.Is(err, ErrDuplicateID) {
			break
		}
	}
	if err != nil {
		return "", Key{}, fmt.Errorf("apikey: create: %w", err)
	}
	return text, k, nil
}

// Verify checks a key's whole text and returns the key it names. It looks
// the key up by its id and compares the SHA-256 of the text with the
// stored hash in constant time.
//
// It returns an error wrapping ErrInvalidKey for a malformed text, an
// unknown id or a wrong secret; ErrRevoked for a revoked key; ErrExpired
// for an expired one; any other error is the store's. With ErrRevoked and
// ErrExpired the Key is returned too (its secret matched), so the caller
// can record which key was used. The error never contains the text.
//
// A successful Verify records the key's last use, writing to the store at
// most once per Config.TouchInterval per key.
func (m *Manager) Verify(ctx context.Context, text string) (Key, error) {
	id, ok := KeyID(text)
	if !ok {
		return Key{}, ErrInvalidKey
	}
	sk, err := m.store.LookupKey(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Key{}, ErrInvalidKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("apikey: verify: %w", err)
	}
	if subtle.ConstantTimeCompare(hashText(text), sk.Hash) != 1 {
		return Key{}, ErrInvalidKey
	}
	now := m.now()
	switch sk.State(now) {
	case StateRevoked:
		return sk.Key, ErrRevoked
	case StateExpired:
		return sk.Key, ErrExpired
	}
	m.touch(ctx, sk.ID, sk.LastUsedAt, now)
	return sk.Key, nil
}

// touch records a use of key id at now unless one was recorded, by this
// Manager or in the store, less than the interval ago.
func (m *Manager) touch(ctx context.Context, id string, stored, now time.Time) {
	m.mu.Lock()
	last := m.touched[id]
	if stored.After(last) {
		last = stored
	}
	if !last.IsZero() && now.Sub(last) < m.interval {
		m.mu.Unlock()
		return
	}
	m.touched[id] = now
	m.mu.Unlock()
	if err := m.store.TouchKey(ctx, id, now); err != nil {
		m.logger.Warn("apikey: record last use", "key", id, "err", err)
	}
}

// Get returns the key with id, or an error wrapping ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (Key, error) {
	if !validID(id) {
		return Key{}, ErrNotFound
	}
	sk, err := m.store.LookupKey(ctx, id)
	if err != nil {
		return Key{}, fmt.Errorf("apikey: get: %w", err)
	}
	return sk.Key, nil
}

// List returns every key, oldest first. Keys carry neither their secret
// (never stored) nor their hash.
func (m *Manager) List(ctx context.Context) ([]Key, error) {
	keys, err := m.store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("apikey: list: %w", err)
	}
	return keys, nil
}

// Revoke revokes the key with id: from now on Verify refuses it with
// ErrRevoked, in every process sharing the store. Revoking a revoked key
// keeps its first revocation time. An unknown id is an error wrapping
// ErrNotFound.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	if err := m.store.RevokeKey(ctx, id, m.now()); err != nil {
		return fmt.Errorf("apikey: revoke: %w", err)
	}
	return nil
}
