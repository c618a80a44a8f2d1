package live

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/livegate/livegate/protocol"
)

// Session is the HTTP session data a view mounts with, for example the
// signed-in user's display name or preferences. It reaches the view's
// Mount through a session token signed by the Registry, which the client
// cannot edit: a token that was tampered with, or minted for another view
// or user, or that expired, is refused.
//
// The token is signed, not encrypted: the page (and so the user) can read
// the data. Do not put secrets in it.
type Session map[string]string

// MaxSessionToken is the largest session token accepted or minted, in
// bytes.
const MaxSessionToken = 8 << 10

const tokenPrefix = "lv1."

// sessionClaims is what a session token binds.
type sessionClaims struct {
	View    string  `json:"v"`
	User    string  `json:"sub"`
	Session Session `json:"s,omitempty"`
	Expires int64   `json:"exp"`
}

// SignSession returns a session token for view name, user and session,
// valid for Options.SessionTTL. Render embeds one in the page; call it
// directly when rendering the view's wrapper yourself.
func (r *Registry) SignSession(name, user string, session Session) (string, error) {
	payload, err := json.Marshal(sessionClaims{
		View: name, User: user, Session: session,
		Expires: r.now().Add(r.opts.SessionTTL).Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("live: session: %w", err)
	}
	body := tokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	tok := body + "." + r.mac(body)
	if len(tok) > MaxSessionToken {
		return "", fmt.Errorf("live: session token of %d bytes exceeds %d", len(tok), MaxSessionToken)
	}
	return tok, nil
}

// verifySession checks token for view name and user and returns its
// session data. The MAC is checked before anything in the token is parsed.
func (r *Registry) verifySession(token, name, user string) (Session, error) {
	if len(token) > MaxSessionToken || !strings.HasPrefix(token, tokenPrefix) {
		return nil, &SessionError{Reason: ReasonMalformed}
	}
	i := strings.LastIndexByte(token, '.')
	if i < len(tokenPrefix) {
		return nil, &SessionError{Reason: ReasonMalformed}
	}
	body, sig := token[:i], token[i+1:]
	if !hmac.Equal([]byte(sig), []byte(r.mac(body))) {
		return nil, &SessionError{Reason: ReasonSignature}
	}
	payload, err := base64.RawURLEncoding.DecodeString(body[len(tokenPrefix):])
	if err != nil {
		return nil, &SessionError{Reason: ReasonMalformed}
	}
	var c sessionClaims
	if err := protocol.Unmarshal(payload, &c); err != nil {
		return nil, &SessionError{Reason: ReasonMalformed}
	}
	switch {
	case c.View != name:
		return nil, &SessionError{Reason: ReasonOtherView}
	case c.User != user:
		return nil, &SessionError{Reason: ReasonOtherUser}
	case !r.now().Before(unixTime(c.Expires)):
		return nil, &SessionError{Reason: ReasonExpired}
	}
	if c.Session == nil {
		c.Session = Session{}
	}
	return c.Session, nil
}

func (r *Registry) mac(body string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// deriveKey separates the session-token key from whatever else the
// application uses the secret for.
func deriveKey(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("livegate live session key v1"))
	return m.Sum(nil)
}

// validParams reports whether params is absent, null or a JSON object.
func validParams(params json.RawMessage) error {
	p := bytes.TrimSpace(params)
	if len(p) == 0 || string(p) == "null" {
		return nil
	}
	if p[0] != '{' || !json.Valid(p) {
		return ErrBadParams
	}
	return nil
}

func cloneSession(s Session) Session {
	if s == nil {
		return Session{}
	}
	return maps.Clone(s)
}
