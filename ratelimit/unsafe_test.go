package ratelimit_test

import "unsafe"

// unsafeString views b as a string without copying, as a zero-copy parser
// might hand keys to the limiter.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
