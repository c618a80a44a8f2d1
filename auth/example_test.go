package auth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/livegate/livegate/auth"
)

// exampleSecret stands in for a secret from auth.GenerateSecret(32) or the
// configuration.
var exampleSecret = []byte("example-secret-of-at-least-32-bytes!")

// exampleNow is a fixed clock so that the examples print stable output.
func exampleNow() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }

func ExampleSigner_Sign() {
	signer, err := auth.NewSigner(auth.SignerConfig{
		Algorithm:  "HS256",
		HMACSecret: exampleSecret,
		Now:        exampleNow,
	})
	if err != nil {
		panic(err)
	}
	token, id, err := signer.Sign(auth.Identity{User: "alice", Session: "sess-42"}, auth.KindConnect, 5*time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Println("segments:", strings.Count(token, ".")+1)
	fmt.Println("user:", id.User, "session:", id.Session)
	fmt.Println("jti length:", len(id.TokenID))
	fmt.Println("issued:", id.IssuedAt.UTC().Format(time.RFC3339))
	fmt.Println("expires:", id.ExpiresAt.UTC().Format(time.RFC3339))
	// Output:
	// segments: 3
	// user: alice session: sess-42
	// jti length: 22
	// issued: 2025-06-01T12:00:00Z
	// expires: 2025-06-01T12:05:00Z
}

func ExampleVerifier_Verify() {
	signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: exampleSecret, Now: exampleNow})
	if err != nil {
		panic(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Algorithm: "HS256", HMACSecret: exampleSecret, Now: exampleNow})
	if err != nil {
		panic(err)
	}
	token, _, err := signer.Sign(auth.Identity{User: "alice", Channels: []string{"chat:lobby"}}, auth.KindSubscribe, time.Minute)
	if err != nil {
		panic(err)
	}

	id, err := verifier.Verify(token, auth.KindSubscribe)
	if err != nil {
		panic(err)
	}
	fmt.Println("user:", id.User, "channels:", id.Channels)

	// A subscription token never opens a connection.
	_, err = verifier.Verify(token, auth.KindConnect)
	fmt.Println("invalid:", errors.Is(err, auth.ErrInvalidToken), "reason:", auth.ReasonOf(err))
	// Output:
	// user: alice channels: [chat:lobby]
	// invalid: true reason: kind
}

func ExampleVerifier_VerifyOnce() {
	signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: exampleSecret, Now: exampleNow})
	if err != nil {
		panic(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		Algorithm:  "HS256",
		HMACSecret: exampleSecret,
		RequireJTI: true,
		Now:        exampleNow,
	})
	if err != nil {
		panic(err)
	}
	store := auth.NewMemoryReplayStore(exampleNow)
	token, _, err := signer.Sign(auth.Identity{User: "alice"}, auth.KindConnect, time.Minute)
	if err != nil {
		panic(err)
	}

	_, err = verifier.VerifyOnce(context.Background(), store, token, auth.KindConnect)
	fmt.Println("first:", err)
	_, err = verifier.VerifyOnce(context.Background(), store, token, auth.KindConnect)
	fmt.Println("second replayed:", errors.Is(err, auth.ErrReplayed), "reason:", auth.ReasonOf(err))
	// Output:
	// first: <nil>
	// second replayed: true reason: replayed
}

func ExampleMemoryReplayStore() {
	now := exampleNow()
	store := auth.NewMemoryReplayStore(func() time.Time { return now })
	ctx := context.Background()

	fmt.Println(store.Consume(ctx, "token-id", now.Add(time.Minute)))
	fmt.Println(store.Consume(ctx, "token-id", now.Add(time.Minute)))

	now = now.Add(time.Minute) // the entry expires
	fmt.Println("swept:", store.Sweep(), "left:", store.Len())
	// Output:
	// <nil>
	// auth: token already used
	// swept: 1 left: 0
}

func ExampleVerifier_SetKeys() {
	oldSecret := exampleSecret
	newSecret := []byte("the-next-secret-of-at-least-32-bytes")
	sign := func(kid string, secret []byte) string {
		s, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: secret, KeyID: kid, Now: exampleNow})
		if err != nil {
			panic(err)
		}
		token, _, err := s.Sign(auth.Identity{User: "alice"}, auth.KindConnect, time.Minute)
		if err != nil {
			panic(err)
		}
		return token
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		Keys: []auth.Key{{ID: "2025-05", Algorithm: "HS256", Secret: oldSecret}},
		Now:  exampleNow,
	})
	if err != nil {
		panic(err)
	}
	oldToken := sign("2025-05", oldSecret)

	// Publish the new key next to the old one, then start signing with it.
	err = verifier.SetKeys([]auth.Key{
		{ID: "2025-05", Algorithm: "HS256", Secret: oldSecret},
		{ID: "2025-06", Algorithm: "HS256", Secret: newSecret},
	})
	fmt.Println("publish:", err)
	newToken := sign("2025-06", newSecret)
	_, errOld := verifier.Verify(oldToken, auth.KindConnect)
	_, errNew := verifier.Verify(newToken, auth.KindConnect)
	fmt.Println("old:", errOld, "new:", errNew)

	// Once the old tokens have expired, retire the old key.
	err = verifier.SetKeys([]auth.Key{{ID: "2025-06", Algorithm: "HS256", Secret: newSecret}})
	fmt.Println("retire:", err)
	_, errOld = verifier.Verify(oldToken, auth.KindConnect)
	fmt.Println("old reason:", auth.ReasonOf(errOld))

	// A weak key is refused and the current set stays in force.
	err = verifier.SetKeys([]auth.Key{{ID: "weak", Algorithm: "HS256", Secret: []byte("short")}})
	fmt.Println("weak refused:", errors.Is(err, auth.ErrInvalidConfig))
	_, errNew = verifier.Verify(newToken, auth.KindConnect)
	fmt.Println("new still:", errNew)
	// Output:
	// publish: <nil>
	// old: <nil> new: <nil>
	// retire: <nil>
	// old reason: key
	// weak refused: true
	// new still: <nil>
}

func ExampleMemoryRevocations() {
	now := exampleNow()
	revocations := auth.NewMemoryRevocations(func() time.Time { return now })
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		Algorithm:   "HS256",
		HMACSecret:  exampleSecret,
		Revocations: revocations,
		Now:         func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: exampleSecret, Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	token, _, err := signer.Sign(auth.Identity{User: "alice", Session: "sess-1"}, auth.KindConnect, 5*time.Minute)
	if err != nil {
		panic(err)
	}

	// Sign alice out everywhere: tokens issued until now are refused for as
	// long as any of them can live.
	if err := revocations.RevokeUser(ctx, "alice", now, now.Add(auth.DefaultMaxLifetime)); err != nil {
		panic(err)
	}
	_, err = verifier.Verify(token, auth.KindConnect)
	fmt.Println("revoked:", errors.Is(err, auth.ErrRevoked), "reason:", auth.ReasonOf(err))

	// She signs in again a second later.
	now = now.Add(time.Second)
	fresh, _, err := signer.Sign(auth.Identity{User: "alice", Session: "sess-2"}, auth.KindConnect, 5*time.Minute)
	if err != nil {
		panic(err)
	}
	_, err = verifier.Verify(fresh, auth.KindConnect)
	fmt.Println("new sign-in:", err)

	// Entries go away once they can no longer matter.
	now = now.Add(auth.DefaultMaxLifetime)
	fmt.Println("swept:", revocations.Sweep(), "left:", revocations.Len())
	// Output:
	// revoked: true reason: revoked
	// new sign-in: <nil>
	// swept: 1 left: 0
}
