package livegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// ConnectRequest is what a ConnectHook learns about a connection asking to
// connect.
type ConnectRequest struct {
	// ConnID is the connection's id, the same as Request.ConnID.
	ConnID string
	// ClientIP is the client's address, as resolved with TrustedProxies.
	ClientIP string
	// Header is a clone of the WebSocket upgrade request's headers.
	Header http.Header
	// Identity holds the verified token's claims; nil when the connect
	// carried no token.
	Identity *auth.Identity
	// Token is the raw token; "" when none.
	Token string
	// Data is the connect's "data" parameter, an optional JSON value of at
	// most 4 KiB chosen by the client; nil when absent.
	Data json.RawMessage
}

// ConnectResult is a ConnectHook's decision for an allowed connection.
type ConnectResult struct {
	// Identity is the connection's identity; User is required. A zero
	// ExpiresAt means the token's expiry, or MaxConnLifetime from now when
	// there was no token. A zero IssuedAt means the token's, or now when
	// there was no token (revocations of the user made before it apply).
	Identity auth.Identity
	// Channels are channels the server subscribes the connection to, as
	// the client names them. Each must be in a configured namespace; the
	// namespace's subscribe policy is not applied (the hook decided).
	Channels []string
}

// ConnectHook decides who a connecting client is. It runs on the
// connection's reader goroutine with a context that ends at the connect
// deadline (Config.ConnectTimeout after the upgrade). Return an error
// wrapping ErrConnectDenied to refuse the client (close 4403); any other
// error closes the connection 4500 and is logged. In both cases the
// client learns nothing more than the close code.
type ConnectHook func(ctx context.Context, req *ConnectRequest) (ConnectResult, error)

// ErrConnectDenied is wrapped by ConnectHook errors that refuse a client.
var ErrConnectDenied = errors.New("livegate: connect denied")

// DisconnectInfo describes a connection that completed connect and then
// closed; see Config.OnDisconnect.
type DisconnectInfo struct {
	// ConnID is the connection's id.
	ConnID string
	// ClientIP is the client's address, as resolved with TrustedProxies
	// (the same as ConnectRequest.ClientIP).
	ClientIP string
	// Identity is the connection's last identity.
	Identity auth.Identity
	// Code is the close code: the server's (e.g. 4403 after a revocation,
	// 1001 at shutdown) or, when the client closed, the client's.
	Code int
	// Reason is a short generic description of Code.
	Reason string
}

// maxServerChannels bounds the channels a ConnectHook may subscribe.
func (g *Gateway) maxServerChannels() int { return g.cfg.MaxChannelsPerConn }

// handleConnect authenticates the connection: the token (when sent or
// required), the connect hook (when configured), revocation and replay
// checks and the per-user limits, then the server-side subscriptions. It
// returns false when the connection was closed.
func (c *conn) handleConnect(f protocol.ClientFrame) bool {
	g := c.g
	data := f.Data
	if string(data) == "null" {
		data = nil
	}
	if len(data) > protocol.MaxConnectData {
		c.event(audit.TypeProtocolError, audit.SeverityWarning, "connect_data_too_big", "")
		c.refuse = "malformed"
		c.close(protocol.CloseMalformed)
		return false
	}
	hook := g.cfg.ConnectHook
	var id auth.Identity
	var tokenID *auth.Identity
	if f.Token != "" || hook == nil || !g.cfg.AllowConnectWithoutToken {
		var err error
		id, err = g.verifier.Verify(f.Token, auth.KindConnect)
		if err != nil {
			c.authFailed(err)
			return false
		}
		c.setIdentity(id) // for the security events below
		if !c.checkRevoked(id) {
			return false
		}
		tokenID = new(auth.Identity)
		*tokenID = id // a copy: id becomes the hook's identity below
	}
	var channels []string
	if hook != nil {
		res, ok := c.runConnectHook(hook, f.Token, tokenID, data)
		if !ok {
			return false
		}
		id, channels = res.Identity, res.Channels
		c.setIdentity(id)
		if !c.checkRevoked(id) {
			return false
		}
	}
	// The token's own jti is single-use whatever identity the hook chose.
	jtis := []auth.Identity{id}
	if tokenID != nil && tokenID.TokenID != "" && tokenID.TokenID != id.TokenID {
		jtis = append(jtis, *tokenID)
	}
	for _, j := range jtis {
		if j.TokenID == "" {
			continue
		}
		if err := g.replay.Consume(c.ctx, j.TokenID, g.verifier.ReplayExpiry(j)); err != nil {
			if errors.Is(err, auth.ErrReplayed) {
				c.event(audit.TypeTokenReplayed, audit.SeverityCritical, "replay", "")
				c.authFailure(auth.ReasonReplayed, "replayed")
				c.close(protocol.CloseUnauthorized)
			} else {
				g.cfg.Logger.Error("replay store", "err", err)
				c.event(audit.TypeAuthFailed, audit.SeverityCritical, "replay_store", "")
				c.authFailure("store", "store")
				c.close(protocol.CloseInternal)
			}
			return false
		}
	}
	if !c.admitUser(id.User) {
		return false
	}
	c.subs = make(map[string]*subscription)
	positions, subs, ok := c.serverSubscribe(channels)
	if !ok {
		return false
	}
	c.connected = true
	g.cfg.Metrics.Accepted()
	c.armExpiry(id.ExpiresAt)
	res, _ := json.Marshal(protocol.ConnectResult{
		Client:   c.id,
		User:     id.User,
		Expires:  id.ExpiresAt.Unix(),
		Ping:     int(g.cfg.PingInterval / time.Second),
		Channels: positions,
		Batch:    f.Batch,
	})
	// From the connect reply on, frames may share a message.
	c.batch.Store(f.Batch)
	c.reply(f.ID, res)
	for name, s := range subs {
		c.subs[name] = s
		p := positions[name]
		s.goLive(nil, broker.Position{Offset: p.Offset, Epoch: p.Epoch})
		c.joinPresence(s)
	}
	return true
}

// runConnectHook calls the hook and checks its result. On failure it has
// closed the connection (4403 for ErrConnectDenied, else 4500).
func (c *conn) runConnectHook(hook ConnectHook, token string, tokenID *auth.Identity, data []byte) (ConnectResult, bool) {
	g := c.g
	req := &ConnectRequest{
		ConnID: c.id, ClientIP: c.ip, Header: c.header, Token: token, Data: data,
	}
	if tokenID != nil {
		cp := *tokenID
		cp.Groups, cp.Perms, cp.Channels = slices.Clone(cp.Groups), slices.Clone(cp.Perms), slices.Clone(cp.Channels)
		req.Identity = &cp
	}
	ctx, cancel := context.WithDeadline(c.ctx, c.connectDeadline)
	defer cancel()
	res, err := callConnectHook(ctx, hook, req)
	fail := func(reason string, err error) (ConnectResult, bool) {
		g.cfg.Logger.Warn("connect hook", "conn", c.id, "reason", reason, "err", logsafe.String(err.Error()))
		c.event(audit.TypeAuthFailed, audit.SeverityWarning, reason, logsafe.Truncate(err.Error(), 256))
		c.authFailure(reason, reason)
		c.close(protocol.CloseInternal)
		return ConnectResult{}, false
	}
	if err != nil && ctx.Err() != nil && c.ctx.Err() == nil {
		// The connect deadline passed while the hook ran.
		c.event(audit.TypeConnectTimeout, audit.SeverityInfo, "connect_hook_deadline", "")
		c.refuse = "connect_timeout"
		c.close(protocol.CloseConnectTimeout)
		return ConnectResult{}, false
	}
	if err != nil {
		if errors.Is(err, ErrConnectDenied) {
			c.event(audit.TypeAuthFailed, audit.SeverityWarning, "connect_denied", logsafe.Truncate(err.Error(), 256))
			c.authFailure("connect_denied", "connect_denied")
			c.close(protocol.CloseForbidden)
			return ConnectResult{}, false
		}
		return fail("connect_hook", err)
	}
	id := &res.Identity
	switch {
	case id.User == "":
		return fail("connect_hook", errors.New("result identity has no User"))
	case id.Tenant != "" && !policy.ValidTenant(id.Tenant):
		return fail("connect_hook", fmt.Errorf("result identity has an invalid Tenant %q", id.Tenant))
	}
	now := g.cfg.Now()
	if id.ExpiresAt.IsZero() {
		if tokenID != nil {
			id.ExpiresAt = tokenID.ExpiresAt
		} else {
			life := g.cfg.MaxConnLifetime
			if life <= 0 {
				life = DefaultMaxConnLifetime
			}
			id.ExpiresAt = now.Add(life)
		}
	}
	if !id.ExpiresAt.Add(g.cfg.TokenLeeway).After(now) {
		return fail("connect_hook", errors.New("result identity already expired"))
	}
	if id.IssuedAt.IsZero() {
		if tokenID != nil {
			id.IssuedAt = tokenID.IssuedAt
		} else {
			id.IssuedAt = now
		}
	}
	if len(res.Channels) > g.maxServerChannels() {
		return fail("connect_hook", fmt.Errorf("%d channels, more than MaxChannelsPerConn", len(res.Channels)))
	}
	return res, true
}

// callConnectHook runs the hook, turning a panic into an error.
func callConnectHook(ctx context.Context, hook ConnectHook, req *ConnectRequest) (res ConnectResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("connect hook panic: %v\n%s", r, debug.Stack())
		}
	}()
	return hook(ctx, req)
}

// serverSubscribe subscribes the connection to the channels a connect hook
// chose, all or none: on any failure it undoes the subscriptions made,
// closes the connection 4500 and returns false. The subscriptions are not
// live yet (pushes are held) and not in c.subs; the caller makes them
// live after sending the connect reply.
func (c *conn) serverSubscribe(channels []string) (map[string]protocol.StreamPosition, map[string]*subscription, bool) {
	if len(channels) == 0 {
		return nil, nil, true
	}
	g := c.g
	tenant := c.identity().Tenant
	positions := make(map[string]protocol.StreamPosition, len(channels))
	subs := make(map[string]*subscription, len(channels))
	fail := func(ch string, err error) (map[string]protocol.StreamPosition, map[string]*subscription, bool) {
		for _, s := range subs {
			g.hub.remove(s)
		}
		g.cfg.Logger.Warn("connect hook channel", "conn", c.id, "channel", logsafe.String(ch), "err", err)
		c.event(audit.TypeChannelDenied, audit.SeverityWarning, "connect_hook_channel", logsafe.Truncate(ch, 256))
		c.refuse = "connect_hook"
		c.close(protocol.CloseInternal)
		return nil, nil, false
	}
	ps := g.policies.Load()
	for _, ch := range channels {
		if _, dup := subs[ch]; dup {
			continue
		}
		ns, err := ps.Lookup(ch)
		if err != nil {
			return fail(ch, err)
		}
		t := ""
		if ns.TenantScoped {
			t = tenant
		}
		_, internal, err := ps.Internal(ch, t)
		if err != nil {
			return fail(ch, err)
		}
		s := &subscription{c: c, channel: internal, presence: ns.Presence, joinLeave: ns.JoinLeave}
		if err := g.hub.add(c.ctx, s); err != nil {
			return fail(ch, err)
		}
		subs[ch] = s
		hist, err := g.broker.History(c.ctx, internal, broker.HistoryRequest{})
		if err != nil {
			g.cfg.Metrics.BrokerError("history")
			return fail(ch, err)
		}
		positions[ch] = protocol.StreamPosition{Offset: hist.Position.Offset, Epoch: hist.Position.Epoch}
		if s.presence {
			if err := g.addPresence(c.ctx, s); err != nil {
				for _, s := range subs {
					s.joinLeave = false // never announced
					c.leavePresence(s)
				}
				return fail(ch, err)
			}
		}
	}
	return positions, subs, true
}
