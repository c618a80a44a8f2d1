// Package httpsec hardens the HTTP side of every page livegate serves, and
// is meant for host applications' own pages too.
//
// Two middlewares cover it:
//
//   - [Headers] sets security headers on every response: a Content Security
//     Policy carrying a fresh per-request nonce (no 'unsafe-inline' for
//     scripts), frame-ancestors 'none' and X-Frame-Options: DENY,
//     X-Content-Type-Options: nosniff, Referrer-Policy, Permissions-Policy,
//     Cross-Origin-Opener-Policy, Cross-Origin-Resource-Policy, and
//     Strict-Transport-Security on requests that arrived over TLS. Templates
//     read the nonce with [Nonce]: <script nonce="{{.Nonce}}">.
//   - [CSRF] refuses cross-site state-changing requests in two independent
//     layers: Go's [http.CrossOriginProtection] (Fetch Metadata and Origin
//     headers) and the signed double-submit token of a [csrf.Protector],
//     sent in the X-CSRF-Token header or, for classic form posts, in the
//     "csrf_token" form field.
//
// A typical chain puts Headers outermost, so refusals carry the headers too:
//
//	guard, err := httpsec.CSRF(httpsec.CSRFConfig{Protector: p}, mux)
//	if err != nil { ... }
//	srv := &http.Server{Handler: httpsec.Headers(httpsec.HeadersConfig{}, guard)}
//
// Both handlers are safe for concurrent use and keep no per-request state
// beyond the request itself.
package httpsec
