package auth

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignerConfig configures minting tokens (dev CLI, token endpoint).
type SignerConfig struct {
	// Algorithm is required, one of "HS256", "EdDSA", "ES256", "RS256".
	Algorithm string
	// HMACSecret is the HS256 shared secret, at least 32 bytes. It is copied.
	HMACSecret []byte
	// PrivateKey signs EdDSA (ed25519.PrivateKey), ES256 (*ecdsa.PrivateKey
	// on P-256) and RS256 (*rsa.PrivateKey of at least 2048 bits).
	PrivateKey crypto.Signer
	// Audience is written to "aud"; default "livegate".
	Audience string
	// Issuer, when set, is written to "iss".
	Issuer string
	// KeyID, when set, is written to the "kid" header so that a verifier
	// with a key set (VerifierConfig.Keys or JWKSURL) can select the key.
	KeyID string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Signer mints tokens. It is safe for concurrent use.
type Signer struct {
	method   jwt.SigningMethod
	key      any
	audience string
	issuer   string
	keyID    string
	now      func() time.Time
}

// NewSigner validates cfg and returns a Signer. It errors (wrapping
// ErrInvalidConfig) for an unsupported algorithm or a missing or weak key,
// with the same rules as NewVerifier.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	method, err := signingMethod(cfg.Algorithm)
	if err != nil {
		return nil, err
	}
	var key any
	if cfg.Algorithm == AlgHS256 {
		key, err = checkHMACSecret(cfg.HMACSecret)
	} else {
		key, err = checkPrivateKey(cfg.Algorithm, cfg.PrivateKey)
	}
	if err != nil {
		return nil, err
	}
	s := &Signer{
		method:   method,
		key:      key,
		audience: cfg.Audience,
		issuer:   cfg.Issuer,
		keyID:    cfg.KeyID,
		now:      cfg.Now,
	}
	if s.audience == "" {
		s.audience = DefaultAudience
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Sign mints a token for id with the given kind and ttl (ttl > 0 required).
// It sets iat=now, exp=now+ttl, aud, iss, kind, and a random 128-bit jti
// (base64url) when id.TokenID is empty. It returns the token and the
// Identity as the verifier will see it (TokenID, IssuedAt, ExpiresAt filled
// in). Times have one-second precision: iat is now truncated to the second
// and exp is iat plus ttl rounded up to a whole second. id.IssuedAt and
// id.ExpiresAt are ignored.
func (s *Signer) Sign(id Identity, kind Kind, ttl time.Duration) (string, Identity, error) {
	if ttl <= 0 {
		return "", Identity{}, errors.New("auth: sign: ttl must be positive")
	}
	if id.User == "" {
		return "", Identity{}, errors.New("auth: sign: user is required")
	}
	if kind == "" {
		return "", Identity{}, errors.New("auth: sign: kind is required")
	}
	if id.TokenID == "" {
		jti, err := newTokenID()
		if err != nil {
			return "", Identity{}, fmt.Errorf("auth: sign: %w", err)
		}
		id.TokenID = jti
	}
	iat := time.Unix(s.now().Unix(), 0)
	exp := iat.Add(ttl)
	if exp.Truncate(time.Second) != exp {
		exp = exp.Truncate(time.Second).Add(time.Second)
	}
	id.IssuedAt = iat
	id.ExpiresAt = exp
	id.Groups = cloneStrings(id.Groups)
	id.Perms = cloneStrings(id.Perms)
	id.Channels = cloneStrings(id.Channels)

	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   id.User,
			Audience:  jwt.ClaimStrings{s.audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(iat),
			ID:        id.TokenID,
		},
		Session:  id.Session,
		Tenant:   id.Tenant,
		Groups:   id.Groups,
		Perms:    id.Perms,
		Channels: id.Channels,
		Kind:     kind,
	}
	t := jwt.NewWithClaims(s.method, c)
	if s.keyID != "" {
		t.Header["kid"] = s.keyID
	}
	token, err := t.SignedString(s.key)
	if err != nil {
		return "", Identity{}, fmt.Errorf("auth: sign: %w", err)
	}
	return token, id, nil
}

// cloneStrings copies s; an empty slice becomes nil, as omitempty drops it
// from the token.
func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// newTokenID returns 128 random bits, base64url-encoded without padding.
func newTokenID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// GenerateSecret returns n random bytes from crypto/rand (for dev secrets).
// n must be positive; use at least MinHMACSecretBytes for HS256.
func GenerateSecret(n int) ([]byte, error) {
	if n <= 0 {
		return nil, errors.New("auth: secret length must be positive")
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("auth: generate secret: %w", err)
	}
	return b, nil
}
