package livegate

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/csrf"
)

// TokenResponse is the JSON body TokenHandler answers with.
type TokenResponse struct {
	// Token is a single-use connect token for the user's session.
	Token string `json:"token"`
	// Expires is the token's expiry in Unix seconds.
	Expires int64 `json:"expires"`
}

// ErrNoSigningKey is logged when TokenHandler is used without a key to sign
// tokens with (TokenHMACSecret for HS256, TokenSigningKey otherwise).
var ErrNoSigningKey = errors.New("livegate: no token signing key configured")

// TokenHandler returns the endpoint through which a logged-in page gets its
// connect token, for applications that embed the gateway. Mount it behind
// the application's own login; identify returns the logged-in user of the
// request (its User is required; Session binds the token to the app
// session, so RevokeSession closes the connection it opens).
//
// The endpoint accepts only POST, and only from the application's own pages:
// the request must pass the CSRF checks — Sec-Fetch-Site "same-origin" when
// sent, an allowed Origin when sent, and the X-CSRF-Token header matching
// the CSRF cookie (see CSRFToken). It answers a TokenResponse with a token
// that lives Config.TokenTTL and carries a fresh jti, so it connects once.
func (g *Gateway) TokenHandler(identify func(*http.Request) (auth.Identity, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ip := g.clientIPOf(r)
		deny := func(status int, typ, reason, user string) {
			g.securityEvent(r.Context(), audit.Event{
				Type: typ, Severity: audit.SeverityWarning, IP: ip, Reason: reason, User: user,
				Detail: r.Header.Get("Origin"),
			})
			http.Error(w, http.StatusText(status), status)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		if err := g.csrf.Check(r); err != nil {
			deny(http.StatusForbidden, audit.TypeCSRFRejected, csrfReason(err), "")
			return
		}
		id, err := identify(r)
		if err != nil || id.User == "" {
			deny(http.StatusUnauthorized, audit.TypeTokenDenied, "identify", "")
			return
		}
		switch status := g.allowTokenIssue(r.Context(), w.Header(), id.Tenant, id.User, ip); status {
		case 0:
		case http.StatusServiceUnavailable:
			deny(status, audit.TypeRateLimited, "token_issue_store", id.User)
			return
		default:
			g.cfg.Metrics.RateLimited("token_issue")
			deny(status, audit.TypeRateLimited, "token_issue", id.User)
			return
		}
		if g.signer == nil {
			g.cfg.Logger.Error("token endpoint", "err", ErrNoSigningKey)
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		id.TokenID = "" // always a fresh single-use id
		tok, issued, err := g.signer.Sign(id, auth.KindConnect, g.cfg.TokenTTL)
		if err != nil {
			g.cfg.Logger.Error("token endpoint: sign", "err", err)
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(TokenResponse{Token: tok, Expires: issued.ExpiresAt.Unix()})
	})
}

// CSRFToken returns the CSRF token for the request's browser, setting the
// CSRF cookie when needed. Put it in the page (for example
// <meta name="csrf-token" content="…">) so the page's script can send it
// in the X-CSRF-Token header; never put it in a URL.
func (g *Gateway) CSRFToken(w http.ResponseWriter, r *http.Request) (string, error) {
	return g.csrf.Token(w, r)
}

func csrfReason(err error) string {
	switch {
	case errors.Is(err, csrf.ErrCrossSite):
		return "cross_site"
	case errors.Is(err, csrf.ErrOrigin):
		return "origin"
	case errors.Is(err, csrf.ErrMissingOrigin):
		return "no_origin"
	case errors.Is(err, csrf.ErrNoToken):
		return "no_token"
	}
	return "bad_token"
}
