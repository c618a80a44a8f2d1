package httpsec

import (
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/livegate/livegate/csrf"
)

// FormField is the form field carrying the CSRF token in classic form
// posts. Only the request body is read, never the URL query.
const FormField = "csrf_token"

// DefaultMaxFormBytes is the default cap on a form body parsed to find the
// token.
const DefaultMaxFormBytes = 64 << 10

// Reasons passed to [CSRFConfig.OnReject]. They are stable strings for the
// audit log; clients only ever see a generic status text.
const (
	// ReasonCrossSite: Sec-Fetch-Site said the request was not same-origin
	// (e.g. "cross-site" or "same-site") and its Origin is not trusted.
	ReasonCrossSite = "cross-site request"
	// ReasonOrigin: no Sec-Fetch-Site, and the Origin header matches
	// neither the Host nor a trusted origin.
	ReasonOrigin = "origin not allowed"
	// ReasonTokenMissing: no token in the header or form field, or no CSRF
	// cookie to check it against.
	ReasonTokenMissing = "csrf token missing" // #nosec G101 -- an error reason, not a credential
	// ReasonTokenInvalid: the token does not match the cookie or its MAC
	// does not verify.
	ReasonTokenInvalid = "csrf token invalid" // #nosec G101 -- an error reason, not a credential
	// ReasonFormTooLarge: the form body exceeds MaxFormBytes (answered with
	// 413 Request Entity Too Large).
	ReasonFormTooLarge = "form body too large"
	// ReasonBadForm: the form body could not be parsed (answered with
	// 400 Bad Request).
	ReasonBadForm = "malformed form body"
)

// CSRFConfig configures [CSRF].
type CSRFConfig struct {
	// Protector issues and verifies the signed double-submit tokens.
	// Required. Pages get the token with Protector.Token(w, r).
	Protector *csrf.Protector
	// TrustedOrigins are origins ("scheme://host[:port]", exact match)
	// whose cross-origin requests pass the Fetch Metadata/Origin check.
	// They still need a valid token. Nil trusts none.
	TrustedOrigins []string
	// OnReject, when set, is called with the request and one of the Reason
	// constants before a refusal is written, for the audit log. It must not
	// write to the response. Nil means no hook.
	OnReject func(r *http.Request, reason string)
	// MaxFormBytes caps the body of a form post parsed to find the token.
	// Zero or negative means DefaultMaxFormBytes (64 KiB). Larger uploads
	// should send the token in the X-CSRF-Token header, which leaves the
	// body unread.
	MaxFormBytes int64
}

// CSRF returns a handler that refuses cross-site state-changing requests
// and passes the others to next.
//
// GET, HEAD and OPTIONS pass unchecked; they must not change state. Every
// other request must pass both layers:
//
//  1. [http.CrossOriginProtection]: Sec-Fetch-Site must be "same-origin"
//     or "none", or, without it, Origin must match Host; an Origin listed
//     in TrustedOrigins also passes. Requests with neither header (not from
//     a browser) pass this layer.
//  2. The [csrf.Protector] token, from the X-CSRF-Token header or, when
//     that header is absent and the body is a form
//     (application/x-www-form-urlencoded or multipart/form-data), from the
//     "csrf_token" field, parsed with a MaxFormBytes cap. The parsed form
//     stays in r.PostForm (and r.MultipartForm) for next.
//
// A refusal is 403 Forbidden with a generic body (413 for an oversized
// form, 400 for a malformed one); the reason goes only to OnReject.
// CSRF returns an error when Protector is nil or a trusted origin is
// malformed.
func CSRF(cfg CSRFConfig, next http.Handler) (http.Handler, error) {
	if cfg.Protector == nil {
		return nil, errors.New("httpsec: CSRFConfig.Protector is required")
	}
	cop := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("httpsec: trusted origin: %w", err)
		}
	}
	g := &guard{
		p:        cfg.Protector,
		cop:      cop,
		onReject: cfg.OnReject,
		maxForm:  cfg.MaxFormBytes,
		next:     next,
	}
	if g.maxForm <= 0 {
		g.maxForm = DefaultMaxFormBytes
	}
	return g, nil
}

// guard is the handler returned by CSRF.
type guard struct {
	p        *csrf.Protector
	cop      *http.CrossOriginProtection
	onReject func(r *http.Request, reason string)
	maxForm  int64
	next     http.Handler
}

// ServeHTTP implements http.Handler.
func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		g.next.ServeHTTP(w, r)
		return
	}
	if err := g.cop.Check(r); err != nil {
		reason := ReasonOrigin
		if r.Header.Get("Sec-Fetch-Site") != "" {
			reason = ReasonCrossSite
		}
		g.reject(w, r, http.StatusForbidden, reason)
		return
	}
	token := r.Header.Get(csrf.HeaderName)
	if token == "" {
		var status int
		var reason string
		token, status, reason = g.formToken(w, r)
		if reason != "" {
			g.reject(w, r, status, reason)
			return
		}
	}
	if err := g.p.CheckToken(r, token); err != nil {
		reason := ReasonTokenInvalid
		if errors.Is(err, csrf.ErrNoToken) {
			reason = ReasonTokenMissing
		}
		g.reject(w, r, http.StatusForbidden, reason)
		return
	}
	g.next.ServeHTTP(w, r)
}

// formToken reads the token from the body of a form post, capped at
// maxForm bytes. It returns "" for other bodies; on failure it returns the
// status and reason of the refusal.
func (g *guard) formToken(w http.ResponseWriter, r *http.Request) (token string, status int, reason string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/x-www-form-urlencoded" && mt != "multipart/form-data") {
		return "", 0, ""
	}
	if r.ContentLength > g.maxForm {
		return "", http.StatusRequestEntityTooLarge, ReasonFormTooLarge
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.maxForm)
	if mt == "multipart/form-data" {
		err = r.ParseMultipartForm(g.maxForm)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", http.StatusRequestEntityTooLarge, ReasonFormTooLarge
		}
		return "", http.StatusBadRequest, ReasonBadForm
	}
	return r.PostForm.Get(FormField), 0, ""
}

// reject reports reason to the hook and writes a generic refusal.
func (g *guard) reject(w http.ResponseWriter, r *http.Request, status int, reason string) {
	if g.onReject != nil {
		g.onReject(r, reason)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(status), status)
}
