package ratelimit

import (
	"errors"
	"fmt"
)

// ErrInvalidRule is wrapped by every error [Rule.Validate] and [NewMemory]
// return for an unusable rule.
var ErrInvalidRule = errors.New("ratelimit: invalid rule")

// ErrNotAcquired is returned by [MemoryCounter.Release] for a key that holds
// no slot: a Release without a matching Acquire, or a second Release.
var ErrNotAcquired = errors.New("ratelimit: release without acquire")

// ctxErr reports a done context as an error that carries the package prefix
// and still matches context.Canceled or context.DeadlineExceeded.
func ctxErr(err error) error {
	return fmt.Errorf("ratelimit: %w", err)
}
