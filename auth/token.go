package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Kind is the token's purpose, claim "kind".
type Kind string

// Token kinds. A token of one kind is never accepted where another is
// expected.
const (
	// KindConnect authenticates a WebSocket connection.
	KindConnect Kind = "connect"
	// KindSubscribe authorises subscribing to the channels it lists.
	KindSubscribe Kind = "subscribe"
)

// Identity is what a verified token says about its bearer.
type Identity struct {
	User      string    // "sub", required, non-empty
	Session   string    // "sid", optional
	Tenant    string    // "tenant", optional
	Groups    []string  // "groups", optional
	Perms     []string  // "perms", optional
	Channels  []string  // "channels": for subscribe tokens, the exact channels authorised
	TokenID   string    // "jti"
	IssuedAt  time.Time // "iat" (zero if absent)
	ExpiresAt time.Time // "exp", required
}

// Supported algorithm names, the values of VerifierConfig.Algorithm and
// SignerConfig.Algorithm.
const (
	// AlgHS256 is HMAC with SHA-256 and a shared secret of at least 32 bytes.
	AlgHS256 = "HS256"
	// AlgEdDSA is Ed25519.
	AlgEdDSA = "EdDSA"
	// AlgES256 is ECDSA on P-256 with SHA-256.
	AlgES256 = "ES256"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256 and a key of at least 2048 bits.
	AlgRS256 = "RS256"
)

const (
	// MinHMACSecretBytes is the shortest HS256 secret accepted.
	MinHMACSecretBytes = 32
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
	// DefaultAudience is the audience used when none is configured.
	DefaultAudience = "livegate"
	// DefaultMaxLifetime is the longest token lifetime accepted when
	// VerifierConfig.MaxLifetime is zero.
	DefaultMaxLifetime = time.Hour
	// DefaultMaxTokenBytes is the longest token accepted when
	// VerifierConfig.MaxTokenBytes is zero.
	DefaultMaxTokenBytes = 16 << 10
)

// claims is the JSON payload of a livegate token.
type claims struct {
	jwt.RegisteredClaims
	Session  string   `json:"sid,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Perms    []string `json:"perms,omitempty"`
	Channels []string `json:"channels,omitempty"`
	Kind     Kind     `json:"kind,omitempty"`
}

// signingMethod returns the jwt method for one of the four supported
// algorithm names.
func signingMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case AlgHS256:
		return jwt.SigningMethodHS256, nil
	case AlgEdDSA:
		return jwt.SigningMethodEdDSA, nil
	case AlgES256:
		return jwt.SigningMethodES256, nil
	case AlgRS256:
		return jwt.SigningMethodRS256, nil
	case "":
		return nil, fmt.Errorf("%w: algorithm is required", ErrInvalidConfig)
	default:
		return nil, fmt.Errorf("%w: unsupported algorithm %q (want HS256, EdDSA, ES256 or RS256)", ErrInvalidConfig, alg)
	}
}

// checkHMACSecret enforces the minimum secret length and returns a copy.
func checkHMACSecret(secret []byte) ([]byte, error) {
	if len(secret) < MinHMACSecretBytes {
		return nil, fmt.Errorf("%w: HS256 secret must be at least %d bytes, got %d", ErrInvalidConfig, MinHMACSecretBytes, len(secret))
	}
	return append([]byte(nil), secret...), nil
}

// checkPublicKey verifies that pub is the right type and strength for alg
// and returns the value to hand to jwt.
func checkPublicKey(alg string, pub crypto.PublicKey) (any, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: %s requires a public key", ErrInvalidConfig, alg)
	}
	switch alg {
	case AlgEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: EdDSA requires an ed25519.PublicKey, got %T", ErrInvalidConfig, pub)
		}
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: ed25519 public key must be %d bytes", ErrInvalidConfig, ed25519.PublicKeySize)
		}
		return k, nil
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil {
			return nil, fmt.Errorf("%w: ES256 requires an *ecdsa.PublicKey, got %T", ErrInvalidConfig, pub)
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ES256 requires a P-256 key", ErrInvalidConfig)
		}
		return k, nil
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return nil, fmt.Errorf("%w: RS256 requires an *rsa.PublicKey, got %T", ErrInvalidConfig, pub)
		}
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("%w: RSA key must be at least %d bits, got %d", ErrInvalidConfig, MinRSABits, k.N.BitLen())
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: unsupported algorithm %q", ErrInvalidConfig, alg)
}

// checkPrivateKey verifies that priv is the right type and strength for alg
// and returns the value to hand to jwt.
func checkPrivateKey(alg string, priv crypto.Signer) (any, error) {
	if priv == nil {
		return nil, fmt.Errorf("%w: %s requires a private key", ErrInvalidConfig, alg)
	}
	switch alg {
	case AlgEdDSA:
		k, ok := priv.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: EdDSA requires an ed25519.PrivateKey, got %T", ErrInvalidConfig, priv)
		}
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: ed25519 private key must be %d bytes", ErrInvalidConfig, ed25519.PrivateKeySize)
		}
		return k, nil
	case AlgES256:
		k, ok := priv.(*ecdsa.PrivateKey)
		if !ok || k == nil {
			return nil, fmt.Errorf("%w: ES256 requires an *ecdsa.PrivateKey, got %T", ErrInvalidConfig, priv)
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ES256 requires a P-256 key", ErrInvalidConfig)
		}
		return k, nil
	case AlgRS256:
		k, ok := priv.(*rsa.PrivateKey)
		if !ok || k == nil || k.N == nil {
			return nil, fmt.Errorf("%w: RS256 requires an *rsa.PrivateKey, got %T", ErrInvalidConfig, priv)
		}
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("%w: RSA key must be at least %d bits, got %d", ErrInvalidConfig, MinRSABits, k.N.BitLen())
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: unsupported algorithm %q", ErrInvalidConfig, alg)
}
