package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// VerifierConfig configures token verification. Zero values are safe
// defaults where one exists.
//
// Keys come in one of two forms, and a JWKS may be added to either or used
// alone:
//
//   - one key: Algorithm with HMACSecret or PublicKey. Tokens need no "kid";
//     one that has a "kid" is accepted whatever its value (the key has no
//     ID).
//   - a key set: Keys, each key with its own pinned algorithm and, when
//     there is more than one, an ID that tokens must name in "kid".
//   - JWKSURL: asymmetric keys fetched from a JSON Web Key Set. Tokens must
//     name a key in "kid"; static keys are looked up first.
type VerifierConfig struct {
	// Algorithm, with HMACSecret or PublicKey, configures a single key:
	// exactly one of "HS256", "EdDSA", "ES256", "RS256". The token's alg
	// header must equal it. Leave empty when using Keys.
	Algorithm string
	// HMACSecret is the HS256 shared secret, at least 32 bytes, else
	// NewVerifier errors. It is copied.
	HMACSecret []byte
	// PublicKey verifies EdDSA (ed25519.PublicKey), ES256 (*ecdsa.PublicKey
	// on P-256) and RS256 (*rsa.PublicKey of at least 2048 bits).
	PublicKey crypto.PublicKey
	// Keys is a key set selected by the token's "kid" header, an
	// alternative to Algorithm/HMACSecret/PublicKey (setting both forms is
	// an error). Each key's algorithm is pinned. With more than one key
	// every key needs a unique ID and a token without "kid", or with an
	// unknown one, is refused (ReasonKey). A single key may have no ID; it
	// then accepts tokens with or without "kid". If it has an ID, a token's
	// "kid", when present, must match. Replace the set at run time with
	// Verifier.SetKeys.
	Keys []Key
	// JWKSURL, when set, adds the asymmetric keys of the JSON Web Key Set
	// at this URL. It must be https, or plain http to a loopback host.
	// The set is fetched by NewVerifier, refreshed every JWKSRefresh and,
	// when a token names an unknown "kid", refreshed on demand (at most
	// once a minute, or once per JWKSRefresh when shorter; callers arriving
	// while that refresh runs wait for it). A failed fetch keeps the keys
	// held so far; if the first fetch fails NewVerifier still succeeds and
	// the verifier refuses every JWKS token (ReasonKey) until a refresh
	// succeeds, failing closed. Only JWKs with "alg" EdDSA, ES256 or RS256
	// (and "use" "sig" or absent) are used, with that algorithm pinned;
	// "oct" keys, keys without "alg" and others are ignored, so a token
	// naming them is refused with ReasonKey. Tokens must carry a "kid";
	// static keys must then all have IDs. Call Verifier.Close to stop the
	// refresh.
	JWKSURL string
	// JWKSRefresh is the JWKS refresh interval; default 1h
	// (DefaultJWKSRefresh).
	JWKSRefresh time.Duration
	// HTTPClient fetches the JWKS; default a client with no timeout of its
	// own (each fetch is bounded to 10s). It is copied and its transport
	// wrapped to refuse insecure redirects and responses over MaxJWKSBytes.
	HTTPClient *http.Client
	// Logger receives JWKS fetch failures; nil discards them.
	Logger *slog.Logger
	// Revocations, when set, is consulted after every other check; a
	// revoked token is refused with ReasonRevoked (matching ErrRevoked). A
	// failing Revocations makes Verify return its error wrapped, which
	// does not match ErrInvalidToken but still refuses the token.
	Revocations Revocations
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
// concurrent use. A Verifier with a JWKSURL owns a background refresh;
// call Close when done with it.
type Verifier struct {
	keys        atomic.Pointer[keySet]
	jwks        *jwksSource // nil without JWKSURL
	revocations Revocations
	audience    string
	issuer      string
	maxLifetime time.Duration
	leeway      time.Duration
	requireJTI  bool
	maxBytes    int
	now         func() time.Time
	parser      *jwt.Parser
	closeOnce   sync.Once
}

// supportedAlgs are the algorithms the parser lets through to key
// selection, which then pins the selected key's own algorithm.
var supportedAlgs = []string{AlgHS256, AlgEdDSA, AlgES256, AlgRS256}

// errAlgorithmMismatch is returned by the key function when a token's
// signing method is not the one pinned for the selected key.
var errAlgorithmMismatch = errors.New("signing method does not match the pinned algorithm")

// errCritHeader refuses tokens carrying a "crit" header: RFC 7515 requires
// rejecting critical extensions that are not understood, and we understand
// none.
var errCritHeader = errors.New(`unsupported "crit" header`)

// errTooLong refuses tokens longer than MaxTokenBytes before decoding.
var errTooLong = errors.New("token too long")

// errEmpty refuses empty token strings.
var errEmpty = errors.New("empty token")

// errTokenChars refuses a token with a byte outside the base64url
// alphabet and '.'. The base64 decoder skips '\r' and '\n', so without
// this check a token with line breaks inserted (in its signature, which
// is not signed) would verify as the same token in another spelling.
var errTokenChars = errors.New("token has a character outside the base64url alphabet")

// compactChars reports whether token holds only base64url characters
// (unpadded) and the '.' separators.
func compactChars(token string) bool {
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// NewVerifier validates cfg and returns a Verifier. It errors (wrapping
// ErrInvalidConfig) for an unsupported algorithm, a missing or weak key
// (HS256 secrets under 32 bytes, RSA keys under 2048 bits, ECDSA keys not on
// P-256), a key set breaking the rules of VerifierConfig.Keys, an insecure
// JWKSURL and negative durations. With JWKSURL it fetches the key set
// before returning (up to 10s) and starts its refresh; see Close.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	single := cfg.Algorithm != "" || cfg.HMACSecret != nil || cfg.PublicKey != nil
	if single && len(cfg.Keys) > 0 {
		return nil, fmt.Errorf("%w: set either Algorithm/HMACSecret/PublicKey or Keys, not both", ErrInvalidConfig)
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
	useJWKS := cfg.JWKSURL != ""
	var set *keySet
	if single {
		// The single-key form keeps its historical leniency: the field not
		// used by the algorithm is ignored.
		k, err := newVerifyKey(Key{Algorithm: cfg.Algorithm, Secret: cfg.HMACSecret, PublicKey: cfg.PublicKey}, false)
		if err != nil {
			return nil, err
		}
		if useJWKS {
			return nil, fmt.Errorf("%w: with JWKSURL, static keys need IDs: use Keys", ErrInvalidConfig)
		}
		set = &keySet{sole: k}
	} else {
		var err error
		if set, err = newKeySet(cfg.Keys, useJWKS, useJWKS); err != nil {
			return nil, err
		}
	}
	v := &Verifier{
		revocations: cfg.Revocations,
		audience:    cfg.Audience,
		issuer:      cfg.Issuer,
		maxLifetime: cfg.MaxLifetime,
		leeway:      cfg.Leeway,
		requireJTI:  cfg.RequireJTI,
		maxBytes:    cfg.MaxTokenBytes,
		now:         cfg.Now,
	}
	v.keys.Store(set)
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
		jwt.WithValidMethods(supportedAlgs),
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
	if useJWKS {
		logger := cfg.Logger
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		src, err := newJWKSSource(cfg, logger)
		if err != nil {
			return nil, err
		}
		v.jwks = src
	}
	return v, nil
}

// Close stops the JWKS refresh and cancels JWKS fetches in flight, waiting
// for on-demand refreshes to end (the periodic refresh goroutine, owned by
// the keyfunc library, exits on its own shortly after). After Close, tokens
// naming a JWKS key are refused with ReasonKey, since their keys are no
// longer kept fresh; static keys keep working. Close is idempotent, always
// returns nil, and need not be called for a Verifier without JWKSURL.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() {
		if v.jwks != nil {
			v.jwks.close()
		}
	})
	return nil
}

// Algorithm returns the pinned algorithm when the verifier has exactly one
// static key and no JWKS, and "" otherwise (each key of a set has its own).
func (v *Verifier) Algorithm() string {
	if s := v.keys.Load(); v.jwks == nil && s.sole != nil {
		return s.sole.alg
	}
	return ""
}

// keyFunc returns the jwt.Keyfunc for one Verify call: it refuses a
// header with ambiguous member names (see errMemberName), selects the key
// by "kid", hands it out only for the key's pinned signing method, refuses
// critical header extensions and records the selected key in *sel.
func (v *Verifier) keyFunc(ctx context.Context, sel **verifyKey) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if err := v.checkHeader(t.Raw); err != nil {
			return nil, err
		}
		k, err := v.selectKey(ctx, t)
		if err != nil {
			return nil, err
		}
		if t.Method != k.method || t.Method.Alg() != k.alg {
			return nil, fmt.Errorf("%w: token alg %q, key %q pinned to %q", errAlgorithmMismatch, t.Method.Alg(), k.id, k.alg)
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritHeader
		}
		*sel = k
		return k.key, nil
	}
}

// Verify is VerifyContext with context.Background(). With a JWKS, a token
// naming an unknown kid may wait up to 10s for a refresh; use
// VerifyContext to bound that.
func (v *Verifier) Verify(token string, kind Kind) (Identity, error) {
	return v.VerifyContext(context.Background(), token, kind)
}

// VerifyContext checks the token size and characters (base64url and '.'
// only), refuses (ReasonMalformed) a header
// or payload naming a member twice or naming one of the members it reads
// in another case ("Sub", "ALG"; claim names are case-sensitive) and date
// claims that are not numbers of seconds from 0 to 253402300799 (year
// 9999), selects the key by "kid" (see VerifierConfig.Keys and JWKSURL),
// then checks signature, the selected key's pinned algorithm, aud, exp
// (required), nbf, iat (not in the future), max lifetime, sub non-empty,
// that claim "kind" equals kind, jti when required and finally
// Revocations when configured. Every token failure is a *TokenError
// matching ErrInvalidToken; a Revocations failure is returned wrapped. ctx
// bounds JWKS refreshes and the Revocations call. Safe for concurrent use.
func (v *Verifier) VerifyContext(ctx context.Context, token string, kind Kind) (Identity, error) {
	if len(token) > v.maxBytes {
		return Identity{}, tokenErr(ReasonMalformed, errTooLong)
	}
	if token == "" {
		return Identity{}, tokenErr(ReasonMalformed, errEmpty)
	}
	if !compactChars(token) {
		return Identity{}, tokenErr(ReasonMalformed, errTokenChars)
	}
	var (
		c   claims
		sel *verifyKey
	)
	t, err := v.parser.ParseWithClaims(token, &c, v.keyFunc(ctx, &sel))
	if err != nil {
		return Identity{}, v.classify(t, &c, sel, err)
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
	if v.revocations != nil {
		revoked, err := v.revocations.Revoked(ctx, id)
		if err != nil {
			return Identity{}, fmt.Errorf("auth: revocations: %w", err)
		}
		if revoked {
			return Identity{}, tokenErr(ReasonRevoked, ErrRevoked)
		}
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
	id, err := v.VerifyContext(ctx, token, kind)
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
// so reading c there is safe. sel is the key the key function selected, nil
// if it was not reached or refused the token.
func (v *Verifier) classify(t *jwt.Token, c *claims, sel *verifyKey, err error) *TokenError {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return tokenErr(ReasonMalformed, err)
	case errors.Is(err, errCritHeader), errors.Is(err, errMemberName), errors.Is(err, errDateRange):
		return tokenErr(ReasonMalformed, err)
	case errors.Is(err, errKey):
		return tokenErr(ReasonKey, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// alg missing or unknown to jwt, or refused by the key function.
		return tokenErr(ReasonAlgorithm, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Without a selected key the parser refused the alg itself.
		if sel == nil || t == nil || t.Method != sel.method {
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
