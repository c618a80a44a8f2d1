package livegate

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
)

// ErrEmptyID is returned by the Revoke methods for an empty id.
var ErrEmptyID = errors.New("livegate: empty id")

// RevokeSession makes every token bound to the application session sid
// unusable and closes the session's live connections with 4403 — on every
// node when the broker implements broker.Control (an error wrapping
// ErrBrokerUnavailable then means the revocation was recorded and applied
// here, but other nodes may not have closed their connections). The
// revocation is kept for MaxTokenLifetime, longer than any token it could
// apply to.
func (g *Gateway) RevokeSession(ctx context.Context, sid string) (int, error) {
	if sid == "" {
		return 0, ErrEmptyID
	}
	if err := g.revocations.RevokeSession(ctx, sid, g.revocationUntil()); err != nil {
		return 0, fmt.Errorf("livegate: revoke session: %w", err)
	}
	n := g.closeMatching("session_revoked", func(id auth.Identity) bool { return id.Session == sid })
	return n, g.broadcast(ctx, controlMessage{Type: ctlRevokeSession, Session: sid})
}

// RevokeUser makes every token issued to user sub so far unusable and
// closes the user's live connections with 4403, on every node as for
// RevokeSession. Tokens issued afterwards
// (a new login) work.
func (g *Gateway) RevokeUser(ctx context.Context, sub string) (int, error) {
	if sub == "" {
		return 0, ErrEmptyID
	}
	if err := g.revocations.RevokeUser(ctx, sub, g.cfg.Now(), g.revocationUntil()); err != nil {
		return 0, fmt.Errorf("livegate: revoke user: %w", err)
	}
	n := g.closeMatching("user_revoked", func(id auth.Identity) bool { return id.User == sub })
	return n, g.broadcast(ctx, controlMessage{Type: ctlRevokeUser, User: sub})
}

// RevokeToken makes the token with id jti unusable and closes the live
// connection it opened (or last refreshed) with 4403, on every node as for
// RevokeSession.
func (g *Gateway) RevokeToken(ctx context.Context, jti string) (int, error) {
	if jti == "" {
		return 0, ErrEmptyID
	}
	if err := g.revocations.RevokeToken(ctx, jti, g.revocationUntil()); err != nil {
		return 0, fmt.Errorf("livegate: revoke token: %w", err)
	}
	n := g.closeMatching("token_revoked", func(id auth.Identity) bool { return id.TokenID == jti })
	return n, g.broadcast(ctx, controlMessage{Type: ctlRevokeToken, Token: jti})
}

func (g *Gateway) revocationUntil() time.Time {
	return g.cfg.Now().Add(g.cfg.MaxTokenLifetime + g.cfg.ExpiryJitter + g.cfg.TokenLeeway)
}

// closeMatching revokes every connection whose identity matches and
// returns how many it closed.
func (g *Gateway) closeMatching(reason string, match func(auth.Identity) bool) int {
	g.connsMu.Lock()
	var hit []*conn
	for c := range g.conns {
		if id := c.ident.Load(); id != nil && match(*id) {
			hit = append(hit, c)
		}
	}
	g.connsMu.Unlock()
	for _, c := range hit {
		c.revoke(reason)
	}
	return len(hit)
}

// SetTokenKeys replaces the key set used to verify tokens, without a
// restart; live connections are unaffected. An invalid set is refused and
// the current keys stay in force.
func (g *Gateway) SetTokenKeys(keys []auth.Key) error {
	if err := g.verifier.SetKeys(keys); err != nil {
		return fmt.Errorf("livegate: %w", err)
	}
	return nil
}

// RevokeRequest is the body of the revocation endpoint: exactly one field.
type RevokeRequest struct {
	User    string `json:"user,omitempty"`
	Session string `json:"session,omitempty"`
	Token   string `json:"token,omitempty"`
}

// RevokeResponse answers a revocation with the number of connections
// closed on this node.
type RevokeResponse struct {
	Closed int `json:"closed"`
}

// RevokeHandler returns an HTTP endpoint for backends that revoke users,
// sessions or tokens: POST a RevokeRequest with
// "Authorization: Bearer <adminSecret>". The secret must be at least 32
// bytes; every use and every failure is a security event.
func (g *Gateway) RevokeHandler(adminSecret []byte) (http.Handler, error) {
	if len(adminSecret) < 32 {
		return nil, errors.New("livegate: admin secret must be at least 32 bytes")
	}
	secret := append([]byte(nil), adminSecret...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := g.clientIPOf(r)
		event := func(typ, reason string, sev audit.Severity) {
			g.securityEvent(r.Context(), audit.Event{Type: typ, Severity: sev, IP: ip, Reason: reason})
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), secret) != 1 {
			event(audit.TypeAdminDenied, "bad_credentials", audit.SeverityCritical)
			w.Header().Set("WWW-Authenticate", `Bearer realm="livegate"`)
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		var req RevokeRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || countSet(req.User, req.Session, req.Token) != 1 {
			http.Error(w, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
			return
		}
		var n int
		var err error
		switch {
		case req.User != "":
			n, err = g.RevokeUser(r.Context(), req.User)
		case req.Session != "":
			n, err = g.RevokeSession(r.Context(), req.Session)
		default:
			n, err = g.RevokeToken(r.Context(), req.Token)
		}
		if err != nil {
			g.cfg.Logger.Error("revoke", "err", err)
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		event(audit.TypeRevoked, "admin_api", audit.SeverityInfo)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(RevokeResponse{Closed: n})
	}), nil
}

func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}
