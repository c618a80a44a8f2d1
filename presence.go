package livegate

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// presenceTimeout bounds one presence store call.
const presenceTimeout = 5 * time.Second

// addPresence records s's connection in its channel's presence and keeps
// it refreshed until removePresence.
func (g *Gateway) addPresence(ctx context.Context, s *subscription) error {
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	if err := g.presence.AddPresence(ctx, s.channel, g.clientInfo(s), g.cfg.PresenceTTL); err != nil {
		g.cfg.Metrics.BrokerError("presence")
		return err
	}
	g.presentMu.Lock()
	g.present[s] = struct{}{}
	g.presentMu.Unlock()
	return nil
}

func (g *Gateway) clientInfo(s *subscription) broker.ClientInfo {
	return broker.ClientInfo{ConnID: s.c.id, User: s.c.identity().User, Node: g.nodeID}
}

// joinPresence announces a new subscription of a join/leave namespace to
// the channel's other subscribers, here and on the other nodes.
func (c *conn) joinPresence(s *subscription) {
	if !s.joinLeave {
		return
	}
	c.g.presenceNotice(s, true)
}

// leavePresence removes s's presence entry and announces the leave.
func (c *conn) leavePresence(s *subscription) {
	if !s.presence {
		return
	}
	g := c.g
	g.presentMu.Lock()
	_, had := g.present[s]
	delete(g.present, s)
	g.presentMu.Unlock()
	if !had {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if err := g.presence.RemovePresence(ctx, s.channel, c.id); err != nil {
		// The entry expires after PresenceTTL anyway.
		g.cfg.Metrics.BrokerError("presence")
		g.cfg.Logger.Warn("presence remove failed", "conn", c.id, "err", err)
	}
	if s.joinLeave {
		g.presenceNotice(s, false)
	}
}

func (g *Gateway) presenceNotice(s *subscription, join bool) {
	user := s.c.identity().User
	name := policy.External(s.channel)
	g.hub.notice(s.channel, protocol.AppendPresencePush(nil, name, join,
		protocol.PresenceClient{Conn: s.c.id, User: user}), s.c)
	typ := ctlLeave
	if join {
		typ = ctlJoin
	}
	if err := g.broadcast(context.Background(), controlMessage{Type: typ, Channel: s.channel, Conn: s.c.id, User: user}); err != nil {
		g.cfg.Logger.Warn("presence notice broadcast failed", "err", err)
	}
}

// presenceLoop refreshes every local presence entry each PresenceTTL/3,
// so entries outlive their TTL exactly as long as their connection.
func (g *Gateway) presenceLoop(ctx context.Context) {
	defer close(g.presenceDone)
	t := time.NewTicker(g.cfg.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.refreshPresence(ctx)
		}
	}
}

func (g *Gateway) refreshPresence(ctx context.Context) {
	g.presentMu.Lock()
	subs := make([]*subscription, 0, len(g.present))
	for s := range g.present {
		subs = append(subs, s)
	}
	g.presentMu.Unlock()
	for _, s := range subs {
		if ctx.Err() != nil {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, presenceTimeout)
		err := g.presence.AddPresence(cctx, s.channel, g.clientInfo(s), g.cfg.PresenceTTL)
		cancel()
		if err != nil {
			g.cfg.Metrics.BrokerError("presence")
			g.cfg.Logger.Warn("presence refresh failed", "err", err)
			return // try again next round
		}
	}
	// A subscription removed while we refreshed may have been re-added:
	// remove those entries again.
	g.presentMu.Lock()
	var gone []*subscription
	for _, s := range subs {
		if _, ok := g.present[s]; !ok {
			gone = append(gone, s)
		}
	}
	g.presentMu.Unlock()
	for _, s := range gone {
		cctx, cancel := context.WithTimeout(ctx, presenceTimeout)
		_ = g.presence.RemovePresence(cctx, s.channel, s.c.id)
		cancel()
	}
}

// errNotPresenceSubscriber is the logged cause of a refused presence
// request.
var errNotPresenceSubscriber = errors.New("not a subscriber of a presence channel")

// handlePresence answers "presence": the connections in a channel this
// connection is subscribed to, in a namespace that records presence.
// Anything else gets the generic forbidden reply of a refused subscribe.
func (c *conn) handlePresence(id uint64, channel string) {
	s := c.subs[channel]
	if s == nil || !s.presence {
		c.event(audit.TypeChannelDenied, audit.SeverityWarning, "presence_denied", channel)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), errNotPresenceSubscriber)
		return
	}
	if ns, err := c.g.policies.Load().Lookup(channel); err != nil || !ns.Presence {
		c.event(audit.TypeChannelDenied, audit.SeverityWarning, "presence_denied", channel)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), errNotPresenceSubscriber)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, presenceTimeout)
	list, err := c.g.presence.Presence(ctx, s.channel)
	cancel()
	if err != nil {
		c.g.cfg.Metrics.BrokerError("presence")
		c.replyError(id, protocol.NewError(protocol.CodeUnavailable), err)
		return
	}
	res := protocol.PresenceResult{Clients: make([]protocol.PresenceClient, len(list))}
	for i, ci := range list {
		res.Clients[i] = protocol.PresenceClient{Conn: ci.ConnID, User: ci.User}
	}
	b, err := json.Marshal(res)
	if err != nil {
		c.replyError(id, protocol.NewError(protocol.CodeInternal), err)
		return
	}
	if replySize(id, b) > c.g.cfg.MaxOutboundMessage {
		c.replyError(id, protocol.NewError(protocol.CodeTooLarge), ErrTooLarge)
		return
	}
	c.reply(id, b)
}
