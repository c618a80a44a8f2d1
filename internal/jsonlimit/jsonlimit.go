package jsonlimit

import (
	"errors"
	"math"
	"strconv"
)

// Default limits, used for zero (or negative) fields of [Limits].
const (
	DefaultMaxDepth  = 32
	DefaultMaxKeys   = 256
	DefaultMaxArray  = 4096
	DefaultMaxString = 64 << 10
	DefaultMaxTokens = 16384
)

// MaxDepthCap is the largest MaxDepth honoured; a larger value is lowered to
// it. The per-depth counters live in a fixed-size array so that Check needs
// no heap allocation.
const MaxDepthCap = 128

// DedupDepth is the deepest level whose objects are checked for duplicate
// keys: 1 is the top-level object, 2 an object directly inside it (or
// inside a top-level array).
const DedupDepth = 2

// DedupMaxKeys is the most members an object at depth 1 to DedupDepth may
// have, whatever MaxKeys says; the duplicate check is quadratic in it.
const DedupMaxKeys = 64

// Sentinel errors. The error returned by Check is an [*Error] wrapping one
// of them; test with errors.Is.
var (
	ErrSyntax       = errors.New("jsonlimit: invalid JSON")
	ErrDepth        = errors.New("jsonlimit: nesting too deep")
	ErrKeys         = errors.New("jsonlimit: too many object keys")
	ErrArray        = errors.New("jsonlimit: array too long")
	ErrString       = errors.New("jsonlimit: string too long")
	ErrTokens       = errors.New("jsonlimit: too many tokens")
	ErrDuplicateKey = errors.New("jsonlimit: duplicate object key")
)

// Error describes why a document was refused.
type Error struct {
	// Err is one of the package's sentinel errors.
	Err error
	// Offset is the byte offset in the input of the violation: the
	// offending character for ErrSyntax (len(data) for a truncated
	// document), the opening bracket for ErrDepth, the opening quote of the
	// key or string for ErrKeys, ErrString, ErrDuplicateKey and ErrTokens
	// on a key, and the first byte of the value for ErrArray and ErrTokens.
	Offset int

	reason string // static detail for ErrSyntax; never input bytes
}

// Error returns the sentinel's message with the offset, and for syntax
// errors a short reason. It never quotes the input.
func (e *Error) Error() string {
	msg := e.Err.Error()
	if e.reason != "" {
		msg += ": " + e.reason
	}
	return msg + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Limits bound the structure of a JSON document. Zero (or negative) fields
// take the defaults, so the zero Limits is ready to use.
type Limits struct {
	// MaxDepth bounds the nesting of objects and arrays: "[]" has depth 1,
	// a scalar depth 0. Zero means DefaultMaxDepth (32); values above
	// MaxDepthCap (128) are lowered to it.
	MaxDepth int
	// MaxKeys bounds the members of one object. Zero means
	// DefaultMaxKeys (256). Objects at depth 1 and 2 are further limited
	// to DedupMaxKeys (64).
	MaxKeys int
	// MaxArray bounds the elements of one array. Zero means
	// DefaultMaxArray (4096).
	MaxArray int
	// MaxString bounds the bytes of one string or key between its quotes,
	// with escapes counted as written ("\u00e9" is 6 bytes). Zero means
	// DefaultMaxString (64 KiB).
	MaxString int
	// MaxTokens bounds the total number of values (of any kind, including
	// objects and arrays) plus keys: {"a":[1]} has 4. Zero means
	// DefaultMaxTokens (16384).
	MaxTokens int
}

// orDefault returns def for v <= 0, and otherwise v capped so that the
// int32 per-depth counters cannot overflow.
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return min(v, math.MaxInt32-1)
}

// normalized returns l with defaults and caps applied.
func (l Limits) normalized() Limits {
	l.MaxDepth = min(orDefault(l.MaxDepth, DefaultMaxDepth), MaxDepthCap)
	l.MaxKeys = orDefault(l.MaxKeys, DefaultMaxKeys)
	l.MaxArray = orDefault(l.MaxArray, DefaultMaxArray)
	l.MaxString = orDefault(l.MaxString, DefaultMaxString)
	l.MaxTokens = orDefault(l.MaxTokens, DefaultMaxTokens)
	return l
}

// Check reports whether data is exactly one JSON value (RFC 8259, with
// optional surrounding whitespace) within the limits l, and without
// duplicate keys in objects at depth 1 and 2. It returns nil or the first
// violation in input order as an [*Error] wrapping one of the sentinel
// errors. Check does not allocate unless it refuses data, and it is safe
// for concurrent use.
func (l Limits) Check(data []byte) error {
	var c checker
	c.data = data
	c.lim = l.normalized()
	c.envKeys = min(c.lim.MaxKeys, DedupMaxKeys)
	return c.run()
}
