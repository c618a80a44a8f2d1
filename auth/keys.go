package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Key is one verification key of a key set, selected by the token's "kid"
// header. Its algorithm is pinned: a token naming this key is accepted only
// when its alg header equals Algorithm, so a public key can never be used as
// an HMAC secret (algorithm confusion), whatever other keys the set holds.
type Key struct {
	// ID is matched against the token's "kid" header. It is required when
	// the set has more than one key or a JWKS is configured; IDs must be
	// unique within a set.
	ID string
	// Algorithm is one of "HS256", "EdDSA", "ES256", "RS256".
	Algorithm string
	// Secret is the HS256 shared secret, at least 32 bytes; it must be empty
	// for the other algorithms. It is copied.
	Secret []byte
	// PublicKey verifies EdDSA (ed25519.PublicKey), ES256 (*ecdsa.PublicKey
	// on P-256) and RS256 (*rsa.PublicKey of at least 2048 bits); it must be
	// nil for HS256.
	PublicKey crypto.PublicKey
}

// verifyKey is a validated Key, ready to hand to jwt.
type verifyKey struct {
	id     string
	alg    string
	method jwt.SigningMethod
	key    any
}

// keySet is an immutable set of static keys; a Verifier swaps whole sets
// atomically.
type keySet struct {
	byID map[string]*verifyKey
	// sole is the only key when the set has exactly one, else nil. It may
	// have an empty id.
	sole *verifyKey
}

// errKey is wrapped by every key selection failure; classify maps it to
// ReasonKey.
var errKey = errors.New("no usable key")

// newVerifyKey validates k. With strict, a key carrying material for the
// wrong kind of algorithm (a secret on an asymmetric key or the other way
// round) is refused rather than ignored.
func newVerifyKey(k Key, strict bool) (*verifyKey, error) {
	method, err := signingMethod(k.Algorithm)
	if err != nil {
		return nil, err
	}
	var key any
	if k.Algorithm == AlgHS256 {
		if strict && k.PublicKey != nil {
			return nil, fmt.Errorf("%w: HS256 key must not have a public key", ErrInvalidConfig)
		}
		key, err = checkHMACSecret(k.Secret)
	} else {
		if strict && len(k.Secret) > 0 {
			return nil, fmt.Errorf("%w: %s key must not have a secret", ErrInvalidConfig, k.Algorithm)
		}
		key, err = checkPublicKey(k.Algorithm, k.PublicKey)
	}
	if err != nil {
		return nil, err
	}
	return &verifyKey{id: k.ID, alg: k.Algorithm, method: method, key: key}, nil
}

// newKeySet validates keys. needIDs requires every key to have an ID (a
// JWKS is configured, so a token must always name its key). An empty set is
// allowed only with allowEmpty.
func newKeySet(keys []Key, needIDs, allowEmpty bool) (*keySet, error) {
	if len(keys) == 0 && !allowEmpty {
		return nil, fmt.Errorf("%w: no keys: set Algorithm with HMACSecret or PublicKey, Keys, or JWKSURL", ErrInvalidConfig)
	}
	s := &keySet{byID: make(map[string]*verifyKey, len(keys))}
	for i, k := range keys {
		vk, err := newVerifyKey(k, true)
		if err != nil {
			return nil, fmt.Errorf("%w (key %d, kid %q)", err, i, k.ID)
		}
		if k.ID == "" {
			if len(keys) > 1 {
				return nil, fmt.Errorf("%w: key %d has no ID; every key of a multi-key set needs one", ErrInvalidConfig, i)
			}
			if needIDs {
				return nil, fmt.Errorf("%w: key %d has no ID; keys need one when JWKSURL is set", ErrInvalidConfig, i)
			}
		} else {
			if _, dup := s.byID[k.ID]; dup {
				return nil, fmt.Errorf("%w: duplicate key ID %q", ErrInvalidConfig, k.ID)
			}
			s.byID[k.ID] = vk
		}
		if len(keys) == 1 {
			s.sole = vk
		}
	}
	return s, nil
}

// SetKeys replaces the static key set (the one given by Keys or by
// Algorithm/HMACSecret/PublicKey), for key rotation without a restart. The
// keys are validated with the rules of VerifierConfig.Keys first; on error
// the current set stays in force. The swap is atomic: a Verify call in
// flight finishes with the set it started with, later calls use the new
// one. Tokens signed with a key that is no longer in the set are refused
// with ReasonKey (or ReasonSignature for a single-key set whose key has no
// ID). An empty set is allowed only when JWKSURL is configured. JWKS keys
// are not affected. SetKeys is safe for concurrent use.
func (v *Verifier) SetKeys(keys []Key) error {
	s, err := newKeySet(keys, v.jwks != nil, v.jwks != nil)
	if err != nil {
		return err
	}
	v.keys.Store(s)
	return nil
}

// selectKey picks the key for t: a static key by "kid", else a JWKS key. A
// token without "kid" is accepted only by a single-key static set with no
// JWKS; a kid naming no key is accepted only by a single-key set whose key
// has no ID.
func (v *Verifier) selectKey(ctx context.Context, t *jwt.Token) (*verifyKey, error) {
	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, isString := raw.(string)
		if !isString {
			return nil, fmt.Errorf(`%w: "kid" header is not a string`, errKey)
		}
		kid = s
	}
	set := v.keys.Load()
	if kid == "" {
		if v.jwks == nil && set.sole != nil {
			return set.sole, nil
		}
		return nil, fmt.Errorf(`%w: token has no "kid" and the key set requires one`, errKey)
	}
	if k, ok := set.byID[kid]; ok {
		return k, nil
	}
	if v.jwks != nil {
		return v.jwks.lookup(ctx, kid)
	}
	if set.sole != nil && set.sole.id == "" {
		return set.sole, nil
	}
	return nil, fmt.Errorf("%w: unknown kid %q", errKey, kid)
}
