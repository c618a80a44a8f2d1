package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Key text layout: "lg_" + 8-character id + "_" + 43-character secret.
const (
	// TextPrefix starts every key, so that secret scanners and people can
	// recognise one.
	TextPrefix = "lg_"
	// IDLen is the length of a key id: 8 lower-case base32 characters
	// (40 random bits), unique among stored keys.
	IDLen = 8
	// SecretBytes is the number of crypto/rand bytes in a key's secret
	// (256 bits), written as 43 base64url characters.
	SecretBytes = 32
	secretLen   = 43
	// TextLen is the length of a whole key.
	TextLen = len(TextPrefix) + IDLen + 1 + secretLen
)

// idEncoding writes the 5 random bytes of an id as 8 characters.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// secretEncoding reads a secret strictly: 43 characters of the URL-safe
// alphabet whose unused trailing bits are zero, so each secret has exactly
// one spelling.
var secretEncoding = base64.RawURLEncoding.Strict()

// Key describes a stored API key: everything but its secret, which is
// never stored, and its hash.
type Key struct {
	// ID is the key's public identifier, the 8 characters after "lg_".
	ID string
	// Name says what the key is for ("backend", "billing-worker").
	Name string
	// Scopes say what the key may do.
	Scopes Scopes
	// Tenant, when set, binds the key to one tenant: it can only reach
	// that tenant's channels in tenant-scoped namespaces.
	Tenant string
	// CreatedAt is when the key was created.
	CreatedAt time.Time
	// ExpiresAt is when the key stops working; zero: never.
	ExpiresAt time.Time
	// RevokedAt is when the key was revoked; zero: it was not.
	RevokedAt time.Time
	// LastUsedAt is when the key was last used, to within
	// Config.TouchInterval; zero: never.
	LastUsedAt time.Time
}

// Key states reported by Key.State.
const (
	StateActive  = "active"
	StateExpired = "expired"
	StateRevoked = "revoked"
)

// State returns StateRevoked, StateExpired or StateActive for the key at
// now. Revocation wins over expiry.
func (k Key) State(now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return StateRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StateExpired
	}
	return StateActive
}

// StoredKey is what a Store keeps for a key: its description and the
// SHA-256 hash of its whole text.
type StoredKey struct {
	Key
	Hash []byte
}

// Store keeps API keys. store.DB.APIKeys implements it in SQLite. It must
// be safe for concurrent use.
type Store interface {
	// InsertKey stores a new key. An id already in use is an error
	// wrapping ErrDuplicateID.
	InsertKey(ctx context.Context, k StoredKey) error
	// LookupKey returns the key with id, or an error wrapping ErrNotFound.
	LookupKey(ctx context.Context, id string) (StoredKey, error)
	// ListKeys returns every key, oldest first, without hashes.
	ListKeys(ctx context.Context) ([]Key, error)
	// RevokeKey marks key id revoked at at; a key revoked earlier keeps
	// its first revocation time. An unknown id is an error wrapping
	// ErrNotFound.
	RevokeKey(ctx context.Context, id string, at time.Time) error
	// TouchKey records that key id was used at at, keeping a later time
	// already recorded. An unknown id is not an error.
	TouchKey(ctx context.Context, id string, at time.Time) error
}

// ErrDuplicateID is wrapped by Store.InsertKey for an id already in use;
// Manager.Create then draws another id.
var ErrDuplicateID = errors.New("apikey: duplicate key id")

// generate returns a new key's id and whole text from crypto/rand.
func generate() (id, text string, err error) {
	var b [5 + SecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("apikey: random: %w", err)
	}
	id = idEncoding.EncodeToString(b[:5])
	return id, TextPrefix + id + "_" + secretEncoding.EncodeToString(b[5:]), nil
}

// KeyID returns the id a key's text claims, and whether the text has the
// shape of a key. It checks no secret: the id is for logs and audit
// events, never a proof of anything.
func KeyID(text string) (string, bool) {
	if len(text) != TextLen || !strings.HasPrefix(text, TextPrefix) || text[len(TextPrefix)+IDLen] != '_' {
		return "", false
	}
	id := text[len(TextPrefix) : len(TextPrefix)+IDLen]
	if !validID(id) {
		return "", false
	}
	if b, err := secretEncoding.DecodeString(text[len(TextPrefix)+IDLen+1:]); err != nil || len(b) != SecretBytes {
		return "", false
	}
	return id, true
}

// validID reports whether id has the form of a key id.
func validID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// hashText returns the SHA-256 of a key's whole text.
func hashText(text string) []byte {
	h := sha256.Sum256([]byte(text))
	return h[:]
}

// MaxNameLen bounds a key name.
const MaxNameLen = 64

// validName reports whether name matches [A-Za-z0-9_.-]{1,64}.
func validName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ParseTTL parses a key lifetime: a Go duration ("36h", "90m"), a number
// of days ("90d") or weeks ("12w"), or "" or "never" for a key that does
// not expire (zero). It must be positive and at most ten years.
func ParseTTL(s string) (time.Duration, error) {
	if s == "" || s == "never" {
		return 0, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d = parseCount(n, 24*time.Hour)
	} else if n, ok := strings.CutSuffix(s, "w"); ok {
		d = parseCount(n, 7*24*time.Hour)
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			d = -1
		}
	}
	if d <= 0 || d > maxTTL {
		return 0, fmt.Errorf("apikey: invalid lifetime %q: want e.g. 90d, 12w or 36h, up to 10 years", truncate(s))
	}
	return d, nil
}

// maxTTL is the longest key lifetime.
const maxTTL = 10 * 366 * 24 * time.Hour

// parseCount returns n units, or -1 when n is not a small positive number.
func parseCount(n string, unit time.Duration) time.Duration {
	v, err := strconv.Atoi(n)
	if err != nil || v <= 0 || v > 100000 || n[0] == '+' {
		return -1
	}
	return time.Duration(v) * unit
}
