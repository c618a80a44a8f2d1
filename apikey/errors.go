package apikey

import "errors"

// Errors returned by Manager and the scope parser. Callers answering a
// client map ErrInvalidKey, ErrExpired and ErrRevoked to the same generic
// "unauthorized" reply: which of them applied is for the audit trail only.
var (
	// ErrInvalidKey reports a key that is malformed, names no stored key,
	// or whose secret does not match.
	ErrInvalidKey = errors.New("apikey: invalid key")
	// ErrExpired reports a valid key past its expiry.
	ErrExpired = errors.New("apikey: key expired")
	// ErrRevoked reports a valid key that has been revoked.
	ErrRevoked = errors.New("apikey: key revoked")
	// ErrScope reports a key whose scopes do not allow the operation.
	ErrScope = errors.New("apikey: out of scope")
	// ErrInvalidScope is wrapped by every error ParseScope and
	// ParseScopes return for a malformed scope or an unknown verb.
	ErrInvalidScope = errors.New("apikey: invalid scope")
	// ErrNotFound is returned by Manager.Get and Manager.Revoke, and by a
	// Store, for an id that names no key.
	ErrNotFound = errors.New("apikey: no such key")
	// ErrInvalidName is returned by Manager.Create for an empty or
	// malformed key name.
	ErrInvalidName = errors.New("apikey: invalid name")
)
