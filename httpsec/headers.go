package httpsec

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
)

// Default header values used by [Headers] for empty [HeadersConfig] fields.
const (
	// DefaultCSP is the default Content Security Policy template. Scripts
	// and styles must carry the request's nonce; nothing may frame the page.
	DefaultCSP = "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	// DefaultHSTS is the default Strict-Transport-Security value: two years,
	// subdomains included.
	DefaultHSTS = "max-age=63072000; includeSubDomains"
	// DefaultPermissionsPolicy turns off powerful features the pages do not
	// use.
	DefaultPermissionsPolicy = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
	// DefaultReferrerPolicy sends only the origin to other sites, and
	// nothing on a downgrade to plain HTTP.
	DefaultReferrerPolicy = "strict-origin-when-cross-origin"
)

// NoncePlaceholder is the marker in [HeadersConfig.CSP] replaced by each
// request's nonce.
const NoncePlaceholder = "{nonce}"

// HeadersConfig configures [Headers]. The zero value applies the secure
// defaults.
type HeadersConfig struct {
	// CSP is the Content-Security-Policy template; every NoncePlaceholder
	// ("{nonce}") is replaced by the request's nonce. Empty means
	// DefaultCSP. A policy that allows 'unsafe-inline' scripts defeats the
	// nonce; do not add it.
	CSP string
	// HSTS is the Strict-Transport-Security value, sent only when the
	// request came over TLS (r.TLS != nil). Behind a TLS-terminating proxy
	// r.TLS is nil, so let the proxy send the header. Empty means
	// DefaultHSTS.
	HSTS string
	// PermissionsPolicy is the Permissions-Policy value. Empty means
	// DefaultPermissionsPolicy.
	PermissionsPolicy string
	// ReferrerPolicy is the Referrer-Policy value. Empty means
	// DefaultReferrerPolicy.
	ReferrerPolicy string
}

// nonceKey is the context key under which Headers stores the nonce.
type nonceKey struct{}

// Headers returns a handler that sets security headers on every response
// and then calls next with a request whose context carries a fresh nonce
// (see [Nonce]).
//
// It sets Content-Security-Policy (with the nonce), X-Frame-Options: DENY,
// X-Content-Type-Options: nosniff, Referrer-Policy, Permissions-Policy,
// Cross-Origin-Opener-Policy: same-origin,
// Cross-Origin-Resource-Policy: same-origin, and, on requests that arrived
// over TLS, Strict-Transport-Security. The headers are set before next
// runs, so next may still change any of them.
func Headers(cfg HeadersConfig, next http.Handler) http.Handler {
	csp := strings.Split(orDefault(cfg.CSP, DefaultCSP), NoncePlaceholder)
	hsts := orDefault(cfg.HSTS, DefaultHSTS)
	perms := orDefault(cfg.PermissionsPolicy, DefaultPermissionsPolicy)
	referrer := orDefault(cfg.ReferrerPolicy, DefaultReferrerPolicy)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce := newNonce()
		h := w.Header()
		h.Set("Content-Security-Policy", strings.Join(csp, nonce))
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", referrer)
		h.Set("Permissions-Policy", perms)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", hsts)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nonceKey{}, nonce)))
	})
}

// Nonce returns the CSP nonce of the request whose context is ctx, or ""
// when the request did not pass through [Headers]. It is 128 random bits in
// standard base64, ready for html/template: <script nonce="{{.Nonce}}">.
// Never cache a page carrying a nonce in a shared cache: a reused nonce
// lets injected markup run.
func Nonce(ctx context.Context) string {
	s, _ := ctx.Value(nonceKey{}).(string)
	return s
}

// newNonce returns 128 random bits, base64-encoded.
func newNonce() string {
	var b [16]byte
	// crypto/rand.Read never returns an error since Go 1.24; it crashes
	// the program instead of handing out predictable bytes.
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
