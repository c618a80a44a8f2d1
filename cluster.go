package livegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// Control message types carried through broker.Control.
const (
	ctlRevokeUser    = "revoke_user"
	ctlRevokeSession = "revoke_session"
	ctlRevokeToken   = "revoke_token"
	ctlDisconnect    = "disconnect"
	ctlJoin          = "join"
	ctlLeave         = "leave"
)

// controlMessage is a node-to-node message: {"node":"<NodeID>","type":…}
// with the fields the type uses. Revocations name the user, session or
// token; disconnect carries a DisconnectFilter's fields; join and leave
// carry the internal channel, the connection and its user.
type controlMessage struct {
	Node    string `json:"node"`
	Type    string `json:"type"`
	User    string `json:"user,omitempty"`
	Session string `json:"session,omitempty"`
	Token   string `json:"token,omitempty"`
	Channel string `json:"channel,omitempty"`
	Conn    string `json:"conn,omitempty"`
}

// controlTimeout bounds one control broadcast.
const controlTimeout = 5 * time.Second

// maxControlMessage bounds an accepted control message.
const maxControlMessage = 64 << 10

// broadcast sends m to the other nodes when the broker connects several.
func (g *Gateway) broadcast(ctx context.Context, m controlMessage) error {
	if g.control == nil {
		return nil
	}
	m.Node = g.nodeID
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("livegate: control %s: %w", m.Type, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	defer cancel()
	if err := g.control.PublishControl(ctx, b); err != nil {
		g.cfg.Metrics.BrokerError("control")
		return fmt.Errorf("livegate: control %s: %w: %w", m.Type, ErrBrokerUnavailable, err)
	}
	return nil
}

// handleControl receives the cluster's control messages. Messages of this
// node are ignored; malformed ones are logged and ignored.
func (g *Gateway) handleControl(msg []byte) {
	bad := func(why string) {
		g.cfg.Logger.Warn("malformed control message ignored", "reason", why, "size", len(msg))
	}
	if len(msg) > maxControlMessage {
		bad("too large")
		return
	}
	var m controlMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		bad(logsafe.String(err.Error()))
		return
	}
	if m.Node == "" {
		bad("no node")
		return
	}
	if m.Node == g.nodeID {
		return
	}
	switch m.Type {
	case ctlRevokeUser, ctlRevokeSession, ctlRevokeToken:
		f := DisconnectFilter{User: m.User, Session: m.Session, TokenID: m.Token}
		if countSet(f.User, f.Session, f.TokenID) != 1 {
			bad("revocation without exactly one id")
			return
		}
		g.closeMatching(revokeReason(m.Type), f.match)
	case ctlDisconnect:
		f := DisconnectFilter{User: m.User, Session: m.Session, TokenID: m.Token}
		if f.empty() {
			bad("disconnect without a filter")
			return
		}
		g.closeMatching("disconnect", f.match)
	case ctlJoin, ctlLeave:
		if m.Channel == "" || m.Conn == "" {
			bad("presence notice without channel or conn")
			return
		}
		g.hub.notice(m.Channel, protocol.AppendPresencePush(nil, policy.External(m.Channel), m.Type == ctlJoin,
			protocol.PresenceClient{Conn: m.Conn, User: m.User}), nil)
	default:
		bad("unknown type")
	}
}

func revokeReason(typ string) string {
	switch typ {
	case ctlRevokeUser:
		return "user_revoked"
	case ctlRevokeSession:
		return "session_revoked"
	}
	return "token_revoked"
}

// DisconnectFilter selects connections by identity. At least one field
// must be set; every set field must match.
type DisconnectFilter struct {
	User    string
	Session string
	// TokenID is the "jti" of the token the connection opened with or last
	// refreshed with.
	TokenID string
}

func (f DisconnectFilter) empty() bool { return f.User == "" && f.Session == "" && f.TokenID == "" }

func (f DisconnectFilter) match(id auth.Identity) bool {
	return (f.User == "" || id.User == f.User) &&
		(f.Session == "" || id.Session == f.Session) &&
		(f.TokenID == "" || id.TokenID == f.TokenID)
}

// Disconnect closes the connections matching f with 4403, on this node and,
// when the broker implements broker.Control, on every node. Unlike the
// Revoke methods it records nothing: the clients may connect again with a
// valid token. It returns how many connections it closed on this node; an
// error wrapping ErrBrokerUnavailable means the other nodes may not have
// been told.
func (g *Gateway) Disconnect(ctx context.Context, f DisconnectFilter) (int, error) {
	if f.empty() {
		return 0, ErrEmptyFilter
	}
	n := g.closeMatching("disconnect", f.match)
	return n, g.broadcast(ctx, controlMessage{Type: ctlDisconnect, User: f.User, Session: f.Session, Token: f.TokenID})
}

// resolveChannel maps a channel as the server names it to its namespace
// and the broker's channel name. Channels of tenant-scoped namespaces are
// named in their internal form "ns:@tenant/name" (as Channels lists them).
func (g *Gateway) resolveChannel(channel string) (policy.NamespaceConfig, string, error) {
	tenant := policy.InternalTenant(channel)
	ns, internal, err := g.policies.Load().Internal(policy.External(channel), tenant)
	switch {
	case errors.Is(err, policy.ErrInvalidChannel):
		return ns, "", ErrInvalidChannel
	case errors.Is(err, policy.ErrUnknownNamespace):
		return ns, "", ErrUnknownNamespace
	case err != nil:
		return ns, "", fmt.Errorf("%w: %w", ErrTenant, err)
	case internal != channel:
		return ns, "", ErrInvalidChannel
	}
	return ns, internal, nil
}

// History returns channel's current stream position and, when since is
// not nil, up to limit publications after it (0: as many as the history
// keeps). Name a channel of a tenant-scoped namespace as
// "ns:@tenant/name".
func (g *Gateway) History(ctx context.Context, channel string, since *broker.Position, limit int) (broker.HistoryResult, error) {
	if limit < 0 {
		return broker.HistoryResult{}, errors.New("livegate: history: negative limit")
	}
	_, internal, err := g.resolveChannel(channel)
	if err != nil {
		return broker.HistoryResult{}, err
	}
	res, err := g.broker.History(ctx, internal, broker.HistoryRequest{Since: since, Limit: limit})
	if err != nil {
		g.cfg.Metrics.BrokerError("history")
		return broker.HistoryResult{}, fmt.Errorf("livegate: history: %w: %w", ErrBrokerUnavailable, err)
	}
	return res, nil
}

// Presence returns the connections present in channel on every node
// sharing the presence store. It returns ErrPresenceOff when the channel's
// namespace does not record presence. Name a channel of a tenant-scoped
// namespace as "ns:@tenant/name".
func (g *Gateway) Presence(ctx context.Context, channel string) ([]broker.ClientInfo, error) {
	ns, internal, err := g.resolveChannel(channel)
	if err != nil {
		return nil, err
	}
	if !ns.Presence {
		return nil, ErrPresenceOff
	}
	list, err := g.presence.Presence(ctx, internal)
	if err != nil {
		return nil, fmt.Errorf("livegate: presence: %w", err)
	}
	return list, nil
}

// ChannelInfo is a channel with subscribers on this node.
type ChannelInfo struct {
	// Channel is the broker's name of the channel: the client's name, or
	// "ns:@tenant/name" in tenant-scoped namespaces.
	Channel string
	// Subscribers is the number of local subscriptions that are live: their
	// subscribe was answered, and every publication from then on reaches
	// them. A subscribe still reading history does not count yet.
	Subscribers int
}

// Channels returns this node's channels that have local subscribers and
// start with prefix ("" for all), sorted by name.
func (g *Gateway) Channels(prefix string) []ChannelInfo {
	out := g.hub.channelCounts(prefix)
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// SetNamespaces replaces the channel namespaces without a restart. The new
// set is validated first; an invalid one is refused and the current one
// stays in force. Open connections and their subscriptions stay, even in
// namespaces that were removed; every subscribe, publish and presence
// request from now on is checked against the new set.
func (g *Gateway) SetNamespaces(ns []policy.NamespaceConfig) error {
	g.nsMu.Lock()
	defer g.nsMu.Unlock()
	ps, err := newPolicySet(ns, g.cfg.Roles)
	if err != nil {
		return err
	}
	g.policies.Store(ps)
	return nil
}
