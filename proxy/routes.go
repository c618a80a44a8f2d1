package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/logsafe"
)

// Claims are the verified identity claims sent to the backend, under
// "identity" in every request body.
type Claims struct {
	Sub       string   `json:"sub"`
	Sid       string   `json:"sid,omitempty"`
	Tenant    string   `json:"tenant,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	Perms     []string `json:"perms,omitempty"`
	TokenID   string   `json:"jti,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"` // unix seconds
}

func claimsOf(id auth.Identity) *Claims {
	c := &Claims{Sub: id.User, Sid: id.Session, Tenant: id.Tenant, Groups: id.Groups, Perms: id.Perms, TokenID: id.TokenID}
	if !id.ExpiresAt.IsZero() {
		c.ExpiresAt = id.ExpiresAt.Unix()
	}
	return c
}

// ConnectBody is the JSON body of a connect request.
type ConnectBody struct {
	ConnID   string          `json:"conn_id"`
	ClientIP string          `json:"client_ip"`
	Identity *Claims         `json:"identity"`        // null when the client sent no token
	Token    string          `json:"token,omitempty"` // only with Config.ForwardToken
	Data     json.RawMessage `json:"data,omitempty"`  // the client's connect "data"
}

// SubscribeBody is the JSON body of a subscribe request.
type SubscribeBody struct {
	ConnID   string  `json:"conn_id"`
	ClientIP string  `json:"client_ip,omitempty"`
	Identity *Claims `json:"identity"`
	Channel  string  `json:"channel"`
}

// EventBody is the JSON body of an event request.
type EventBody struct {
	ConnID   string          `json:"conn_id"`
	ClientIP string          `json:"client_ip,omitempty"`
	Identity *Claims         `json:"identity"`
	Event    string          `json:"event"`
	Payload  json.RawMessage `json:"payload"`
}

// DisconnectBody is the JSON body of a disconnect request.
type DisconnectBody struct {
	ConnID   string  `json:"conn_id"`
	ClientIP string  `json:"client_ip,omitempty"`
	Identity *Claims `json:"identity"`
	Code     int     `json:"code"`
	Reason   string  `json:"reason,omitempty"`
}

// ConnectResponse is the backend's answer to a connect request.
type ConnectResponse struct {
	// User is the connection's user id; required unless Deny.
	User    string   `json:"user"`
	Session string   `json:"session,omitempty"`
	Tenant  string   `json:"tenant,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Perms   []string `json:"perms,omitempty"`
	// ExpiresAt, unix seconds, ends the connection; it must be in the
	// future and is lowered to the token's expiry when there was a token.
	// Zero: the token's expiry, or the gateway's MaxConnLifetime.
	ExpiresAt int64 `json:"expires_at,omitempty"`
	// Channels the gateway subscribes the connection to.
	Channels []string `json:"channels,omitempty"`
	// Deny refuses the connection (close 4403); the other fields are
	// then ignored.
	Deny bool `json:"deny,omitempty"`
}

func (*ConnectResponse) keys() []string {
	return []string{"user", "session", "tenant", "groups", "perms", "expires_at", "channels", "deny"}
}

func (r *ConnectResponse) check(now time.Time) error {
	if r.Deny {
		return nil
	}
	if r.User == "" {
		return errors.New("connect: user is required")
	}
	for _, f := range []struct{ name, v string }{{"user", r.User}, {"session", r.Session}, {"tenant", r.Tenant}} {
		if err := checkField(f.name, f.v); err != nil {
			return err
		}
	}
	if len(r.Groups) > maxGroups || len(r.Perms) > maxGroups {
		return fmt.Errorf("connect: more than %d groups or perms", maxGroups)
	}
	for _, g := range append(append([]string(nil), r.Groups...), r.Perms...) {
		if g == "" {
			return errors.New("connect: empty group or perm")
		}
		if err := checkField("group or perm", g); err != nil {
			return err
		}
	}
	if r.ExpiresAt < 0 || (r.ExpiresAt != 0 && r.ExpiresAt <= now.Unix()) {
		return fmt.Errorf("connect: expires_at %d is not in the future", r.ExpiresAt)
	}
	if len(r.Channels) > MaxChannels {
		return fmt.Errorf("connect: more than %d channels", MaxChannels)
	}
	for _, c := range r.Channels {
		if c == "" {
			return errors.New("connect: empty channel")
		}
		if err := checkField("channel", c); err != nil {
			return err
		}
	}
	return nil
}

// checkField refuses overlong, invalid UTF-8 and control characters.
func checkField(name, v string) error {
	if len(v) > maxField || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("connect: bad %s %q", name, logsafe.Truncate(v, 64))
	}
	return nil
}

// SubscribeResponse is the backend's answer to a subscribe request.
type SubscribeResponse struct {
	// Allow is required.
	Allow *bool `json:"allow"`
}

func (*SubscribeResponse) keys() []string { return []string{"allow"} }

func (r *SubscribeResponse) check(time.Time) error {
	if r.Allow == nil {
		return errors.New("subscribe: allow is required")
	}
	return nil
}

// EventResponse is the backend's answer to an event request.
type EventResponse struct {
	// Reply is sent to the client as the event's result.
	Reply json.RawMessage `json:"reply,omitempty"`
	// Publish lists publications made through the gateway before the
	// reply is sent, at most MaxPublications.
	Publish []Publication `json:"publish,omitempty"`
	// Error, when set, answers the client with this error code instead;
	// nothing is published. bad_request, forbidden, rate_limited and
	// unavailable pass through, any other code becomes internal.
	Error string `json:"error,omitempty"`
}

// Publication is one publication requested by an event response.
type Publication struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	// Tenant publishes into a tenant-scoped namespace (livegate.WithTenant).
	Tenant string `json:"tenant,omitempty"`
}

func (*EventResponse) keys() []string { return []string{"reply", "publish", "error"} }

func (r *EventResponse) check(time.Time) error {
	if len(r.Publish) > MaxPublications {
		return fmt.Errorf("event: more than %d publications", MaxPublications)
	}
	for _, p := range r.Publish {
		if p.Channel == "" || len(p.Data) == 0 {
			return errors.New("event: publication needs channel and data")
		}
		if err := checkField("channel", p.Channel); err != nil {
			return err
		}
		if err := checkField("tenant", p.Tenant); err != nil {
			return err
		}
	}
	if len(r.Error) > 64 {
		return errors.New("event: error code too long")
	}
	return nil
}

// UnmarshalJSON decodes a publication, refusing unknown fields.
func (p *Publication) UnmarshalJSON(b []byte) error {
	type plain Publication
	var v plain
	if err := decodeStrict(b, &v, []string{"channel", "data", "tenant"}); err != nil {
		return err
	}
	*p = Publication(v)
	return nil
}

// connect forwards a connect to the backend and returns the identity and
// channels it grants. The result is all or nothing: on any failure nothing
// is granted. An explicit deny wraps ErrDenied; every failure wraps
// ErrBackend. id and token are the verified connect token, if any.
func (p *Proxy) connect(ctx context.Context, connID, clientIP string, header http.Header, id *auth.Identity, token string, data json.RawMessage) (auth.Identity, []string, error) {
	if err := checkConnID(connID); err != nil {
		return auth.Identity{}, nil, err
	}
	body := ConnectBody{ConnID: connID, ClientIP: cleanIP(clientIP), Data: data}
	if id != nil {
		body.Identity = claimsOf(*id)
	}
	if p.cfg.ForwardToken {
		body.Token = token
	}
	var resp ConnectResponse
	if err := p.post(ctx, p.paths.Connect, body, p.forwardHeaders(header), &resp); err != nil {
		return auth.Identity{}, nil, err
	}
	if resp.Deny {
		return auth.Identity{}, nil, ErrDenied
	}
	out := auth.Identity{
		User: resp.User, Session: resp.Session, Tenant: resp.Tenant,
		Groups: resp.Groups, Perms: resp.Perms,
	}
	if resp.ExpiresAt != 0 {
		out.ExpiresAt = time.Unix(resp.ExpiresAt, 0)
	}
	if id != nil {
		// The token stays revocable by its id, and never outlives itself.
		out.TokenID, out.IssuedAt = id.TokenID, id.IssuedAt
		if !id.ExpiresAt.IsZero() && (out.ExpiresAt.IsZero() || id.ExpiresAt.Before(out.ExpiresAt)) {
			out.ExpiresAt = id.ExpiresAt
		}
	}
	return out, resp.Channels, nil
}

// forwardHeaders picks the configured headers from the upgrade request,
// skipping any the request's Connection header names.
func (p *Proxy) forwardHeaders(h http.Header) http.Header {
	if len(h) == 0 || len(p.forward) == 0 {
		return nil
	}
	hop := make(map[string]bool)
	for _, v := range h.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			hop[http.CanonicalHeaderKey(strings.TrimSpace(f))] = true
		}
	}
	out := make(http.Header)
	for _, name := range p.forward {
		if hop[name] || forbiddenHeader(name) {
			continue
		}
		if vs := h.Values(name); len(vs) > 0 {
			out[name] = append([]string(nil), vs...)
		}
	}
	return out
}

func cleanIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	return a.Unmap().String()
}

// subscribe asks the backend whether the connection connID of id may
// subscribe to channel.
func (p *Proxy) subscribe(ctx context.Context, connID, clientIP string, id auth.Identity, channel string) error {
	if err := checkConnID(connID); err != nil {
		return err
	}
	body := SubscribeBody{ConnID: connID, ClientIP: cleanIP(clientIP), Identity: claimsOf(id), Channel: channel}
	var resp SubscribeResponse
	if err := p.post(ctx, p.paths.Subscribe, body, nil, &resp); err != nil {
		return err
	}
	if !*resp.Allow {
		return fmt.Errorf("%w: subscribe %q", ErrDenied, logsafe.Truncate(channel, 128))
	}
	return nil
}

// event forwards one client event to the backend.
func (p *Proxy) event(ctx context.Context, connID, clientIP string, id auth.Identity, name string, payload json.RawMessage) (*EventResponse, error) {
	if err := checkConnID(connID); err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	body := EventBody{ConnID: connID, ClientIP: cleanIP(clientIP), Identity: claimsOf(id), Event: name, Payload: payload}
	var resp EventResponse
	if err := p.post(ctx, p.paths.Event, body, nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// disconnect tells the backend a connection closed.
func (p *Proxy) disconnect(ctx context.Context, connID, clientIP string, id auth.Identity, code int, reason string) error {
	if !p.cfg.Routes.Disconnect {
		return nil
	}
	if err := checkConnID(connID); err != nil {
		return err
	}
	body := DisconnectBody{ConnID: connID, ClientIP: cleanIP(clientIP), Identity: claimsOf(id), Code: code, Reason: reason}
	return p.post(ctx, p.paths.Disconnect, body, nil, nil)
}
