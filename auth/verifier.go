package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// VerifierConfig configures token verification. Zero values are safe
// defaults where one exists.
type VerifierConfig struct {
	// Algorithm is required: exactly one of "HS256", "EdDSA", "ES256",
	// "RS256". The token's alg header must equal it.
	Algorithm string
	// HMACSecret is the HS256 shared secret, at least 32 bytes, else
	// NewVerifier errors. It is copied.
	HMACSecret []byte
	// PublicKey verifies EdDSA (ed25519.PublicKey), ES256 (*ecdsa.PublicKey
	// on P-256) and RS256 (*rsa.PublicKey of at least 2048 bits).
	PublicKey crypto.PublicKey
	// Audience must be contained in "aud"; default "livegate".
	Audience string
	// Issuer, when set, must equal "iss"; when empty "iss" is not checked.
	Issuer string
	// MaxLifetime bounds exp - iat (or exp - now when iat is absent);
	// default 1h.
	MaxLifetime time.Duration
	// Leeway is the clock skew allowance for exp, nbf and iat (and for
	// exp - now when iat is absent); default 0.
	Leeway time.Duration
	// RequireJTI, when true, refuses a token without "jti".
	RequireJTI bool
	// MaxTokenBytes bounds the length of a token string; longer tokens are
	// refused before any decoding. Default DefaultMaxTokenBytes (16 KiB).
	MaxTokenBytes int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verifier checks tokens against a VerifierConfig. It is safe for
// concurrent use.
type Verifier struct {
	alg         string
	method      jwt.SigningMethod
	key         any
	audience    string
	issuer      string
	maxLifetime time.Duration
	leeway      time.Duration
	requireJTI  bool
	maxBytes    int
	now         func() time.Time
	parser      *jwt.Parser
	keyFunc     jwt.Keyfunc
}

// errAlgorithmMismatch is returned by the key function when a token's
// signing method is not the pinned one; the parser's method list should
// already have refused it, this is defence in depth.
var errAlgorithmMismatch = errors.New("signing method does not match the pinned algorithm")

// errCritHeader refuses tokens carrying a "crit" header: RFC 7515 requires
// rejecting critical extensions that are not understood, and we understand
// none.
var errCritHeader = errors.New(`unsupported "crit" header`)

// errTooLong refuses tokens longer than MaxTokenBytes before decoding.
var errTooLong = errors.New("token too long")

// errEmpty refuses empty token strings.
var errEmpty = errors.New("empty token")

// NewVerifier validates cfg and returns a Verifier. It errors (wrapping
// ErrInvalidConfig) for an unsupported algorithm, a missing or weak key
// (HS256 secrets under 32 bytes, RSA keys under 2048 bits, ECDSA keys not on
// P-256) and negative durations.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	method, err := signingMethod(cfg.Algorithm)
	if err != nil {
		return nil, err
	}
	var key any
	if cfg.Algorithm == AlgHS256 {
		key, err = checkHMACSecret(cfg.HMACSecret)
	} else {
		key, err = checkPublicKey(cfg.Algorithm, cfg.PublicKey)
	}
	if err != nil {
		return nil, err
	}
	if cfg.MaxLifetime < 0 {
		return nil, fmt.Errorf("%w: negative MaxLifetime", ErrInvalidConfig)
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("%w: negative Leeway", ErrInvalidConfig)
	}
	if cfg.MaxTokenBytes < 0 {
		return nil, fmt.Errorf("%w: negative MaxTokenBytes", ErrInvalidConfig)
	}
	v := &Verifier{
		alg:         cfg.Algorithm,
		method:      method,
		key:         key,
		audience:    cfg.Audience,
		issuer:      cfg.Issuer,
		maxLifetime: cfg.MaxLifetime,
		leeway:      cfg.Leeway,
		requireJTI:  cfg.RequireJTI,
		maxBytes:    cfg.MaxTokenBytes,
		now:         cfg.Now,
	}
	if v.audience == "" {
		v.audience = DefaultAudience
	}
	if v.maxLifetime == 0 {
		v.maxLifetime = DefaultMaxLifetime
	}
	if v.maxBytes == 0 {
		v.maxBytes = DefaultMaxTokenBytes
	}
	if v.now == nil {
		v.now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{v.alg}),
		jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	v.parser = jwt.NewParser(opts...)
	v.keyFunc = v.lookupKey
	return v, nil
}

// Algorithm returns the pinned algorithm name.
func (v *Verifier) Algorithm() string { return v.alg }

// lookupKey is the jwt.Keyfunc: it hands out the configured key only for
// the pinned signing method and refuses critical header extensions.
func (v *Verifier) lookupKey(t *jwt.Token) (any, error) {
	if t.Method != v.method || t.Method.Alg() != v.alg {
		return nil, errAlgorithmMismatch
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritHeader
	}
	return v.key, nil
}

// Verify checks signature, pinned algorithm, aud, exp (required), nbf, iat
// (not in the future), max lifetime, sub non-empty and that claim "kind"
// equals kind. Every failure is a *TokenError matching ErrInvalidToken. Safe
// for concurrent use.
func (v *Verifier) Verify(token string, kind Kind) (Identity, error) {
	if len(token) > v.maxBytes {
		return Identity{}, tokenErr(ReasonMalformed, errTooLong)
	}
	if token == "" {
		return Identity{}, tokenErr(ReasonMalformed, errEmpty)
	}
	var c claims
	t, err := v.parser.ParseWithClaims(token, &c, v.keyFunc)
	if err != nil {
		return Identity{}, v.classify(t, &c, err)
	}
	// The checks below run only on a token whose signature and standard
	// claims verified.
	if c.ExpiresAt == nil { // guaranteed by WithExpirationRequired; kept as a guard
		return Identity{}, tokenErr(ReasonNoExpiry, jwt.ErrTokenRequiredClaimMissing)
	}
	exp := c.ExpiresAt.Time
	if c.IssuedAt != nil {
		if life := exp.Sub(c.IssuedAt.Time); life > v.maxLifetime {
			return Identity{}, tokenErr(ReasonLifetime, fmt.Errorf("lifetime %v exceeds maximum %v", life, v.maxLifetime))
		}
	} else if life := exp.Sub(v.now()); life > v.maxLifetime+v.leeway {
		return Identity{}, tokenErr(ReasonLifetime, fmt.Errorf("remaining lifetime %v exceeds maximum %v", life, v.maxLifetime))
	}
	if c.Subject == "" {
		return Identity{}, tokenErr(ReasonSubject, errors.New("missing or empty sub claim"))
	}
	if kind == "" || c.Kind != kind {
		return Identity{}, tokenErr(ReasonKind, fmt.Errorf("kind %q, want %q", c.Kind, kind))
	}
	if v.requireJTI && c.ID == "" {
		return Identity{}, tokenErr(ReasonNoJTI, errors.New("missing or empty jti claim"))
	}
	id := Identity{
		User:      c.Subject,
		Session:   c.Session,
		Tenant:    c.Tenant,
		Groups:    c.Groups,
		Perms:     c.Perms,
		Channels:  c.Channels,
		TokenID:   c.ID,
		ExpiresAt: exp,
	}
	if c.IssuedAt != nil {
		id.IssuedAt = c.IssuedAt.Time
	}
	return id, nil
}

// ReplayExpiry returns how long a consumed token id must be remembered for
// the token to stay single-use: its expiry plus the verifier's leeway, since
// Verify accepts the token until then.
func (v *Verifier) ReplayExpiry(id Identity) time.Time {
	return id.ExpiresAt.Add(v.leeway)
}

// VerifyOnce verifies a single-use token and consumes its id in store. A
// token without "jti" is refused (ReasonNoJTI) whatever RequireJTI says; a
// token already consumed is refused with a *TokenError whose Reason is
// ReasonReplayed and that matches both ErrInvalidToken and ErrReplayed. Any
// other store failure is returned wrapped and does not match
// ErrInvalidToken.
func (v *Verifier) VerifyOnce(ctx context.Context, store ReplayStore, token string, kind Kind) (Identity, error) {
	id, err := v.Verify(token, kind)
	if err != nil {
		return Identity{}, err
	}
	if id.TokenID == "" {
		return Identity{}, tokenErr(ReasonNoJTI, errors.New("missing or empty jti claim"))
	}
	if err := store.Consume(ctx, id.TokenID, v.ReplayExpiry(id)); err != nil {
		if errors.Is(err, ErrReplayed) {
			return Identity{}, tokenErr(ReasonReplayed, err)
		}
		return Identity{}, fmt.Errorf("auth: replay store: %w", err)
	}
	return id, nil
}

// classify maps a jwt parse error to a *TokenError. c holds the decoded
// claims; claim validation errors only occur after the signature verified,
// so reading c there is safe.
func (v *Verifier) classify(t *jwt.Token, c *claims, err error) *TokenError {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return tokenErr(ReasonMalformed, err)
	case errors.Is(err, errCritHeader):
		return tokenErr(ReasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// alg missing or unknown to jwt, or refused by the key function.
		return tokenErr(ReasonAlgorithm, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if t == nil || t.Method == nil || t.Method.Alg() != v.alg {
			return tokenErr(ReasonAlgorithm, err)
		}
		return tokenErr(ReasonSignature, err)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		missing := errors.Is(err, jwt.ErrTokenRequiredClaimMissing)
		switch {
		case c.ExpiresAt == nil:
			return tokenErr(ReasonNoExpiry, err)
		case errors.Is(err, jwt.ErrTokenExpired):
			return tokenErr(ReasonExpired, err)
		case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			return tokenErr(ReasonNotYetValid, err)
		case errors.Is(err, jwt.ErrTokenInvalidAudience), missing && audienceEmpty(c.Audience):
			return tokenErr(ReasonAudience, err)
		case errors.Is(err, jwt.ErrTokenInvalidIssuer), missing && v.issuer != "" && c.Issuer == "":
			return tokenErr(ReasonIssuer, err)
		}
	}
	return tokenErr(ReasonMalformed, err)
}

func audienceEmpty(aud jwt.ClaimStrings) bool {
	return len(aud) == 0 || len(aud) == 1 && aud[0] == ""
}
