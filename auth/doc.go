// Package auth verifies and mints the short-lived signed tokens that
// authenticate livegate connections and subscriptions, and records the ids of
// single-use tokens so that a replayed token is refused.
//
// # Tokens
//
// A token is a JWT whose algorithm is pinned by configuration: exactly one of
// HS256, EdDSA, ES256 or RS256. A [Verifier] refuses "none", every unlisted
// algorithm and every listed algorithm other than the pinned one, so a token
// cannot choose how it is checked (algorithm confusion). Besides the
// signature, Verify requires "exp", checks "aud" (default "livegate"),
// "nbf", "iat" (not in the future), "iss" when configured, a maximum
// lifetime (default one hour), a non-empty "sub" and that the "kind" claim
// names the token's purpose ([KindConnect] or [KindSubscribe]), so a
// subscription token never opens a connection and the other way round.
// Tokens longer than [VerifierConfig.MaxTokenBytes] are refused before any
// decoding.
//
// The simplest use:
//
//	v, err := auth.NewVerifier(auth.VerifierConfig{Algorithm: "HS256", HMACSecret: secret})
//	...
//	id, err := v.Verify(token, auth.KindConnect)
//	if errors.Is(err, auth.ErrInvalidToken) {
//		// refuse; auth.ReasonOf(err) says why, for logs and audit only
//	}
//
// A [Signer] mints tokens with the same claims, for the development CLI and
// token endpoints.
//
// # Keys and rotation
//
// Instead of one key, [VerifierConfig.Keys] holds a key set: each [Key] has
// an ID, matched against the token's "kid" header, and its own pinned
// algorithm. A token is checked only with the key its "kid" names and only
// if its alg header equals that key's algorithm, so an RS256 public key is
// never used as an HMAC secret even when the set also holds HS256 keys.
// With more than one key a token without "kid", or with an unknown one, is
// refused ([ReasonKey]). [Verifier.SetKeys] validates a new set and swaps
// it in atomically, for rotation without a restart: publish the new key,
// sign with it (SignerConfig.KeyID sets "kid"), and remove the old key once
// the tokens it signed have expired.
//
// [VerifierConfig.JWKSURL] adds the asymmetric keys of a JSON Web Key Set,
// fetched over https (or http to loopback) with the keyfunc library,
// refreshed periodically and, rate-limited, when a token names an unknown
// "kid". Only EdDSA, ES256 and RS256 keys that state their "alg" are used;
// symmetric keys and keys without "alg" are ignored. If the set cannot be
// fetched the verifier refuses JWKS tokens until it can: it fails closed.
// A Verifier with a JWKS must be closed with [Verifier.Close].
//
// # Revocation
//
// [Revocations] records revoked sessions ("sid"), users (tokens issued at
// or before a time) and single tokens ("jti"); set
// [VerifierConfig.Revocations] and Verify refuses revoked tokens with
// [ReasonRevoked], matching [ErrRevoked]. [MemoryRevocations] is the
// single-node implementation.
//
// # Errors
//
// Every verification failure matches [ErrInvalidToken] with [errors.Is] and
// is a [*TokenError] whose Reason (one of the Reason constants) says why. The
// reason and the error text are for logs and the audit trail only; clients
// must get a generic message. The error text may contain values taken from
// the token, so it must pass the log sanitiser like any user input.
//
// # Single-use tokens
//
// A [ReplayStore] consumes token ids ("jti") atomically. [MemoryReplayStore]
// is the single-node implementation; other packages provide SQLite and Redis
// ones. [Verifier.VerifyOnce] verifies a token and consumes its id in one
// call.
//
// # Concurrency
//
// Verifier, Signer, MemoryReplayStore and MemoryRevocations are safe for
// concurrent use by multiple goroutines. Configuration structs are copied at
// construction; changing them afterwards has no effect (byte slices and keys
// are not deep-copied unless stated, so do not mutate them).
package auth
