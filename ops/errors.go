package ops

import "errors"

// Errors returned by the Manager and the Progress handle. Callers facing a
// client turn each into a generic reply: the Handler answers ErrNotFound
// and every refusal with the same 403.
var (
	// ErrNotFound reports an unknown operation id — or another user's, so
	// that nobody can probe which ids exist.
	ErrNotFound = errors.New("ops: operation not found")
	// ErrForbidden is what the Authorizer returns for every refusal, and
	// what Start returns for an identity without a user.
	ErrForbidden = errors.New("ops: forbidden")
	// ErrUnknownKind reports a kind nobody registered.
	ErrUnknownKind = errors.New("ops: unknown kind")
	// ErrInvalidKind reports a kind outside ^[a-z][a-z0-9_]{0,63}$.
	ErrInvalidKind = errors.New("ops: invalid kind")
	// ErrNotRunning reports a Cancel of an operation that already finished
	// (or that another process ran).
	ErrNotRunning = errors.New("ops: operation not running")
	// ErrTooMany reports that the owner, or the Manager, already runs as
	// many operations as the Config allows.
	ErrTooMany = errors.New("ops: too many running operations")
	// ErrClosed reports a call after Shutdown.
	ErrClosed = errors.New("ops: manager shut down")
	// ErrInvalidElementID reports an element id outside
	// ^[A-Za-z][A-Za-z0-9_-]{0,63}$.
	ErrInvalidElementID = errors.New("ops: invalid element id")
	// ErrUnknownTemplate reports a Swap of a template that Config.Templates
	// does not define.
	ErrUnknownTemplate = errors.New("ops: unknown template")
	// ErrTooLarge reports a fragment or result larger than
	// Config.MaxFragmentBytes.
	ErrTooLarge = errors.New("ops: report too large")
	// ErrTooManyTargets reports a Swap into more distinct elements than
	// MaxSwapTargets.
	ErrTooManyTargets = errors.New("ops: too many swap targets")
	// ErrFinished reports a report made after the operation's Func
	// returned.
	ErrFinished = errors.New("ops: operation finished")
)
