package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/livegate/livegate/apikey"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t, k.path(t), newFakeClock(t0))
			keys := db.APIKeys()
			scopes, err := apikey.ParseScopes("publish:room:*,disconnect")
			if err != nil {
				t.Fatal(err)
			}
			hash := bytes.Repeat([]byte{7}, 32)
			sk := apikey.StoredKey{Key: apikey.Key{ID: "abcdefgh", Name: "backend", Scopes: scopes, Tenant: "acme",
				CreatedAt: t0, ExpiresAt: t0.Add(time.Hour + time.Nanosecond)}, Hash: hash}
			if err := keys.InsertKey(ctx, sk); err != nil {
				t.Fatal(err)
			}
			if err := keys.InsertKey(ctx, sk); !errors.Is(err, apikey.ErrDuplicateID) {
				t.Fatalf("duplicate: %v", err)
			}
			bad := sk
			bad.ID, bad.Hash = "bcdefghi", []byte("short")
			if err := keys.InsertKey(ctx, bad); err == nil {
				t.Fatal("a hash that is not 32 bytes was stored")
			}
			got, err := keys.LookupKey(ctx, "abcdefgh")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Hash, hash) || got.Name != "backend" || got.Tenant != "acme" || got.Scopes.String() != scopes.String() ||
				!got.CreatedAt.Equal(t0) || !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
				t.Fatalf("lookup %+v", got)
			}
			// Expiries round up: never earlier than asked.
			if got.ExpiresAt.Before(sk.ExpiresAt) {
				t.Fatalf("expiry %v earlier than %v", got.ExpiresAt, sk.ExpiresAt)
			}
			if _, err := keys.LookupKey(ctx, "zzzzzzzz"); !errors.Is(err, apikey.ErrNotFound) {
				t.Fatalf("unknown id: %v", err)
			}
			// Last use only moves forward.
			if err := keys.TouchKey(ctx, "abcdefgh", t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := keys.TouchKey(ctx, "abcdefgh", t0); err != nil {
				t.Fatal(err)
			}
			if err := keys.TouchKey(ctx, "zzzzzzzz", t0); err != nil {
				t.Fatalf("touch unknown: %v", err)
			}
			// Revocation keeps its first time.
			if err := keys.RevokeKey(ctx, "abcdefgh", t0.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := keys.RevokeKey(ctx, "abcdefgh", t0.Add(3*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := keys.RevokeKey(ctx, "zzzzzzzz", t0); !errors.Is(err, apikey.ErrNotFound) {
				t.Fatalf("revoke unknown: %v", err)
			}
			list, err := keys.ListKeys(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("list %v, %v", list, err)
			}
			if l := list[0]; !l.LastUsedAt.Equal(t0.Add(time.Minute)) || !l.RevokedAt.Equal(t0.Add(2*time.Minute)) {
				t.Fatalf("list %+v", l)
			}
		})
	}
}
