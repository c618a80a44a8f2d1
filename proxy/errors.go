package proxy

import "errors"

// Errors returned by this package. Callers branch on them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every error New and NewVerifier
	// return for an unusable configuration.
	ErrInvalidConfig = errors.New("proxy: invalid configuration")

	// ErrBadSignature is returned by Verifier.Verify when the signature
	// headers are missing or malformed, or the signature does not match
	// the request under any configured secret.
	ErrBadSignature = errors.New("proxy: bad signature")
	// ErrStale is returned by Verifier.Verify for a correctly signed
	// request whose timestamp is outside the allowed clock skew.
	ErrStale = errors.New("proxy: stale request")
	// ErrReplayed is returned by Verifier.Verify for a correctly signed,
	// fresh request whose nonce was already seen.
	ErrReplayed = errors.New("proxy: replayed request")

	// ErrBackend is wrapped by every backend failure: unreachable, timed
	// out, a status other than 200, a malformed or oversize response, or
	// the circuit breaker refusing the call. Clients only ever see a
	// generic error for it; the detail is logged.
	ErrBackend = errors.New("proxy: backend request failed")
	// ErrCircuitOpen is wrapped (together with ErrBackend) when the
	// circuit breaker refused a call without sending it.
	ErrCircuitOpen = errors.New("proxy: circuit open")
	// ErrResponseTooLarge is wrapped (together with ErrBackend) when the
	// backend's response exceeded Config.MaxResponseBytes.
	ErrResponseTooLarge = errors.New("proxy: backend response too large")
	// ErrBadResponse is wrapped (together with ErrBackend) when the
	// backend answered with an unexpected status or content type, or a
	// body that is not the route's strict JSON.
	ErrBadResponse = errors.New("proxy: bad backend response")

	// ErrDenied is wrapped when the backend explicitly refused a connect
	// ("deny": true) or a subscription ("allow": false).
	ErrDenied = errors.New("proxy: denied by backend")
	// ErrInvalidConnID is returned for a connection id that does not have
	// the gateway's format; such a request is never forwarded.
	ErrInvalidConnID = errors.New("proxy: invalid connection id")
)
