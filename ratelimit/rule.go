package ratelimit

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Strategy selects the algorithm a [Rule] is enforced with.
type Strategy int

const (
	// TokenBucket allows Rule.Rate events per second on average and bursts
	// of up to Rule.Burst events: a bucket holding Burst tokens refills at
	// Rate tokens per second and each event takes one. It is the
	// golang.org/x/time/rate algorithm; use it for steady streams such as the
	// commands a connection sends. Over any interval of length d at most
	// Burst + Rate×d events pass.
	TokenBucket Strategy = iota

	// SlidingWindow allows at most Rule.Limit events in every interval of
	// length Rule.Window, whatever its start. Each window is split into ten
	// sub-windows, aligned to the Unix epoch, with one counter each; an event
	// counts until the whole sub-window it fell in has left the window. The
	// count is therefore never below the exact count, so the limit is never
	// exceeded, and an event's capacity comes back between one Window and
	// 1.1 Windows after it, instead of exactly one Window later. (The common
	// two-counter approximation, which weights the previous window by its
	// overlap, can pass up to nearly 2×Limit in one Window when the previous
	// window's events were bunched at its end.) Use it for attempts per IP
	// or per user.
	SlidingWindow

	// FixedWindow allows at most Rule.Limit events per window, the windows
	// being consecutive intervals of length Rule.Window aligned to the Unix
	// epoch, so the count resets at each boundary. It is the cheapest
	// strategy, but Limit events just before a boundary and Limit just after
	// it make up to 2×Limit in an interval of length Window.
	FixedWindow
)

// String returns the strategy's name: "token_bucket", "sliding_window",
// "fixed_window", or "Strategy(n)" for an unknown value.
func (s Strategy) String() string {
	switch s {
	case TokenBucket:
		return "token_bucket"
	case SlidingWindow:
		return "sliding_window"
	case FixedWindow:
		return "fixed_window"
	}
	return "Strategy(" + strconv.Itoa(int(s)) + ")"
}

// Limits on rule values, so that counters fit in 32 bits and window
// arithmetic on Unix nanoseconds cannot overflow.
const (
	maxLimit  = math.MaxInt32
	maxWindow = time.Duration(1 << 60) // about 36 years
)

// Rule is one limit: Limit events per Window (SlidingWindow and
// FixedWindow), or Rate events per second with bursts of Burst
// (TokenBucket).
//
// For TokenBucket, Limit and Window are ignored on input, except that when
// Rate and Burst are both zero they are derived from them (Rate =
// Limit/Window, Burst = Limit); [NewMemory] then sets Limit = Burst and
// Window = Burst/Rate, the time an empty bucket takes to fill, which is what
// the RateLimit-* headers report. For the window strategies Rate and Burst
// are ignored.
type Rule struct {
	// Strategy is the algorithm. The zero value is TokenBucket.
	Strategy Strategy
	// Limit is the number of events allowed per Window, at least 1.
	Limit int
	// Window is the length of the window, positive.
	Window time.Duration
	// Rate is the token bucket's refill rate in events per second: positive
	// and finite.
	Rate float64
	// Burst is the token bucket's size, at least 1: the number of events
	// allowed at once after a quiet period.
	Burst int
}

// Per returns a SlidingWindow rule allowing n events in any interval of
// length window.
func Per(n int, window time.Duration) Rule {
	return Rule{Strategy: SlidingWindow, Limit: n, Window: window}
}

// PerSecond returns a SlidingWindow rule allowing n events per second.
func PerSecond(n int) Rule { return Per(n, time.Second) }

// PerMinute returns a SlidingWindow rule allowing n events per minute.
func PerMinute(n int) Rule { return Per(n, time.Minute) }

// PerHour returns a SlidingWindow rule allowing n events per hour.
func PerHour(n int) Rule { return Per(n, time.Hour) }

// Bucket returns a TokenBucket rule allowing rate events per second on
// average with bursts of up to burst events.
func Bucket(rate float64, burst int) Rule {
	return Rule{Strategy: TokenBucket, Rate: rate, Burst: burst}
}

// Validate reports whether r can be enforced; the error wraps
// [ErrInvalidRule] and says which field is wrong.
func (r Rule) Validate() error {
	_, err := r.normalize()
	return err
}

// normalize validates r and fills in the fields derived from the others.
func (r Rule) normalize() (Rule, error) {
	switch r.Strategy {
	case TokenBucket:
		if r.Rate == 0 && r.Burst == 0 && r.Limit > 0 && r.Window > 0 {
			r.Rate = float64(r.Limit) / r.Window.Seconds()
			r.Burst = r.Limit
		}
		if math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate <= 0 {
			return r, fmt.Errorf("%w: rate must be positive and finite, got %v", ErrInvalidRule, r.Rate)
		}
		if r.Burst < 1 || r.Burst > maxLimit {
			return r, fmt.Errorf("%w: burst must be between 1 and %d, got %d", ErrInvalidRule, maxLimit, r.Burst)
		}
		r.Limit = r.Burst
		r.Window = ceilDuration(float64(r.Burst) / r.Rate)
		if r.Window > maxWindow {
			return r, fmt.Errorf("%w: rate %v is too low to fill a bucket of %d within %v", ErrInvalidRule, r.Rate, r.Burst, maxWindow)
		}
		return r, nil
	case SlidingWindow, FixedWindow:
		if r.Limit < 1 || r.Limit > maxLimit {
			return r, fmt.Errorf("%w: limit must be between 1 and %d, got %d", ErrInvalidRule, maxLimit, r.Limit)
		}
		if r.Window <= 0 || r.Window > maxWindow {
			return r, fmt.Errorf("%w: window must be positive and at most %v, got %v", ErrInvalidRule, maxWindow, r.Window)
		}
		return r, nil
	}
	return r, fmt.Errorf("%w: unknown strategy %v", ErrInvalidRule, r.Strategy)
}

// ceilDuration converts seconds to a Duration, rounding up to the next
// nanosecond and saturating at the largest Duration.
func ceilDuration(seconds float64) time.Duration {
	ns := math.Ceil(seconds * float64(time.Second))
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	if ns <= 0 {
		return 0
	}
	return time.Duration(ns)
}
