package livegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/internal/wsconn"
	"github.com/livegate/livegate/metrics"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// conn is one client connection. The reader goroutine (serve) owns the
// identity and subscriptions; a writer goroutine drains queue while it
// has frames (see drain).
type conn struct {
	g       *Gateway
	ws      *websocket.Conn
	id      string
	ip      string
	request policy.RequestAttrs
	// csrfCookie is the CSRF cookie of the handshake request, against
	// which tokens sent over the socket (a live view's join) are checked.
	csrfCookie string
	// header is a clone of the handshake's headers, kept only for a
	// connect hook.
	header http.Header
	// lastBatch is how many frames the connection's last write carried;
	// only its writer (one at a time, see wsconn.Queue) uses it.
	lastBatch int
	// connectDeadline is when the connect timer fires.
	connectDeadline time.Time
	// peerClose is the close code the client sent, 0 if none.
	peerClose atomic.Int32
	queue     *wsconn.Queue
	// out is the socket's batching writer; nil for connections made
	// without one (tests).
	out *wsconn.Writer
	// direct is set when out frames the messages itself (no compression).
	direct bool
	// batch is set when the client asked, at connect, for its frames to be
	// batched into messages separated by "\n".
	batch atomic.Bool
	ctx   context.Context
	stop  context.CancelFunc

	// ident is written by the reader goroutine (connect, refresh) and read
	// by timers and revocations.
	ident   atomic.Pointer[auth.Identity]
	revoked atomic.Bool

	// Owned by the reader goroutine.
	connected   bool
	subs        map[string]*subscription
	limiter     *rate.Limiter
	warnings    int
	lastWarning time.Time
	// handlerLimits holds the per-connection buckets of rate-limited
	// handlers, created on first use.
	handlerLimits map[string]*rate.Limiter
	// userSlot is the per-user connection slot held, released at the end.
	userSlot string
	// views holds the live views joined on this connection (views.go).
	views connViews
	// result is the error code replied to the command being handled, ""
	// while it has none; refuse is why a connection that never completed
	// connect was closed. Both are for metrics.
	result string
	refuse string

	closeCode atomic.Int32
	// timers holds the connect deadline, lifetime, token expiry and next
	// ping under one timer (timers.go).
	timers connTimers
	done   chan struct{}

	// frame is the frame handed to a command goroutine, handled its
	// answer (see runFrame).
	frame   []byte
	handled chan bool
}

func (g *Gateway) newConn(ws *websocket.Conn, ip, origin string) *conn {
	id := fmt.Sprintf("%s-%x", g.idBase, g.nextID.Add(1))
	// The connection's ConnInfo rides on its context, set once here, so
	// Authorizers and Handlers can read it without a per-call allocation.
	ctx, stop := context.WithCancel(withConnInfo(context.Background(), ConnInfo{ID: id, ClientIP: ip}))
	c := &conn{
		g:       g,
		ws:      ws,
		id:      id,
		ip:      ip,
		request: policy.RequestAttrs{IP: ip, Origin: origin},
		queue:   wsconn.NewQueue(g.cfg.SendQueueMessages, g.cfg.SendQueueBytes),
		ctx:     ctx,
		stop:    stop,
		done:    make(chan struct{}),
		handled: make(chan bool),
	}
	if g.cfg.CommandRate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(g.cfg.CommandRate), g.cfg.CommandBurst)
	}
	if ws != nil {
		ws.SetReadLimit(g.cfg.MaxInboundFrame)
		c.queue.SetStarter(c.startDrain)
	}
	return c
}

// serve runs the connection until it closes.
func (c *conn) serve() {
	defer c.cleanup()
	c.connectDeadline = time.Now().Add(c.g.cfg.ConnectTimeout)
	c.setTimer(timerConnect, c.g.cfg.ConnectTimeout)
	c.setTimer(timerPing, c.g.cfg.PingInterval)
	if d := c.g.cfg.MaxConnLifetime; d > 0 {
		c.setTimer(timerLifetime, d)
	}

	for {
		typ, frame, err := c.ws.Read(c.ctx)
		if err != nil {
			c.readFailed(err)
			return
		}
		if typ != websocket.MessageText {
			c.protocolError("binary frame")
			return
		}
		wasConnected := c.connected
		if !runFrame(c, frame) {
			return
		}
		if !wasConnected && c.connected {
			c.clearTimer(timerConnect)
		}
	}
}

// handleFrame runs one text frame through the pipeline: strict decoding,
// the connect gate, the rate limit and the method's checks. It returns
// false when the connection was closed.
func (c *conn) handleFrame(frame []byte) bool {
	if err := c.g.jsonLimits.Check(frame); err != nil {
		// Bounded work before anything is materialised: nesting, keys,
		// array and string lengths, token count, duplicate envelope keys.
		c.event(audit.TypeProtocolError, audit.SeverityWarning, "json_limits", err.Error())
		c.refuse = "json_limits"
		c.close(protocol.CloseMalformed)
		return false
	}
	f, err := protocol.DecodeClientFrame(frame)
	if err != nil {
		c.protocolError(err.Error())
		return false
	}
	if !c.connected {
		if f.Method != protocol.MethodConnect {
			c.event(audit.TypeAuthFailed, audit.SeverityWarning, "not_connected", f.Method)
			c.refuse = "not_connected"
			c.close(protocol.CloseUnauthorized)
			return false
		}
		return c.counted(f.Method, c.handleConnect(f))
	}
	if !c.live() {
		return c.counted(f.Method, false)
	}
	if run, closed := c.allow(f); !run {
		return c.counted(f.Method, !closed)
	}
	return c.counted(f.Method, c.dispatch(f))
}

// counted counts the command just handled by method and result: the code
// of its error reply, closed when the connection was closed (open is
// false), else ok. It returns open.
func (c *conn) counted(method string, open bool) bool {
	result := c.result
	c.result = ""
	switch {
	case !open:
		result = metrics.ResultClosed
	case result == "":
		result = metrics.ResultOK
	}
	c.g.cfg.Metrics.Command(method, result)
	return open
}

func (c *conn) readFailed(err error) {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// The peer closed, or our close handshake completed.
		c.peerClose.Store(int32(ce.Code))
	case websocket.CloseStatus(err) == -1 && errors.Is(err, context.Canceled):
	default:
		if isTooBig(err) {
			c.event(audit.TypeFrameTooBig, audit.SeverityWarning, "frame_too_big", "")
			c.refuse = "frame_too_big"
			c.closeCode.CompareAndSwap(0, int32(protocol.CloseTooBig))
		}
	}
	c.close(0)
}

func isTooBig(err error) bool {
	return errors.Is(err, websocket.ErrMessageTooBig) || websocket.CloseStatus(err) == websocket.StatusMessageTooBig
}

// warningMemory is how long rate-limit warnings are remembered: a
// connection closes 4429 after MaxRateWarnings warnings each less than this
// apart.
const warningMemory = 10 * time.Second

// allow applies the per-connection command rate limit. It reports
// whether the command may run; when it may not, it has answered
// rate_limited or, past MaxRateWarnings, closed the connection (closed).
func (c *conn) allow(f protocol.ClientFrame) (run, closed bool) {
	if c.limiter == nil || c.limiter.AllowN(c.g.cfg.Now(), 1) {
		return true, false
	}
	return false, c.warn(f.ID, "command_rate", f.Method)
}

// warn answers a command refused by a rate limit with rate_limited and
// counts a warning; past MaxRateWarnings warnings, each less than
// warningMemory apart, it closes the connection 4429 and returns true.
func (c *conn) warn(id uint64, reason, detail string) (closed bool) {
	c.g.cfg.Metrics.RateLimited(rateLimitKind(reason))
	now := c.g.cfg.Now()
	if now.Sub(c.lastWarning) > warningMemory {
		c.warnings = 0 // a client that calmed down starts afresh
	}
	c.lastWarning = now
	c.warnings++
	if c.warnings > c.g.cfg.MaxRateWarnings {
		c.event(audit.TypeRateLimitKick, audit.SeverityWarning, reason, detail)
		c.close(protocol.CloseRateLimited)
		return true
	}
	c.event(audit.TypeRateLimited, audit.SeverityInfo, reason, detail)
	c.replyError(id, protocol.NewError(protocol.CodeRateLimited), nil)
	return false
}

// rateLimitKind is the metrics kind of a warn reason.
func rateLimitKind(reason string) string {
	switch reason {
	case "command_rate":
		return "command"
	case "handler_rate":
		return "handler"
	case "view_rate":
		return "view"
	}
	return reason
}

// allowHandler applies a handler's own per-connection rate limit.
func (c *conn) allowHandler(rh *registeredHandler) bool {
	if rh.perUser != nil {
		if res := allow(c.ctx, rh.perUser, c.identity().Tenant+"/"+c.identity().User, c.g.cfg.Now()); !res.Allowed {
			return false
		}
	}
	if rh.rate <= 0 {
		return true
	}
	l := c.handlerLimits[rh.name]
	if l == nil {
		if c.handlerLimits == nil {
			c.handlerLimits = make(map[string]*rate.Limiter)
		}
		l = rate.NewLimiter(rate.Limit(rh.rate), rh.burst)
		c.handlerLimits[rh.name] = l
	}
	return l.AllowN(c.g.cfg.Now(), 1)
}

// dispatch runs one command after connect. It returns false when the
// connection was closed.
func (c *conn) dispatch(f protocol.ClientFrame) bool {
	switch f.Method {
	case protocol.MethodSubscribe:
		c.handleSubscribe(f.ID, protocol.SubscribeParams{Channel: f.Channel, Token: f.Token, Since: f.Since})
	case protocol.MethodUnsubscribe:
		c.handleUnsubscribe(f.ID, protocol.UnsubscribeParams{Channel: f.Channel})
	case protocol.MethodEvent:
		return c.handleEvent(f.ID, protocol.EventParams{Name: f.Name, Payload: f.Payload})
	case protocol.MethodPublish:
		c.handlePublish(f.ID, protocol.PublishParams{Channel: f.Channel, Data: f.Data})
	case protocol.MethodRefresh:
		return c.handleRefresh(f.ID, protocol.RefreshParams{Token: f.Token})
	case protocol.MethodJoin:
		c.handleJoin(f.ID, protocol.JoinParams{View: f.View, Session: f.Session, CSRF: f.CSRF, Params: f.Params})
	case protocol.MethodView:
		return c.handleView(f.ID, protocol.ViewParams{Ref: f.Ref, Name: f.Name, Payload: f.Payload, CSRF: f.CSRF})
	case protocol.MethodLeave:
		c.handleLeave(f.ID, protocol.LeaveParams{Ref: f.Ref})
	case protocol.MethodPresence:
		c.handlePresence(f.ID, f.Channel)
	case protocol.MethodConnect:
		c.protocolError("second connect")
		return false
	}
	return true
}

// checkRevoked refuses an identity whose user, session or token was
// revoked, closing 4403 (or 4500 when the store fails: fail closed). It
// reports whether the identity may proceed.
func (c *conn) checkRevoked(id auth.Identity) bool {
	revoked, err := c.g.revocations.Revoked(c.ctx, id)
	switch {
	case err != nil:
		c.g.cfg.Logger.Error("revocation store", "err", err)
		c.event(audit.TypeAuthFailed, audit.SeverityCritical, "revocation_store", "")
		c.authFailure("store", "store")
		c.close(protocol.CloseInternal)
		return false
	case revoked:
		c.event(audit.TypeRevoked, audit.SeverityWarning, "revoked_token", "")
		c.authFailure(auth.ReasonRevoked, "revoked")
		c.close(protocol.CloseForbidden)
		return false
	}
	return true
}

func (c *conn) authFailed(err error) {
	reason := "invalid"
	var te *auth.TokenError
	if errors.As(err, &te) {
		reason = te.Reason
	}
	c.event(audit.TypeAuthFailed, audit.SeverityWarning, reason, "")
	c.authFailure(reason, "token")
	c.close(protocol.CloseUnauthorized)
}

// authFailure counts a connect token (before connect) or refresh token
// (after) refused for reason; before connect, refuse is the reason the
// connection counts as refused.
func (c *conn) authFailure(reason, refuse string) {
	if c.connected {
		c.g.cfg.Metrics.AuthFailed(protocol.MethodRefresh, reason)
		return
	}
	c.refuse = refuse
	c.g.cfg.Metrics.AuthFailed(protocol.MethodConnect, reason)
}

// armExpiry closes the connection 4409 after its token expires (exp plus
// TokenLeeway), with a random delay of up to ExpiryJitter so that connections opened together
// do not all reconnect at once. Commands are refused from the expiry on
// (see live).
func (c *conn) armExpiry(exp time.Time) {
	d := exp.Add(c.g.cfg.TokenLeeway).Sub(c.g.cfg.Now())
	if j := c.g.cfg.ExpiryJitter; j > 0 {
		d += rand.N(j)
	}
	c.setTimer(timerExpiry, d)
}

// live checks, before every command, that the connection's token has not
// expired and that it was not revoked. It closes the connection (4409 or
// 4403) and returns false otherwise.
func (c *conn) live() bool {
	if c.revoked.Load() {
		c.close(protocol.CloseForbidden)
		return false
	}
	if !c.g.cfg.Now().Before(c.identity().ExpiresAt.Add(c.g.cfg.TokenLeeway)) {
		c.event(audit.TypeTokenExpired, audit.SeverityInfo, "expired_command", "")
		c.close(protocol.CloseTokenExpired)
		return false
	}
	return true
}

// revoke closes the connection 4403 because its user, session or token
// was revoked.
func (c *conn) revoke(reason string) {
	if c.revoked.Swap(true) {
		return
	}
	c.event(audit.TypeRevoked, audit.SeverityWarning, reason, "")
	c.closeNow(protocol.CloseForbidden)
}

func (c *conn) handleRefresh(id uint64, p protocol.RefreshParams) bool {
	cur := c.identity()
	nid, err := c.g.verifier.Verify(p.Token, auth.KindConnect)
	if err != nil {
		c.event(audit.TypeRefreshFailed, audit.SeverityWarning, auth.ReasonOf(err), "")
		c.authFailure(tokenErrReason(err), "")
		c.replyError(id, protocol.NewError(protocol.CodeUnauthorized), err)
		return true
	}
	if nid.User != cur.User || nid.Session != cur.Session || nid.Tenant != cur.Tenant {
		// Another user's (or session's) token on this connection: an
		// attempt to take it over. Refuse and close.
		c.event(audit.TypeRefreshFailed, audit.SeverityCritical, "identity_mismatch", nid.User)
		c.authFailure("identity_mismatch", "")
		c.close(protocol.CloseForbidden)
		return false
	}
	if !c.checkRevoked(nid) {
		return false
	}
	if nid.TokenID != "" {
		if err := c.g.replay.Consume(c.ctx, nid.TokenID, c.g.verifier.ReplayExpiry(nid)); errors.Is(err, auth.ErrReplayed) {
			c.event(audit.TypeTokenReplayed, audit.SeverityCritical, "replay_refresh", "")
			c.authFailure(auth.ReasonReplayed, "")
			c.replyError(id, protocol.NewError(protocol.CodeUnauthorized), err)
			return true
		} else if err != nil {
			c.g.cfg.Logger.Error("replay store", "err", err)
			c.event(audit.TypeRefreshFailed, audit.SeverityCritical, "replay_store", "")
			c.authFailure("store", "")
			c.close(protocol.CloseInternal)
			return false
		}
	}
	c.setIdentity(nid)
	// A revocation of the new token that ran between the check above and
	// setIdentity did not see this connection: check once more.
	if !c.checkRevoked(nid) {
		return false
	}
	c.armExpiry(nid.ExpiresAt)
	res, _ := json.Marshal(protocol.RefreshResult{Expires: nid.ExpiresAt.Unix()})
	c.reply(id, res)
	return true
}

// identity returns the connection's current identity (zero before connect).
func (c *conn) identity() auth.Identity {
	if id := c.ident.Load(); id != nil {
		return *id
	}
	return auth.Identity{}
}

func (c *conn) setIdentity(id auth.Identity) { c.ident.Store(&id) }

func (c *conn) subject() policy.Subject {
	id := c.identity()
	return policy.Subject{
		User: id.User, Session: id.Session, Tenant: id.Tenant,
		Groups: id.Groups, Perms: id.Perms,
	}
}

// subscriptionToken checks a subscription token: signed, kind
// "subscribe", for this connection's user (and tenant), listing exactly
// this channel, and not revoked. It returns a reason for the audit trail
// when the token does not grant the channel.
func (c *conn) subscriptionToken(token, channel string) (granted bool, reason string) {
	if token == "" {
		return false, ""
	}
	m := c.g.cfg.Metrics
	tid, err := c.g.verifier.Verify(token, auth.KindSubscribe)
	if err != nil {
		m.AuthFailed(protocol.MethodSubscribe, tokenErrReason(err))
		return false, "sub_token_" + auth.ReasonOf(err)
	}
	cur := c.identity()
	if tid.User != cur.User || tid.Tenant != cur.Tenant {
		m.AuthFailed(protocol.MethodSubscribe, "other_user")
		return false, "sub_token_other_user"
	}
	if !slices.Contains(tid.Channels, channel) {
		m.AuthFailed(protocol.MethodSubscribe, "other_channel")
		return false, "sub_token_other_channel"
	}
	if revoked, err := c.g.revocations.Revoked(c.ctx, tid); err != nil || revoked {
		m.AuthFailed(protocol.MethodSubscribe, auth.ReasonRevoked)
		return false, "sub_token_revoked"
	}
	return true, ""
}

// tokenErrReason is the auth.Reason* of a token error, or "invalid".
func tokenErrReason(err error) string {
	if r := auth.ReasonOf(err); r != "" {
		return r
	}
	return "invalid"
}

func (c *conn) handleSubscribe(id uint64, p protocol.SubscribeParams) {
	granted, tokenReason := c.subscriptionToken(p.Token, p.Channel)
	ns, internal, err := c.g.policies.Load().Authorize(policy.OpSubscribe, policy.Check{
		Subject: c.subject(), Channel: p.Channel, Request: c.request, TokenGranted: granted,
	})
	if err == nil && tokenReason != "" {
		// A bad token is refused even where the namespace would not need one.
		err = policy.ErrDenied
	}
	if err == nil {
		if az := c.g.authorizer(policy.Namespace(p.Channel)); az != nil {
			if aerr := az(c.ctx, c.identity(), p.Channel); aerr != nil {
				tokenReason = "authorizer"
				err = fmt.Errorf("%w: %w", policy.ErrDenied, aerr)
			}
		}
	}
	if err != nil {
		if tokenReason != "" {
			c.event(audit.TypeChannelDenied, audit.SeverityWarning, tokenReason, p.Channel)
			c.replyError(id, protocol.NewError(protocol.CodeForbidden), err)
			return
		}
		c.event(audit.TypeChannelDenied, audit.SeverityWarning, policyReason(err), p.Channel)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), err)
		return
	}
	if _, dup := c.subs[p.Channel]; dup {
		c.replyError(id, protocol.NewError(protocol.CodeBadRequest), errors.New("already subscribed"))
		return
	}
	if len(c.subs) >= c.g.cfg.MaxChannelsPerConn {
		c.event(audit.TypeChannelDenied, audit.SeverityWarning, "channel_limit", p.Channel)
		c.replyError(id, protocol.NewError(protocol.CodeLimitExceeded), nil)
		return
	}
	s := &subscription{c: c, channel: internal, presence: ns.Presence, joinLeave: ns.JoinLeave}
	if err := c.g.hub.add(c.ctx, s); err != nil {
		c.replyError(id, protocol.NewError(protocol.CodeUnavailable), err)
		return
	}
	req := broker.HistoryRequest{}
	if p.Since != nil {
		req.Since = &broker.Position{Offset: p.Since.Offset, Epoch: p.Since.Epoch}
	}
	hist, err := c.g.broker.History(c.ctx, internal, req)
	if err != nil {
		c.g.cfg.Metrics.BrokerError("history")
		c.g.hub.remove(s)
		c.replyError(id, protocol.NewError(protocol.CodeUnavailable), err)
		return
	}
	res := protocol.SubscribeResult{Offset: hist.Position.Offset, Epoch: hist.Position.Epoch}
	if p.Since != nil {
		recovered := hist.Complete
		res.Recovered = &recovered
		if len(hist.Publications) > 0 {
			res.Publications = make([]protocol.Publication, len(hist.Publications))
			for i, pub := range hist.Publications {
				res.Publications[i] = protocol.Publication{Offset: pub.Offset, Data: pub.Data}
			}
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		c.g.hub.remove(s)
		c.replyError(id, protocol.NewError(protocol.CodeInternal), err)
		return
	}
	if replySize(id, b) > c.g.cfg.MaxOutboundMessage && len(res.Publications) > 0 {
		// Too much to recover in one reply: say so rather than drop silently.
		f := false
		res.Recovered, res.Publications = &f, nil
		b, _ = json.Marshal(res)
	}
	if s.presence {
		if err := c.g.addPresence(c.ctx, s); err != nil {
			c.g.hub.remove(s)
			c.replyError(id, protocol.NewError(protocol.CodeUnavailable), err)
			return
		}
	}
	c.subs[p.Channel] = s
	s.goLive(protocol.AppendReply(nil, id, b), hist.Position)
	c.joinPresence(s)
}

func (c *conn) handleUnsubscribe(id uint64, p protocol.UnsubscribeParams) {
	s, ok := c.subs[p.Channel]
	if !ok {
		c.replyError(id, protocol.NewError(protocol.CodeBadRequest), errors.New("not subscribed"))
		return
	}
	delete(c.subs, p.Channel)
	c.g.hub.remove(s)
	c.leavePresence(s)
	c.reply(id, []byte("{}"))
}

func (c *conn) handlePublish(id uint64, p protocol.PublishParams) {
	ns, internal, err := c.g.policies.Load().Authorize(policy.OpPublish, policy.Check{
		Subject: c.subject(), Channel: p.Channel, Request: c.request,
	})
	if err != nil {
		c.event(audit.TypePublishDenied, audit.SeverityWarning, policyReason(err), p.Channel)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), err)
		return
	}
	if len(p.Data) == 0 {
		c.replyError(id, protocol.NewError(protocol.CodeBadRequest), errors.New("no data"))
		return
	}
	// p.Data aliases the read buffer, which is not reused; it is safe to keep.
	res, err := c.g.publish(c.ctx, internal, p.Data, ns)
	switch {
	case errors.Is(err, ErrTooLarge):
		c.replyError(id, protocol.NewError(protocol.CodeTooLarge), err)
		return
	case err != nil:
		c.replyError(id, protocol.NewError(protocol.CodeUnavailable), err)
		return
	}
	b, _ := json.Marshal(protocol.PublishResult{Offset: res.Offset, Epoch: res.Epoch})
	c.reply(id, b)
}

// notAvailable is the single reply for unknown, guarded and forbidden
// event names: the bytes differ only by id.
var notAvailable = protocol.NewError(protocol.CodeNotAvailable)

// handleEvent runs an event; it returns false when the connection was
// closed.
func (c *conn) handleEvent(id uint64, p protocol.EventParams) bool {
	var rh *registeredHandler
	if policy.ValidEventName(p.Name) {
		rh = c.g.handler(p.Name)
	}
	if rh == nil {
		c.event(audit.TypeEventDenied, audit.SeverityWarning, "unknown_event", p.Name)
		c.replyError(id, notAvailable, nil)
		return true
	}
	if rh.guard != nil {
		if err := rh.guard.Allow(c.subject(), c.request); err != nil {
			// Checked before the payload is decoded; the reply is the one an
			// unknown name gets, so it does not reveal the handler exists.
			c.event(audit.TypeEventDenied, audit.SeverityWarning, "forbidden_event", p.Name)
			c.replyError(id, notAvailable, nil)
			return true
		}
	}
	if !c.allowHandler(rh) {
		return !c.warn(id, "handler_rate", p.Name)
	}
	req := &Request{ConnID: c.id, ClientIP: c.ip, Identity: c.identity(), Event: p.Name, Payload: p.Payload}
	result, err := rh.call(c.ctx, req)
	if err != nil {
		var pe *panicError
		if errors.As(err, &pe) {
			c.event(audit.TypeHandlerPanic, audit.SeverityCritical, "panic", p.Name)
			c.g.cfg.Logger.Error("handler panic", "event", p.Name, "conn", c.id,
				"panic", logsafe.Truncate(fmt.Sprint(pe.value), 1024), "stack", string(pe.stack))
		} else {
			c.g.cfg.Logger.Debug("handler error", "event", p.Name, "conn", c.id, "err", logsafe.String(err.Error()))
		}
		c.replyError(id, clientError(err), err)
		return true
	}
	b, err := json.Marshal(result)
	if err != nil {
		c.g.cfg.Logger.Error("handler result not encodable", "event", p.Name, "err", err)
		c.replyError(id, protocol.NewError(protocol.CodeInternal), err)
		return true
	}
	if replySize(id, b) > c.g.cfg.MaxOutboundMessage {
		c.replyError(id, protocol.NewError(protocol.CodeTooLarge), ErrTooLarge)
		return true
	}
	c.reply(id, b)
	return true
}

// replySize is the encoded size of a successful reply carrying result.
func replySize(id uint64, result []byte) int {
	var digits [20]byte
	return len(`{"id":,"result":}`) + len(strconv.AppendUint(digits[:0], id, 10)) + len(result)
}

func policyReason(err error) string {
	switch {
	case errors.Is(err, policy.ErrInvalidChannel):
		return "invalid_channel"
	case errors.Is(err, policy.ErrUnknownNamespace):
		return "unknown_namespace"
	case errors.Is(err, policy.ErrNoTenant):
		return "no_tenant"
	default:
		return "denied"
	}
}

func (c *conn) reply(id uint64, result []byte) {
	c.send(protocol.AppendReply(make([]byte, 0, len(result)+24), id, result))
}

// replyError sends e; in debug mode cause's text is added as detail. It
// runs on the reader goroutine, as part of a command.
func (c *conn) replyError(id uint64, e *protocol.Error, cause error) {
	c.result = e.Code
	if c.g.cfg.Debug && cause != nil {
		e = &protocol.Error{Code: e.Code, Message: e.Message, Detail: cause.Error()}
	}
	c.send(protocol.AppendErrorReply(nil, id, e))
}

// send queues a frame and reports whether it did; a full queue closes
// the connection as a slow consumer.
func (c *conn) send(frame []byte) bool {
	err := c.queue.Push(frame)
	if errors.Is(err, wsconn.ErrFull) {
		c.g.cfg.Metrics.Dropped(metrics.DropQueueFull)
		c.closeSlow()
	}
	return err == nil
}

func (c *conn) closeSlow() {
	c.event(audit.TypeSlowConsumer, audit.SeverityWarning, "queue_full", "")
	c.closeNow(protocol.CloseSlowConsumer)
}

func (c *conn) protocolError(detail string) {
	c.event(audit.TypeProtocolError, audit.SeverityWarning, "malformed", detail)
	c.refuse = "malformed"
	c.close(protocol.CloseMalformed)
}

// ping runs on the connection's timer: it pings and waits for the pong, aborting a
// connection that does not answer within PongTimeout.
func (c *conn) ping() {
	if c.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.g.cfg.PongTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		if c.ctx.Err() == nil {
			c.g.cfg.Logger.Debug("ping failed", "conn", c.id, "err", err)
			c.abort()
		}
		return
	}
	c.setTimer(timerPing, c.g.cfg.PingInterval)
}

// close starts closing the connection with code (0 keeps an earlier
// code, else 4500): queued frames are flushed, then the close frame is
// sent. It never blocks.
func (c *conn) close(code protocol.CloseCode) {
	if code != 0 {
		c.closeCode.CompareAndSwap(0, int32(code))
	}
	c.queue.Seal()
}

// closeNow closes with code, dropping queued frames.
func (c *conn) closeNow(code protocol.CloseCode) {
	c.closeCode.CompareAndSwap(0, int32(code))
	c.queue.Close()
}

// abort drops the connection without a close handshake.
func (c *conn) abort() {
	c.queue.Close()
	c.stop()
	_ = c.ws.CloseNow()
}

func (c *conn) cleanup() {
	defer func() {
		if r := recover(); r != nil {
			c.g.cfg.Logger.Error("connection cleanup panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	c.close(0)
	if !c.connected {
		c.g.cfg.Metrics.ConnectRefused(c.refusal())
	}
	for _, s := range c.subs {
		c.g.hub.remove(s)
		c.leavePresence(s)
	}
	c.subs = nil
	c.closeViews()
	if c.userSlot != "" {
		_ = c.g.limits.Load().conns.Release(context.Background(), c.userSlot)
	}
	c.stopTimers()
	<-c.done
	if c.connected && c.g.cfg.OnDisconnect != nil {
		info := c.disconnectInfo()
		go c.g.cfg.OnDisconnect(info)
	}
}

// disconnectInfo describes the closed connection for OnDisconnect.
func (c *conn) disconnectInfo() DisconnectInfo {
	info := DisconnectInfo{ConnID: c.id, ClientIP: c.ip, Identity: c.identity()}
	switch code, peer := protocol.CloseCode(c.closeCode.Load()), c.peerClose.Load(); {
	case code != 0:
		info.Code, info.Reason = int(code), code.String()
	case peer > 0:
		info.Code, info.Reason = int(peer), "closed by client"
	default:
		info.Code, info.Reason = int(protocol.CloseInternal), "connection lost"
	}
	return info
}

// refusal is why a connection that never completed connect ended.
func (c *conn) refusal() string {
	if c.refuse != "" {
		return c.refuse
	}
	switch protocol.CloseCode(c.closeCode.Load()) {
	case protocol.CloseConnectTimeout:
		return "connect_timeout"
	case protocol.CloseGoingAway:
		return "going_away"
	}
	return "abandoned"
}

func (c *conn) event(typ string, sev audit.Severity, reason, detail string) {
	id := c.identity()
	c.g.securityEvent(c.ctx, audit.Event{
		Type: typ, Severity: sev, Reason: reason, Detail: detail,
		User: id.User, Session: id.Session, Tenant: id.Tenant,
		IP: c.ip, ConnID: c.id,
	})
}
