// Package clientip finds the IP address of the client behind an HTTP
// request without letting the client choose it.
//
// Forwarding headers (X-Forwarded-For, and RFC 7239 Forwarded when
// X-Forwarded-For is absent) are written by whoever sent the request, so they
// are believed only when the TCP peer (Request.RemoteAddr) is one of the
// configured trusted proxies. The zero configuration trusts no proxy and
// always answers with the TCP peer. X-Real-IP is never consulted: it cannot
// express a chain of proxies, so it cannot be checked hop by hop.
//
// A Resolver is immutable after New and safe for concurrent use.
package clientip
