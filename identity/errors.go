package identity

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by this package. Compare with [errors.Is]; the policy
// errors are wrapped with the limit that was broken, and a refused login
// caused by a lockout is a [LockedError], which matches [ErrLocked].
var (
	// ErrMalformed reports a password hash that is not a well-formed
	// Argon2id PHC string.
	ErrMalformed = errors.New("identity: malformed password hash")
	// ErrUnsupported reports a hash of another algorithm (argon2i, argon2d,
	// bcrypt, scrypt...) or another Argon2 version than 0x13 (v=19).
	ErrUnsupported = errors.New("identity: unsupported password hash algorithm or version")
	// ErrParams reports Argon2id parameters outside the accepted ranges,
	// either passed to [Hash] or read from a stored hash.
	ErrParams = errors.New("identity: password hash parameters out of range")

	// ErrTooShort reports a password shorter than [Policy.MinLength].
	ErrTooShort = errors.New("identity: password too short")
	// ErrTooLong reports a password longer than [Policy.MaxLength], or
	// longer than [MaxPasswordBytes] bytes when hashing or verifying.
	ErrTooLong = errors.New("identity: password too long")
	// ErrEncoding reports a password that is not valid UTF-8.
	ErrEncoding = errors.New("identity: password is not valid UTF-8")
	// ErrRepeated reports a password made of one character, or of a short
	// pattern of up to four characters, repeated.
	ErrRepeated = errors.New("identity: password is a repeated character or pattern")
	// ErrContainsUser reports a password that equals or contains the user
	// name (or the local part of an e-mail address used as user name).
	ErrContainsUser = errors.New("identity: password contains the user name")
	// ErrContainsWord reports a password that contains one of
	// [Policy.Words].
	ErrContainsWord = errors.New("identity: password contains a forbidden word")
	// ErrCommon reports a password found in the embedded list of common
	// passwords, possibly with digits or symbols added before or after it.
	ErrCommon = errors.New("identity: password is too common")

	// ErrInvalid is the one error of a failed login: the same for an
	// unknown user and for a wrong password.
	ErrInvalid = errors.New("identity: invalid user name or password")
	// ErrLocked is matched by every [LockedError].
	ErrLocked = errors.New("identity: too many failed attempts")
	// ErrExists reports that [Users.Add] was given a name already taken.
	ErrExists = errors.New("identity: user already exists")
	// ErrNotFound reports that [Users.SetPassword] was given an unknown
	// user.
	ErrNotFound = errors.New("identity: no such user")
	// ErrBadName reports a user name that is empty, longer than
	// [MaxNameBytes], not valid UTF-8, contains control characters or
	// starts or ends with white space.
	ErrBadName = errors.New("identity: invalid user name")
)

// LockedError is returned by [Users.Authenticate] while the user or the
// client address is locked after repeated failures. RetryAfter says how long
// to wait; round it up to whole seconds for an HTTP Retry-After header.
// errors.Is(err, ErrLocked) reports true for it.
type LockedError struct {
	RetryAfter time.Duration
}

// Error implements error.
func (e LockedError) Error() string {
	return fmt.Sprintf("%v: retry after %v", ErrLocked, e.RetryAfter)
}

// Is reports whether target is [ErrLocked].
func (e LockedError) Is(target error) bool { return target == ErrLocked }
