package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// SetHeaders writes r to h as the RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset headers of the IETF RateLimit header fields draft (Reset
// in whole seconds, rounded up) and, when r.Allowed is false, Retry-After in
// whole seconds, rounded up and at least 1. When r.Allowed is true it
// removes any Retry-After. Header names are stored in canonical form
// ("Ratelimit-Limit"); HTTP header names are case-insensitive.
func SetHeaders(h http.Header, r Result) {
	h.Set("RateLimit-Limit", strconv.Itoa(r.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(r.Remaining, 0)))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(r.Reset), 10))
	if r.Allowed {
		h.Del("Retry-After")
		return
	}
	h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(r.RetryAfter), 1), 10))
}

// ceilSeconds returns d in whole seconds, rounded up; zero for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}
