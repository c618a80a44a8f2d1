package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/store"
)

var apikeyText = regexp.MustCompile(`lg_[a-z2-7]{8}_[A-Za-z0-9_-]{43}`)

// createKeyCLI runs `livegate apikey create` and returns the key printed.
func createKeyCLI(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, append([]string{"apikey", "create", "--db", db}, args...)...)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	keys := apikeyText.FindAllString(out, -1)
	if len(keys) != 1 {
		t.Fatalf("create printed %d keys:\n%s", len(keys), out)
	}
	if first, _, _ := strings.Cut(out, "\n"); first != keys[0] {
		t.Fatalf("the key is not alone on the first line:\n%s", out)
	}
	return keys[0]
}

func verifyKey(t *testing.T, db, text string) (apikey.Key, error) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := apikey.New(apikey.Config{Store: s.APIKeys()})
	if err != nil {
		t.Fatal(err)
	}
	return m.Verify(ctx, text)
}

func TestApikeyCreateListRevoke(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "keys.db")
	backend := createKeyCLI(t, db, "--name", "backend", "--scopes", "publish:room:*,disconnect", "--expires", "90d")
	ops := createKeyCLI(t, db, "--name", "ops", "--scopes", "admin", "--tenant", "acme")
	k, err := verifyKey(t, db, backend)
	if err != nil {
		t.Fatalf("created key does not verify: %v", err)
	}
	if k.Name != "backend" || k.Scopes.String() != "publish:room:*,disconnect" || k.ExpiresAt.IsZero() {
		t.Fatalf("key %+v", k)
	}
	if d := k.ExpiresAt.Sub(k.CreatedAt) - 90*24*time.Hour; d < 0 || d > time.Second {
		t.Fatalf("lifetime %v", k.ExpiresAt.Sub(k.CreatedAt))
	}

	out, err := runCLI(t, "apikey", "list", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{backend, ops, backend[12:], ops[12:]} {
		if strings.Contains(out, secret) {
			t.Fatalf("list prints a secret:\n%s", out)
		}
	}
	for _, want := range []string{"ID", "backend", "ops", "publish:room:*,disconnect", "acme", "active", backend[3:11], "never"} {
		if !strings.Contains(out, want) {
			t.Fatalf("list lacks %q:\n%s", want, out)
		}
	}

	out, err = runCLI(t, "apikey", "revoke", "--db", db, backend[3:11])
	if err != nil || !strings.Contains(out, "revoked key "+backend[3:11]) {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if _, err := verifyKey(t, db, backend); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("revoked key: %v", err)
	}
	if _, err := verifyKey(t, db, ops); err != nil {
		t.Fatalf("other key: %v", err)
	}

	out, err = runCLI(t, "apikey", "list", "--db", db, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, backend[12:]) || strings.Contains(out, ops[12:]) || strings.Contains(out, "hash") {
		t.Fatalf("list --json prints secrets or hashes:\n%s", out)
	}
	var states []string
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var k struct{ ID, State, Revoked string }
		if err := json.Unmarshal([]byte(line), &k); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		states = append(states, k.State)
	}
	if strings.Join(states, ",") != "revoked,active" {
		t.Fatalf("states %v", states)
	}
}

func TestApikeyRevokeWholeKeyNotEchoed(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "keys.db")
	key := createKeyCLI(t, db, "--name", "backend", "--scopes", "admin")
	out, err := runCLI(t, "apikey", "revoke", "--db", db, key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, key[12:]) {
		t.Fatalf("revoke echoed the secret: %s", out)
	}
	if _, err := verifyKey(t, db, key); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("key not revoked: %v", err)
	}
}

func TestApikeyErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "keys.db")
	createKeyCLI(t, db, "--name", "backend", "--scopes", "admin")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown verb", []string{"apikey", "create", "--db", db, "--name", "x", "--scopes", "publish:room:*,delete"}, "unknown verb"},
		{"pattern needed", []string{"apikey", "create", "--db", db, "--name", "x", "--scopes", "publish"}, "pattern"},
		{"no scopes", []string{"apikey", "create", "--db", db, "--name", "x"}, "scopes"},
		{"no name", []string{"apikey", "create", "--db", db, "--scopes", "admin"}, "name"},
		{"bad name", []string{"apikey", "create", "--db", db, "--name", "a b", "--scopes", "admin"}, "name"},
		{"bad expiry", []string{"apikey", "create", "--db", db, "--name", "x", "--scopes", "admin", "--expires", "soon"}, "--expires"},
		{"unknown id", []string{"apikey", "revoke", "--db", db, "zzzzzzzz"}, "no key"},
		{"no id", []string{"apikey", "revoke", "--db", db}, "arg"},
		{"missing db", []string{"apikey", "list", "--db", filepath.Join(dir, "none.db")}, "no database"},
	}
	for _, tt := range tests {
		out, err := runCLI(t, tt.args...)
		if err == nil {
			t.Errorf("%s: succeeded:\n%s", tt.name, out)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q, want it to mention %q", tt.name, err, tt.want)
		}
	}
	// Nothing was created by the refusals.
	out, err := runCLI(t, "apikey", "list", "--db", db, "--json")
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("keys after refusals: %v\n%s", err, out)
	}
}
