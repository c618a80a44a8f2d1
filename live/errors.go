package live

import (
	"errors"
	"fmt"
)

// Errors returned by the live package. The gateway maps each to a generic
// client error (see docs/protocol.md, "Live views"); their text is for
// logs and the audit trail only.
var (
	// ErrUnknownView: no view of that name is registered.
	ErrUnknownView = errors.New("live: unknown view")
	// ErrUnknownEvent: the event name is malformed or the view registered
	// no event of that name. Clients get the same reply as for an unknown
	// gateway event.
	ErrUnknownEvent = errors.New("live: unknown event")
	// ErrForbidden: the event's guard (Require) refused the subject, or
	// the subject is not the view's user. Clients get the same reply as
	// for an unknown event.
	ErrForbidden = errors.New("live: forbidden")
	// ErrBadPayload: the event payload failed decoding into the handler's
	// type (unknown field, wrong type, trailing data) or its Validate.
	ErrBadPayload = errors.New("live: bad payload")
	// ErrBadParams: mount parameters that are not a JSON object.
	ErrBadParams = errors.New("live: mount params must be a JSON object")
	// ErrRateLimited: the event's rate limit (RateLimit) was hit; the
	// handler did not run.
	ErrRateLimited = errors.New("live: rate limited")
	// ErrStateTooLarge: the view's state outgrew Options.MaxStateBytes.
	// The instance has been closed.
	ErrStateTooLarge = errors.New("live: view state too large")
	// ErrClosed: the instance is closed.
	ErrClosed = errors.New("live: view closed")
	// ErrBusy: Update was called while too many updates were already
	// waiting for the instance.
	ErrBusy = errors.New("live: too many pending updates")
	// ErrSession: the session token is invalid; errors.As gives a
	// *SessionError with the reason.
	ErrSession = errors.New("live: invalid session token")
	// ErrInvalidName: a view or event name outside ^[a-z][a-z0-9_]{0,63}$.
	ErrInvalidName = errors.New("live: invalid name")
	// ErrDuplicateView: Register was called twice for one name.
	ErrDuplicateView = errors.New("live: view already registered")
)

var errNilTemplate = errors.New("live: view has no template")

// Reasons a session token is refused, in SessionError.Reason.
const (
	ReasonMalformed = "malformed"
	ReasonSignature = "signature"
	ReasonOtherView = "other_view"
	ReasonOtherUser = "other_user"
	ReasonExpired   = "expired"
)

// SessionError is a refused session token. It matches ErrSession with
// errors.Is. Reason is one of the Reason constants, for the audit trail;
// clients are only told "forbidden".
type SessionError struct {
	Reason string
}

func (e *SessionError) Error() string { return "live: invalid session token: " + e.Reason }

// Is reports whether target is ErrSession.
func (e *SessionError) Is(target error) bool { return target == ErrSession }

// PanicError is a panic recovered from application code (Mount, an event
// handler or an Update function). The gateway logs Value and Stack and
// answers "internal".
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("live: panic: %v", e.Value) }
