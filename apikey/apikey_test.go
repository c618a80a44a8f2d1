package apikey_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/store"
)

// t0 is the fake "now" of the tests.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// countingStore wraps a real store and records what is asked of it.
type countingStore struct {
	apikey.Store
	mu      sync.Mutex
	lookups []string
	touches int
	dupes   int // InsertKey calls to fail with ErrDuplicateID first
	inserts []string
}

func (s *countingStore) LookupKey(ctx context.Context, id string) (apikey.StoredKey, error) {
	s.mu.Lock()
	s.lookups = append(s.lookups, id)
	s.mu.Unlock()
	return s.Store.LookupKey(ctx, id)
}

func (s *countingStore) TouchKey(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	s.touches++
	s.mu.Unlock()
	return s.Store.TouchKey(ctx, id, at)
}

func (s *countingStore) InsertKey(ctx context.Context, k apikey.StoredKey) error {
	s.mu.Lock()
	s.inserts = append(s.inserts, k.ID)
	if s.dupes > 0 {
		s.dupes--
		s.mu.Unlock()
		return fmt.Errorf("wrapped: %w", apikey.ErrDuplicateID)
	}
	s.mu.Unlock()
	return s.Store.InsertKey(ctx, k)
}

func (s *countingStore) lookupsSoFar() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lookups...)
}

func (s *countingStore) touchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.touches
}

// env is a manager on a real SQLite file.
type env struct {
	path  string
	db    *store.DB
	store *countingStore
	clock *fakeClock
	m     *apikey.Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{path: filepath.Join(t.TempDir(), "keys.db"), clock: newClock()}
	db, err := store.Open(context.Background(), e.path, store.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.store = &countingStore{Store: db.APIKeys()}
	e.m, err = apikey.New(apikey.Config{Store: e.store, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustScopes(t *testing.T, s string) apikey.Scopes {
	t.Helper()
	ss, err := apikey.ParseScopes(s)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func (e *env) create(t *testing.T, name, scopes string, ttl time.Duration) (string, apikey.Key) {
	t.Helper()
	text, k, err := e.m.Create(context.Background(), apikey.CreateRequest{Name: name, Scopes: mustScopes(t, scopes), TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return text, k
}

var keyShape = regexp.MustCompile(`^lg_[a-z2-7]{8}_[A-Za-z0-9_-]{43}$`)

func TestCreateAndVerify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text, k := e.create(t, "backend", "publish:room:*,disconnect", 0)
	if !keyShape.MatchString(text) || len(text) != apikey.TextLen {
		t.Fatalf("key %q does not have the documented shape", text)
	}
	if got := text[3:11]; got != k.ID {
		t.Fatalf("id in text %q, Key.ID %q", got, k.ID)
	}
	got, err := e.m.Verify(ctx, text)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.ID != k.ID || got.Name != "backend" || got.Scopes.String() != "publish:room:*,disconnect" || !got.ExpiresAt.IsZero() {
		t.Fatalf("Verify returned %+v", got)
	}
	if !got.CreatedAt.Equal(t0) {
		t.Fatalf("CreatedAt %v, want %v", got.CreatedAt, t0)
	}
	// Two keys never share id or secret.
	text2, k2 := e.create(t, "backend", "admin", 0)
	if text2 == text || k2.ID == k.ID || text2[12:] == text[12:] {
		t.Fatal("two keys share parts")
	}
}

func TestVerifyRefusesForgedKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text, k := e.create(t, "backend", "admin", 0)
	other, _ := e.create(t, "other", "admin", 0)
	lastFlipped := text[:len(text)-1] + flip(text[len(text)-1])
	firstSecretFlipped := text[:12] + flip(text[12]) + text[13:]
	tests := []struct {
		name, text string
		lookup     bool // whether the key's id is looked up
	}{
		{"last char differs", lastFlipped, true},
		{"first secret char differs", firstSecretFlipped, true},
		{"other key's secret with this id", text[:12] + other[12:], true},
		{"unknown id", "lg_" + unknownID(k.ID) + text[11:], true},
		{"empty", "", false},
		{"truncated", text[:len(text)-1], false},
		{"extended", text + "A", false},
		{"wrong prefix", "lx" + text[2:], false},
		{"upper-case id", "lg_" + strings.ToUpper(k.ID) + text[11:], false},
		{"bearer included", "Bearer " + text, false},
	}
	for _, tt := range tests {
		before := len(e.store.lookupsSoFar())
		got, err := e.m.Verify(ctx, tt.text)
		if !errors.Is(err, apikey.ErrInvalidKey) {
			t.Errorf("%s: err %v, want ErrInvalidKey", tt.name, err)
		}
		if got.ID != "" {
			t.Errorf("%s: returned key %q", tt.name, got.ID)
		}
		if err != nil && (strings.Contains(err.Error(), tt.text) && tt.text != "" || strings.Contains(err.Error(), text[12:])) {
			t.Errorf("%s: error %q contains key material", tt.name, err)
		}
		lookups := e.store.lookupsSoFar()[before:]
		if tt.lookup && (len(lookups) != 1 || lookups[0] != tt.text[3:11]) {
			t.Errorf("%s: lookups %q, want one by the id prefix %q", tt.name, lookups, tt.text[3:11])
		}
		if !tt.lookup && len(lookups) != 0 {
			t.Errorf("%s: malformed key looked up: %q", tt.name, lookups)
		}
	}
	// The genuine key still works, looked up by its prefix only.
	before := len(e.store.lookupsSoFar())
	if _, err := e.m.Verify(ctx, text); err != nil {
		t.Fatal(err)
	}
	if l := e.store.lookupsSoFar()[before:]; len(l) != 1 || l[0] != k.ID {
		t.Fatalf("lookups %q, want [%s]", l, k.ID)
	}
}

// flip returns another character of the base64url alphabet.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// unknownID returns a valid id other than id.
func unknownID(id string) string {
	if id[0] == 'a' {
		return "b" + id[1:]
	}
	return "a" + id[1:]
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text, k := e.create(t, "temp", "admin", time.Hour)
	if !k.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("ExpiresAt %v", k.ExpiresAt)
	}
	e.clock.Advance(time.Hour - time.Millisecond)
	if _, err := e.m.Verify(ctx, text); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	e.clock.Advance(time.Millisecond)
	got, err := e.m.Verify(ctx, text)
	if !errors.Is(err, apikey.ErrExpired) {
		t.Fatalf("at expiry: %v, want ErrExpired", err)
	}
	if got.ID != k.ID || got.State(e.clock.Now()) != apikey.StateExpired {
		t.Fatalf("expired key returned %+v", got)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text, k := e.create(t, "backend", "admin", 0)
	if err := e.m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	first := e.clock.Now()
	got, err := e.m.Verify(ctx, text)
	if !errors.Is(err, apikey.ErrRevoked) || got.ID != k.ID {
		t.Fatalf("revoked key: %+v, %v; want ErrRevoked with the key", got, err)
	}
	// Revoking again keeps the first time.
	e.clock.Advance(time.Hour)
	if err := e.m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	got, err = e.m.Get(ctx, k.ID)
	if err != nil || !got.RevokedAt.Equal(first) {
		t.Fatalf("RevokedAt %v, %v; want %v", got.RevokedAt, err, first)
	}
	// The revocation is visible to another manager on the same file
	// (another process, such as the CLI).
	db2, err := store.Open(ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	m2, _ := apikey.New(apikey.Config{Store: db2.APIKeys()})
	if _, err := m2.Verify(ctx, text); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("second manager: %v", err)
	}
	for _, id := range []string{"zzzzzzzz", "", "not-an-id", "ABCDEFGH"} {
		if err := e.m.Revoke(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Revoke(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestRevokeAcrossManagers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text, k := e.create(t, "backend", "admin", 0)
	if _, err := e.m.Verify(ctx, text); err != nil {
		t.Fatal(err)
	}
	db2, err := store.Open(ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	m2, _ := apikey.New(apikey.Config{Store: db2.APIKeys()})
	if err := m2.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	// The first manager sees it at its next Verify: nothing is cached.
	if _, err := e.m.Verify(ctx, text); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("after revoke elsewhere: %v", err)
	}
}

func TestLastUsedDebounced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text, k := e.create(t, "backend", "admin", 0)
	got, _ := e.m.Get(ctx, k.ID)
	if !got.LastUsedAt.IsZero() {
		t.Fatalf("unused key has LastUsedAt %v", got.LastUsedAt)
	}
	for range 100 {
		if _, err := e.m.Verify(ctx, text); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(100 * time.Millisecond) // 10s in all
	}
	if n := e.store.touchCount(); n != 1 {
		t.Fatalf("%d writes of last use for 100 requests in 10s, want 1", n)
	}
	got, _ = e.m.Get(ctx, k.ID)
	if !got.LastUsedAt.Equal(t0) {
		t.Fatalf("LastUsedAt %v, want %v", got.LastUsedAt, t0)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.m.Verify(ctx, text); err != nil {
		t.Fatal(err)
	}
	if n := e.store.touchCount(); n != 2 {
		t.Fatalf("%d writes after a minute, want 2", n)
	}
	got, _ = e.m.Get(ctx, k.ID)
	if want := t0.Add(70 * time.Second); !got.LastUsedAt.Equal(want) {
		t.Fatalf("LastUsedAt %v, want %v", got.LastUsedAt, want)
	}
	// A fresh manager (another process, a restart) trusts the stored time
	// and does not write again within the interval.
	m2, _ := apikey.New(apikey.Config{Store: e.store, Now: e.clock.Now})
	e.clock.Advance(10 * time.Second)
	if _, err := m2.Verify(ctx, text); err != nil {
		t.Fatal(err)
	}
	if n := e.store.touchCount(); n != 2 {
		t.Fatalf("fresh manager wrote within the interval: %d writes", n)
	}
	// Failed verifications never write.
	if _, err := e.m.Verify(ctx, text[:len(text)-1]+flip(text[len(text)-1])); err == nil {
		t.Fatal("forged key accepted")
	}
	if n := e.store.touchCount(); n != 2 {
		t.Fatalf("forged key wrote last use: %d writes", n)
	}
}

func TestOnlyHashStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text, k := e.create(t, "backend", "admin", 0)
	raw, err := sql.Open("sqlite", e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var hash []byte
	if err := raw.QueryRow(`SELECT hash FROM api_keys WHERE id = ?`, k.ID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(text))
	if !bytes.Equal(hash, want[:]) {
		t.Fatal("stored hash is not the SHA-256 of the key")
	}
	raw.Close()
	if err := e.db.Close(); err != nil { // flush the WAL into the file
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.path + suffix)
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(text[12:])) {
			t.Fatalf("secret found in %s", e.path+suffix)
		}
	}
	_ = ctx
}

func TestListHasNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text1, k1 := e.create(t, "first", "publish:room:*", 0)
	e.clock.Advance(time.Second)
	text2, k2 := e.create(t, "second", "admin", 24*time.Hour)
	if err := e.m.Revoke(ctx, k1.ID); err != nil {
		t.Fatal(err)
	}
	keys, err := e.m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != k1.ID || keys[1].ID != k2.ID {
		t.Fatalf("List = %+v", keys)
	}
	if keys[0].State(e.clock.Now()) != apikey.StateRevoked || keys[1].State(e.clock.Now()) != apikey.StateActive {
		t.Fatalf("states %s %s", keys[0].State(e.clock.Now()), keys[1].State(e.clock.Now()))
	}
	dump := fmt.Sprintf("%+v %#v", keys, keys)
	for _, secret := range []string{text1[12:], text2[12:]} {
		if strings.Contains(dump, secret) {
			t.Fatal("List output contains a secret")
		}
	}
}

func TestCreateRetriesDuplicateID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.store.dupes = 2
	text, k := e.create(t, "backend", "admin", 0)
	if len(e.store.inserts) != 3 || e.store.inserts[2] != k.ID {
		t.Fatalf("inserts %q, want 3 ending with %s", e.store.inserts, k.ID)
	}
	if _, err := e.m.Verify(context.Background(), text); err != nil {
		t.Fatal(err)
	}
	// A real duplicate id is refused by the store.
	sk, err := e.db.APIKeys().LookupKey(context.Background(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.APIKeys().InsertKey(context.Background(), sk); !errors.Is(err, apikey.ErrDuplicateID) {
		t.Fatalf("duplicate insert: %v", err)
	}
}

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin := mustScopes(t, "admin")
	tests := []struct {
		name string
		req  apikey.CreateRequest
		want error
	}{
		{"empty name", apikey.CreateRequest{Scopes: admin}, apikey.ErrInvalidName},
		{"bad name", apikey.CreateRequest{Name: "a b", Scopes: admin}, apikey.ErrInvalidName},
		{"long name", apikey.CreateRequest{Name: strings.Repeat("a", 65), Scopes: admin}, apikey.ErrInvalidName},
		{"no scopes", apikey.CreateRequest{Name: "x"}, apikey.ErrInvalidScope},
		{"hand-made bad scope", apikey.CreateRequest{Name: "x", Scopes: apikey.Scopes{{Verb: "delete"}}}, apikey.ErrInvalidScope},
		{"hand-made bad pattern", apikey.CreateRequest{Name: "x", Scopes: apikey.Scopes{{Verb: apikey.VerbPublish, Pattern: "*:x"}}}, apikey.ErrInvalidScope},
		{"negative ttl", apikey.CreateRequest{Name: "x", Scopes: admin, TTL: -time.Hour}, nil},
		{"bad tenant", apikey.CreateRequest{Name: "x", Scopes: admin, Tenant: "a/b"}, nil},
	}
	for _, tt := range tests {
		text, _, err := e.m.Create(ctx, tt.req)
		if err == nil || text != "" {
			t.Errorf("%s: created", tt.name)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if keys, _ := e.m.List(ctx); len(keys) != 0 {
		t.Fatalf("%d keys stored after refusals", len(keys))
	}
}

func TestTenantBoundKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	text, k, err := e.m.Create(ctx, apikey.CreateRequest{Name: "acme", Scopes: mustScopes(t, "publish:room:*"), Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.m.Verify(ctx, text)
	if err != nil || got.Tenant != "acme" || k.Tenant != "acme" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
}

func TestParseTTL(t *testing.T) {
	t.Parallel()
	good := map[string]time.Duration{
		"":      0,
		"never": 0,
		"90d":   90 * 24 * time.Hour,
		"2w":    14 * 24 * time.Hour,
		"36h":   36 * time.Hour,
		"90m":   90 * time.Minute,
	}
	for in, want := range good {
		if got, err := apikey.ParseTTL(in); err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-1d", "+3d", "d", "1.5d", "abc", "-1h", "0s", "4000d", "99999999999d"} {
		if got, err := apikey.ParseTTL(in); err == nil {
			t.Errorf("ParseTTL(%q) = %v, want an error", in, got)
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := apikey.New(apikey.Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}
