// Package csrf protects state-changing HTTP endpoints against cross-site
// request forgery with three independent checks: Fetch Metadata
// (Sec-Fetch-Site), the Origin header, and a signed double-submit token.
//
// The token is a random value and its HMAC, kept in an HttpOnly,
// SameSite=Strict cookie. The page receives the same token from the server
// (for example in <meta name="csrf-token">) and sends it back in the
// X-CSRF-Token header. A forged request can neither read the page's token
// nor mint one that verifies, because it does not know the key.
package csrf

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// HeaderName is the request header carrying the token.
const HeaderName = "X-CSRF-Token"

// Errors returned by Check. Each is a distinct reason for the audit log;
// clients only ever see a generic 403.
var (
	ErrCrossSite     = errors.New("csrf: cross-site request")
	ErrOrigin        = errors.New("csrf: origin not allowed")
	ErrMissingOrigin = errors.New("csrf: no Origin or Sec-Fetch-Site header")
	ErrNoToken       = errors.New("csrf: token missing")
	ErrBadToken      = errors.New("csrf: token invalid")
)

// Options configure a Protector.
type Options struct {
	// AllowOrigin reports whether a browser origin may make request r.
	// Required.
	AllowOrigin func(r *http.Request, origin string) bool
	// Secure marks the cookie Secure and names it with the __Host- prefix;
	// set it when the site is served over HTTPS.
	Secure bool
	// CookieName overrides the cookie's name; default "livegate_csrf"
	// ("__Host-livegate_csrf" when Secure).
	CookieName string
}

// Protector issues and checks tokens. It is safe for concurrent use.
type Protector struct {
	key    []byte
	opts   Options
	cookie string
}

// New returns a Protector signing tokens with key (at least 32 bytes).
func New(key []byte, opts Options) (*Protector, error) {
	if len(key) < 32 {
		return nil, errors.New("csrf: key must be at least 32 bytes")
	}
	if opts.AllowOrigin == nil {
		return nil, errors.New("csrf: AllowOrigin is required")
	}
	name := opts.CookieName
	if name == "" {
		name = "livegate_csrf"
		if opts.Secure {
			name = "__Host-livegate_csrf"
		}
	}
	return &Protector{key: append([]byte(nil), key...), opts: opts, cookie: name}, nil
}

// Token returns the request's token, setting a new cookie when the request
// has no valid one. Embed the result in the page; never in a URL.
func (p *Protector) Token(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(p.cookie); err == nil && p.valid(c.Value) {
		return c.Value, nil
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("csrf: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:]) + "." + p.mac(raw[:])
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- always HttpOnly and SameSite=Strict; Secure when the deployment is HTTPS (Options.Secure)
		Name:     p.cookie,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		Secure:   p.opts.Secure,
		SameSite: http.SameSiteStrictMode,
	})
	return tok, nil
}

// Check verifies a state-changing request: the Fetch Metadata and Origin
// headers say it comes from an allowed origin, and the token in the
// X-CSRF-Token header equals the cookie's and carries a valid MAC.
func (p *Protector) Check(r *http.Request) error {
	if err := p.CheckOrigin(r); err != nil {
		return err
	}
	return p.CheckToken(r, r.Header.Get(HeaderName))
}

// CheckOrigin runs the header checks alone: Sec-Fetch-Site must be
// "same-origin" when sent, and Origin must be allowed when sent; a request
// with neither is refused, since every current browser sends one of them
// on a cross-origin POST.
func (p *Protector) CheckOrigin(r *http.Request) error {
	site := r.Header.Get("Sec-Fetch-Site")
	origin := r.Header.Get("Origin")
	if site != "" && site != "same-origin" {
		return ErrCrossSite
	}
	if origin != "" && !p.opts.AllowOrigin(r, origin) {
		return ErrOrigin
	}
	if site == "" && origin == "" {
		return ErrMissingOrigin
	}
	return nil
}

// CheckToken verifies that token equals the request's CSRF cookie and is
// signed with the Protector's key. It is used directly for tokens that do
// not travel in the header, such as a live view's join over WebSocket.
func (p *Protector) CheckToken(r *http.Request, token string) error {
	if token == "" {
		return ErrNoToken
	}
	return p.Verify(p.CookieValue(r), token)
}

// Verify checks token against the CSRF cookie value cookie, as CheckToken
// does for a request, for callers that kept the cookie (for example from a
// WebSocket handshake).
func (p *Protector) Verify(cookie, token string) error {
	if token == "" || cookie == "" {
		return ErrNoToken
	}
	if subtle.ConstantTimeCompare([]byte(cookie), []byte(token)) != 1 || !p.valid(token) {
		return ErrBadToken
	}
	return nil
}

// CookieValue returns the request's CSRF cookie value, or "".
func (p *Protector) CookieValue(r *http.Request) string {
	if c, err := r.Cookie(p.cookie); err == nil {
		return c.Value
	}
	return ""
}

func (p *Protector) valid(tok string) bool {
	val, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	// Only the minted spelling of a token verifies: exactly 43 characters
	// (the decoder would skip '\r' and '\n' in a longer one), decoded
	// strictly (the unused low bits of the last one must be zero).
	if len(val) != base64.RawURLEncoding.EncodedLen(32) {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(val)
	if err != nil || len(raw) != 32 {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(p.mac(raw)))
}

func (p *Protector) mac(raw []byte) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte("livegate csrf v1\x00"))
	m.Write(raw)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
