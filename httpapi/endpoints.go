package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/policy"
)

// PublishRequest is the body of POST /api/publish.
type PublishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	// Tenant is required for tenant-scoped namespaces and refused for
	// others; a tenant-bound key defaults it to its own tenant.
	Tenant string `json:"tenant,omitempty"`
}

// PublishResponse answers a publish with the publication's position.
type PublishResponse struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

// BroadcastRequest is the body of POST /api/broadcast: the same data to
// several channels. The key must allow publishing to every one of them.
type BroadcastRequest struct {
	Channels []string        `json:"channels"`
	Data     json.RawMessage `json:"data"`
	Tenant   string          `json:"tenant,omitempty"`
}

// BroadcastResponse answers a broadcast with one result per channel, in
// request order.
type BroadcastResponse struct {
	Results []BroadcastResult `json:"results"`
}

// BroadcastResult is the outcome of publishing to one channel of a
// broadcast: its position, or a generic error code.
type BroadcastResult struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
	Error   string `json:"error,omitempty"`
}

// DisconnectRequest is the body of POST /api/disconnect: at least one
// field; a connection is closed when every field set matches it.
type DisconnectRequest struct {
	User    string `json:"user,omitempty"`
	Session string `json:"session,omitempty"`
	TokenID string `json:"token_id,omitempty"`
}

// DisconnectResponse gives the number of connections closed on the node
// that served the call (other nodes close theirs too).
type DisconnectResponse struct {
	Disconnected int `json:"disconnected"`
}

// RevokeRequest is the body of POST /api/revoke: exactly one field.
type RevokeRequest struct {
	User    string `json:"user,omitempty"`
	Session string `json:"session,omitempty"`
	Token   string `json:"token,omitempty"`
}

// RevokeResponse gives the number of connections closed on the node that
// served the call.
type RevokeResponse struct {
	Closed int `json:"closed"`
}

// PresenceRequest is the body of POST /api/presence.
type PresenceRequest struct {
	Channel string `json:"channel"`
	Tenant  string `json:"tenant,omitempty"`
}

// PresenceResponse lists the connections present in the channel.
type PresenceResponse struct {
	Clients []broker.ClientInfo `json:"clients"`
}

// Position is a stream position: offset and epoch.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// HistoryRequest is the body of POST /api/history.
type HistoryRequest struct {
	Channel string `json:"channel"`
	Tenant  string `json:"tenant,omitempty"`
	// Since, when set, asks for the publications after that position.
	Since *Position `json:"since,omitempty"`
	// Limit caps the publications returned; zero: 100.
	Limit int `json:"limit,omitempty"`
}

// HistoryResponse holds a channel's stream position and publications.
type HistoryResponse struct {
	Position     Position      `json:"position"`
	Complete     bool          `json:"complete"`
	Publications []Publication `json:"publications"`
}

// Publication is one message of a channel's history.
type Publication struct {
	Offset uint64          `json:"offset"`
	Epoch  string          `json:"epoch,omitempty"`
	Data   json.RawMessage `json:"data"`
	Time   time.Time       `json:"time,omitzero"`
}

// ChannelsRequest is the body of POST /api/channels.
type ChannelsRequest struct {
	// Prefix keeps the channels whose name starts with it; "" lists all.
	Prefix string `json:"prefix,omitempty"`
	// Tenant, when set, keeps the channels of that tenant only; a
	// tenant-bound key always lists its own tenant's.
	Tenant string `json:"tenant,omitempty"`
}

// ChannelsResponse lists the channels with subscribers on the node that
// served the call.
type ChannelsResponse struct {
	Channels []ChannelInfo `json:"channels"`
}

// ChannelInfo is one active channel: its name as clients use it, its
// tenant in a tenant-scoped namespace, and its local subscriber count.
type ChannelInfo struct {
	Channel     string `json:"channel"`
	Tenant      string `json:"tenant,omitempty"`
	Subscribers int    `json:"subscribers"`
}

// forbid returns the 403 of an operation outside the key's scopes.
func forbid(reason string) *apiError {
	return refuse(http.StatusForbidden, "forbidden", reason, apikey.ErrScope)
}

// requireScope refuses the call unless the key's scopes allow verb (on
// channel, for verbs with a pattern).
func requireScope(c *call, verb apikey.Verb, channel string) *apiError {
	if !c.key.Scopes.Allows(verb, channel) {
		return forbid("scope")
	}
	return nil
}

// tenantOf returns the tenant a channel operation runs in: the request's,
// or the key's for a tenant-bound key, which may not name another.
func tenantOf(c *call, requested string) (string, *apiError) {
	if c.key.Tenant == "" {
		c.tenant = requested
		return requested, nil
	}
	c.tenant = c.key.Tenant
	if requested != "" && requested != c.key.Tenant {
		c.tenant = requested
		return "", forbid("tenant")
	}
	return c.key.Tenant, nil
}

// requireUnbound refuses operations that are not confined to one tenant
// to tenant-bound keys.
func requireUnbound(c *call) *apiError {
	if c.key.Tenant != "" {
		c.tenant = c.key.Tenant
		return forbid("tenant")
	}
	return nil
}

// gatewayError maps an error of the gateway to the client's generic
// refusal; the detail goes to the log.
func gatewayError(err error) *apiError {
	switch {
	case errors.Is(err, livegate.ErrInvalidChannel):
		return refuse(http.StatusBadRequest, "bad_request", "invalid_channel", err)
	case errors.Is(err, livegate.ErrUnknownNamespace):
		return refuse(http.StatusNotFound, "not_found", "unknown_namespace", err)
	case errors.Is(err, livegate.ErrTenant):
		return refuse(http.StatusBadRequest, "bad_request", "tenant", err)
	case errors.Is(err, livegate.ErrInvalidData):
		return refuse(http.StatusBadRequest, "bad_request", "invalid_data", err)
	case errors.Is(err, livegate.ErrPresenceOff):
		return refuse(http.StatusBadRequest, "bad_request", "presence_off", err)
	case errors.Is(err, livegate.ErrEmptyID), errors.Is(err, livegate.ErrEmptyFilter):
		return refuse(http.StatusBadRequest, "bad_request", "empty_id", err)
	case errors.Is(err, livegate.ErrTooLarge):
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "too_large", err)
	case errors.Is(err, livegate.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return refuse(http.StatusServiceUnavailable, "unavailable", "unavailable", err)
	}
	// Broker and store failures.
	return refuse(http.StatusServiceUnavailable, "unavailable", "unavailable", err)
}

// badRequest returns a 400 with a detail for the log.
func badRequest(format string, args ...any) *apiError {
	return refuse(http.StatusBadRequest, "bad_request", "bad_request", fmt.Errorf(format, args...))
}

// validData checks a publication's data: present and not null.
func validData(d json.RawMessage) *apiError {
	if len(d) == 0 || string(d) == "null" {
		return badRequest("missing data")
	}
	return nil
}

func (h *Handler) publish(c *call) (any, error) {
	var req PublishRequest
	if err := h.decode(c, &req); err != nil {
		return nil, err
	}
	c.detail = "channel=" + req.Channel
	if err := checkChannel(req.Channel); err != nil {
		return nil, err
	}
	if err := validData(req.Data); err != nil {
		return nil, err
	}
	tenant, aerr := tenantOf(c, req.Tenant)
	if aerr != nil {
		return nil, aerr
	}
	if err := requireScope(c, apikey.VerbPublish, req.Channel); err != nil {
		return nil, err
	}
	res, err := h.gw.Publish(c.r.Context(), req.Channel, req.Data, publishOpts(tenant)...)
	if err != nil {
		return nil, gatewayError(err)
	}
	return PublishResponse{Channel: req.Channel, Offset: res.Offset, Epoch: res.Epoch}, nil
}

// publishOpts returns the Publish options for tenant.
func publishOpts(tenant string) []livegate.PublishOption {
	if tenant == "" {
		return nil
	}
	return []livegate.PublishOption{livegate.WithTenant(tenant)}
}

func (h *Handler) broadcast(c *call) (any, error) {
	var req BroadcastRequest
	if err := h.decode(c, &req); err != nil {
		return nil, err
	}
	c.detail = fmt.Sprintf("channels=%d", len(req.Channels))
	if len(req.Channels) == 0 || len(req.Channels) > h.maxBcast {
		return nil, badRequest("want 1 to %d channels, got %d", h.maxBcast, len(req.Channels))
	}
	if err := validData(req.Data); err != nil {
		return nil, err
	}
	tenant, aerr := tenantOf(c, req.Tenant)
	if aerr != nil {
		return nil, aerr
	}
	seen := make(map[string]bool, len(req.Channels))
	for _, ch := range req.Channels {
		if err := checkChannel(ch); err != nil {
			return nil, err
		}
		if seen[ch] {
			return nil, badRequest("repeated channel")
		}
		seen[ch] = true
		// Every channel must be allowed before anything is published.
		if err := requireScope(c, apikey.VerbPublish, ch); err != nil {
			c.detail += " channel=" + ch
			return nil, err
		}
	}
	out := BroadcastResponse{Results: make([]BroadcastResult, 0, len(req.Channels))}
	opts := publishOpts(tenant)
	failed := 0
	for _, ch := range req.Channels {
		res, err := h.gw.Publish(c.r.Context(), ch, req.Data, opts...)
		if err != nil {
			failed++
			ae := gatewayError(err)
			if ae.status >= 500 {
				h.logger.Error("httpapi: broadcast", "key", c.key.ID, "channel", ch, "err", err)
			}
			out.Results = append(out.Results, BroadcastResult{Channel: ch, Error: ae.code})
			continue
		}
		out.Results = append(out.Results, BroadcastResult{Channel: ch, Offset: res.Offset, Epoch: res.Epoch})
	}
	if failed > 0 {
		c.detail += fmt.Sprintf(" failed=%d", failed)
	}
	return out, nil
}

func (h *Handler) disconnect(c *call) (any, error) {
	var req DisconnectRequest
	if err := h.decode(c, &req); err != nil {
		return nil, err
	}
	c.detail = fmt.Sprintf("user=%s session=%s token_id=%s", req.User, req.Session, req.TokenID)
	if req.User == "" && req.Session == "" && req.TokenID == "" {
		return nil, badRequest("empty filter")
	}
	if err := requireUnbound(c); err != nil {
		return nil, err
	}
	if err := requireScope(c, apikey.VerbDisconnect, ""); err != nil {
		return nil, err
	}
	n, err := h.gw.Disconnect(c.r.Context(), livegate.DisconnectFilter{User: req.User, Session: req.Session, TokenID: req.TokenID})
	if err != nil {
		return nil, gatewayError(err)
	}
	return DisconnectResponse{Disconnected: n}, nil
}

func (h *Handler) revoke(c *call) (any, error) {
	var req RevokeRequest
	if err := h.decode(c, &req); err != nil {
		return nil, err
	}
	set := 0
	for _, v := range []string{req.User, req.Session, req.Token} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return nil, badRequest("want exactly one of user, session, token")
	}
	if err := requireUnbound(c); err != nil {
		return nil, err
	}
	if err := requireScope(c, apikey.VerbRevoke, ""); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	var n int
	var err error
	switch {
	case req.User != "":
		c.detail = "user=" + req.User
		n, err = h.gw.RevokeUser(ctx, req.User)
	case req.Session != "":
		c.detail = "session=" + req.Session
		n, err = h.gw.RevokeSession(ctx, req.Session)
	default:
		// The token id is a "jti", not a token: safe to record.
		c.detail = "token=" + req.Token
		n, err = h.gw.RevokeToken(ctx, req.Token)
	}
	if err != nil {
		return nil, gatewayError(err)
	}
	return RevokeResponse{Closed: n}, nil
}

func (h *Handler) presence(c *call) (any, error) {
	var req PresenceRequest
	if err := h.decode(c, &req); err != nil {
		return nil, err
	}
	c.detail = "channel=" + req.Channel
	if err := checkChannel(req.Channel); err != nil {
		return nil, err
	}
	tenant, aerr := tenantOf(c, req.Tenant)
	if aerr != nil {
		return nil, aerr
	}
	if err := requireScope(c, apikey.VerbPresence, req.Channel); err != nil {
		return nil, err
	}
	ch, aerr := tenantChannel(req.Channel, tenant)
	if aerr != nil {
		return nil, aerr
	}
	clients, err := h.gw.Presence(c.r.Context(), ch)
	if err != nil {
		return nil, gatewayError(err)
	}
	if clients == nil {
		clients = []broker.ClientInfo{}
	}
	return PresenceResponse{Clients: clients}, nil
}

func (h *Handler) history(c *call) (any, error) {
	var req HistoryRequest
	if err := h.decode(c, &req); err != nil {
		return nil, err
	}
	c.detail = "channel=" + req.Channel
	if err := checkChannel(req.Channel); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > h.maxHist {
		return nil, badRequest("limit out of range")
	}
	if req.Limit == 0 {
		req.Limit = min(DefaultHistoryLimit, h.maxHist)
	}
	tenant, aerr := tenantOf(c, req.Tenant)
	if aerr != nil {
		return nil, aerr
	}
	if err := requireScope(c, apikey.VerbHistory, req.Channel); err != nil {
		return nil, err
	}
	ch, aerr := tenantChannel(req.Channel, tenant)
	if aerr != nil {
		return nil, aerr
	}
	var since *broker.Position
	if req.Since != nil {
		since = &broker.Position{Offset: req.Since.Offset, Epoch: req.Since.Epoch}
	}
	res, err := h.gw.History(c.r.Context(), ch, since, req.Limit)
	if err != nil {
		return nil, gatewayError(err)
	}
	out := HistoryResponse{
		Position:     Position{Offset: res.Position.Offset, Epoch: res.Position.Epoch},
		Complete:     res.Complete,
		Publications: make([]Publication, 0, len(res.Publications)),
	}
	for _, p := range res.Publications {
		out.Publications = append(out.Publications, Publication{
			Offset: p.Offset, Epoch: p.Epoch, Data: json.RawMessage(p.Data), Time: p.Time,
		})
	}
	return out, nil
}

func (h *Handler) channels(c *call) (any, error) {
	var req ChannelsRequest
	if err := h.decode(c, &req); err != nil {
		return nil, err
	}
	c.detail = "prefix=" + req.Prefix
	tenant, aerr := tenantOf(c, req.Tenant)
	if aerr != nil {
		return nil, aerr
	}
	if err := requireScope(c, apikey.VerbChannels, ""); err != nil {
		return nil, err
	}
	list := h.gw.Channels("")
	out := ChannelsResponse{Channels: make([]ChannelInfo, 0, len(list))}
	for _, ci := range list {
		name, t := policy.External(ci.Channel), policy.InternalTenant(ci.Channel)
		if tenant != "" && t != tenant || !strings.HasPrefix(name, req.Prefix) {
			continue
		}
		out.Channels = append(out.Channels, ChannelInfo{Channel: name, Tenant: t, Subscribers: ci.Subscribers})
	}
	return out, nil
}

// tenantChannel returns the name the gateway's Presence and History take
// for channel in tenant: the channel itself, or "ns:@tenant/name" in a
// tenant. channel is valid (no '@' or '/'), so a request cannot forge the
// tenant form itself.
func tenantChannel(channel, tenant string) (string, *apiError) {
	if tenant == "" {
		return channel, nil
	}
	if !policy.ValidTenant(tenant) {
		return "", refuse(http.StatusBadRequest, "bad_request", "tenant", errors.New("invalid tenant"))
	}
	ns, name, _ := strings.Cut(channel, ":")
	return ns + ":@" + tenant + "/" + name, nil
}

// checkChannel refuses a missing channel or one outside the grammar.
func checkChannel(channel string) *apiError {
	if channel == "" {
		return badRequest("missing channel")
	}
	if err := policy.ValidChannel(channel); err != nil {
		return refuse(http.StatusBadRequest, "bad_request", "invalid_channel", err)
	}
	return nil
}
