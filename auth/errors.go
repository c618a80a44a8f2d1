package auth

import (
	"errors"
)

// ErrInvalidToken is matched (errors.Is) by every verification failure.
var ErrInvalidToken = errors.New("auth: invalid token")

// ErrReplayed is returned by a ReplayStore when a single-use token id has
// already been consumed and has not yet expired.
var ErrReplayed = errors.New("auth: token already used")

// ErrInvalidConfig is wrapped by every error NewVerifier and NewSigner return
// for an unusable configuration.
var ErrInvalidConfig = errors.New("auth: invalid configuration")

// ErrRevoked is wrapped by the *TokenError (Reason ReasonRevoked) that
// Verify returns for a token whose id, session or user has been revoked in
// the configured Revocations.
var ErrRevoked = errors.New("auth: token revoked")

// ErrNoTokenID is returned by MemoryReplayStore.Consume for an empty token id:
// a token without an id cannot be single-use.
var ErrNoTokenID = errors.New("auth: token has no id")

// Reasons a token is refused, carried in TokenError.Reason. They are stable
// strings meant for logs, metrics and the audit trail, never for clients.
const (
	// ReasonMalformed: the token is not a well-formed compact JWT (wrong
	// number of segments, bad base64 or JSON, wrong claim types, too long),
	// names a header or claim member twice or in another case ("Sub"), or
	// has an exp, nbf or iat outside [0, 253402300799] (year 9999).
	ReasonMalformed = "malformed"
	// ReasonAlgorithm: the alg header is "none", unlisted, missing or
	// different from the algorithm pinned for the selected key.
	ReasonAlgorithm = "algorithm"
	// ReasonKey: no key could be selected for the token: its "kid" is
	// missing where a key set requires one, unknown, not a string, names an
	// unusable JWKS key, or the JWKS could not be fetched.
	ReasonKey = "key"
	// ReasonSignature: the signature does not verify with the configured key.
	ReasonSignature = "signature"
	// ReasonExpired: "exp" is in the past (beyond the leeway).
	ReasonExpired = "expired"
	// ReasonNoExpiry: the token has no "exp" claim.
	ReasonNoExpiry = "missing_exp"
	// ReasonNotYetValid: "nbf" or "iat" is in the future (beyond the leeway).
	ReasonNotYetValid = "not_yet_valid"
	// ReasonAudience: "aud" is missing or does not contain the configured
	// audience.
	ReasonAudience = "audience"
	// ReasonIssuer: an issuer is configured and "iss" is missing or differs.
	ReasonIssuer = "issuer"
	// ReasonKind: the "kind" claim is missing or is not the expected kind.
	ReasonKind = "kind"
	// ReasonLifetime: the token lives longer than the configured maximum.
	ReasonLifetime = "lifetime"
	// ReasonSubject: "sub" is missing or empty.
	ReasonSubject = "subject"
	// ReasonNoJTI: a token id is required and "jti" is missing or empty.
	ReasonNoJTI = "missing_jti"
	// ReasonReplayed: a single-use token was presented again (VerifyOnce).
	ReasonReplayed = "replayed"
	// ReasonRevoked: the token's id, session or user (for tokens issued at
	// or before the revocation) is revoked in VerifierConfig.Revocations.
	ReasonRevoked = "revoked"
)

// TokenError says why a token was refused. Reason is one of the Reason*
// constants; it is for logs/audit only, never for clients. Err is the
// underlying cause (often one of the github.com/golang-jwt/jwt/v5 sentinel
// errors) and may be nil.
type TokenError struct {
	// Reason is one of the Reason* constants.
	Reason string
	// Err is the underlying cause, if any.
	Err error
}

// Error returns "auth: invalid token: <reason>: <cause>". The cause may
// contain values taken from the token; sanitise before logging.
func (e *TokenError) Error() string {
	msg := ErrInvalidToken.Error() + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrInvalidToken and Err, so that errors.Is(err,
// ErrInvalidToken) and errors.Is(err, jwt.ErrTokenExpired) both work.
func (e *TokenError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidToken}
	}
	return []error{ErrInvalidToken, e.Err}
}

// ReasonOf returns the Reason of the first *TokenError in err's tree, or ""
// when err is not a token error.
func ReasonOf(err error) string {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}

func tokenErr(reason string, err error) *TokenError {
	return &TokenError{Reason: reason, Err: err}
}
