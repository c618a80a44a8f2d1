package livegate

import (
	"errors"

	"github.com/livegate/livegate/protocol"
)

// Errors returned by the Gateway API.
var (
	// ErrClosed is returned after Shutdown or Close.
	ErrClosed = errors.New("livegate: gateway closed")
	// ErrTooLarge is returned by Publish when the encoded push would exceed
	// Config.MaxOutboundMessage.
	ErrTooLarge = errors.New("livegate: message too large")
	// ErrInvalidChannel is returned for a channel name outside the grammar.
	ErrInvalidChannel = errors.New("livegate: invalid channel")
	// ErrUnknownNamespace is returned for a channel whose namespace is not
	// configured.
	ErrUnknownNamespace = errors.New("livegate: unknown namespace")
	// ErrTenant is returned by Publish when a tenant-scoped namespace is
	// published to without WithTenant (or with an invalid tenant), or
	// another namespace with one.
	ErrTenant = errors.New("livegate: tenant required for tenant-scoped namespaces only")
	// ErrInvalidData is returned by Publish for data that is not valid JSON.
	ErrInvalidData = errors.New("livegate: data is not valid JSON")
	// ErrDuplicateHandler is returned by Handle for a name registered twice.
	ErrDuplicateHandler = errors.New("livegate: handler already registered")
	// ErrInvalidEventName is returned by Handle for a name outside
	// ^[a-z][a-z0-9_]{0,63}$.
	ErrInvalidEventName = errors.New("livegate: invalid event name")
	// ErrPresenceOff is returned by Presence for a channel whose namespace
	// does not record presence.
	ErrPresenceOff = errors.New("livegate: presence is off for this namespace")
	// ErrBrokerUnavailable is wrapped by errors of Publish (and of the
	// cluster-wide part of revocations and Disconnect) when the broker
	// failed, e.g. because its server is unreachable.
	ErrBrokerUnavailable = errors.New("livegate: broker unavailable")
	// ErrEmptyFilter is returned by Disconnect for a filter with no field set.
	ErrEmptyFilter = errors.New("livegate: empty disconnect filter")
)

// Error codes a handler may return through NewError; see docs/protocol.md.
const (
	CodeBadRequest  = protocol.CodeBadRequest
	CodeForbidden   = protocol.CodeForbidden
	CodeRateLimited = protocol.CodeRateLimited
	CodeUnavailable = protocol.CodeUnavailable
)

// NewError returns an error that a handler can return to send the client
// one of the protocol's generic errors (e.g. CodeBadRequest or
// CodeForbidden) instead of "internal". Unknown codes become "internal".
func NewError(code string) error {
	return protocol.NewError(code)
}

// clientError maps an error from application code to the client's error.
// Only protocol errors pass through; everything else is internal.
func clientError(err error) *protocol.Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case protocol.CodeBadRequest, protocol.CodeForbidden, protocol.CodeRateLimited,
			protocol.CodeUnavailable, protocol.CodeTooLarge, protocol.CodeLimitExceeded,
			protocol.CodeUnauthorized:
			return protocol.NewError(pe.Code)
		}
	}
	return protocol.NewError(protocol.CodeInternal)
}
