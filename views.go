package livegate

import (
	"errors"
	"fmt"
	"sync"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/protocol"
)

// connViews holds a connection's joined live views by ref. Its mutex is a
// leaf lock: the instances' hooks take it (from any goroutine, with their
// instance locked), and nothing calls into an instance while holding it.
type connViews struct {
	mu    sync.Mutex
	slots map[string]*viewSlot
}

// viewSlot is one joined view. While the reader goroutine prepares a reply
// for it (the join, or an event), patches pushed by server-initiated
// updates are held, then sent around the reply in version order, so the
// client always receives version n before n+1.
type viewSlot struct {
	inst     *live.Instance // nil until the join returns
	ref      string
	replying bool
	held     []protocol.Patch
	// closedCode is set when the instance closed itself while a reply was
	// being prepared; the view_closed frame follows the reply.
	closedCode string
	gone       bool
}

// maxHeldPatches bounds the patches held while one reply is prepared.
const maxHeldPatches = 256

func (v *connViews) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.slots)
}

// begin returns the slot of ref, marked as preparing a reply, or nil.
func (v *connViews) begin(ref string) *viewSlot {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.slots[ref]
	if s != nil {
		s.replying = true
	}
	return s
}

// removeLocked forgets s; its held patches are dropped.
func (v *connViews) removeLocked(s *viewSlot) {
	if v.slots[s.ref] == s {
		delete(v.slots, s.ref)
	}
	s.gone, s.held, s.replying = true, nil, false
}

// handleJoin mounts a live view: CSRF token, view limit, then the session
// token (signed for this view and this connection's user) and the mount.
func (c *conn) handleJoin(id uint64, p protocol.JoinParams) {
	reg := c.g.cfg.Views
	if reg == nil {
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "views_off", p.View)
		c.replyError(id, notAvailable, nil)
		return
	}
	if err := c.g.csrf.Verify(c.csrfCookie, p.CSRF); err != nil {
		c.event(audit.TypeCSRFRejected, audit.SeverityWarning, "join_"+csrfReason(err), p.View)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), err)
		return
	}
	if c.views.count() >= reg.MaxViewsPerConn() {
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "view_limit", p.View)
		c.replyError(id, protocol.NewError(protocol.CodeLimitExceeded), nil)
		return
	}
	slot := &viewSlot{replying: true}
	inst, html, err := reg.Join(c.ctx, c.identity().User, p.View, p.Session, p.Params,
		live.WithPatch(func(pt protocol.Patch) { c.viewPatch(slot, pt) }),
		live.WithClosed(func(ref string, err error) { c.viewClosedItself(slot, ref, err) }),
		live.WithRequest(c.request))
	if err != nil {
		c.joinFailed(id, p.View, err)
		return
	}
	result := protocol.AppendJoinResult(nil, protocol.JoinResult{Ref: inst.Ref(), Version: 1, HTML: html})
	if replySize(id, result) > c.g.cfg.MaxOutboundMessage {
		inst.Close()
		c.replyError(id, protocol.NewError(protocol.CodeTooLarge), ErrTooLarge)
		return
	}
	c.views.mu.Lock()
	defer c.views.mu.Unlock()
	slot.inst, slot.ref = inst, inst.Ref()
	if c.views.slots == nil {
		c.views.slots = make(map[string]*viewSlot)
	}
	c.views.slots[slot.ref] = slot
	c.sendAroundLocked(slot, 1, protocol.AppendReply(nil, id, result))
}

func (c *conn) joinFailed(id uint64, view string, err error) {
	var se *live.SessionError
	var pe *live.PanicError
	switch {
	case errors.As(err, &se):
		sev := audit.SeverityWarning
		if se.Reason == live.ReasonSignature || se.Reason == live.ReasonOtherUser {
			sev = audit.SeverityCritical // forged, or lifted from another user's page
		}
		c.event(audit.TypeViewDenied, sev, "session_"+se.Reason, view)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), err)
	case errors.Is(err, live.ErrUnknownView):
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "unknown_view", view)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), err)
	case errors.Is(err, live.ErrBadParams):
		c.replyError(id, protocol.NewError(protocol.CodeBadRequest), err)
	case errors.Is(err, live.ErrStateTooLarge):
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "state_too_large", view)
		c.replyError(id, protocol.NewError(protocol.CodeLimitExceeded), err)
	case errors.Is(err, live.ErrForbidden):
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "mount_forbidden", view)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), err)
	case errors.As(err, &pe):
		c.viewPanic(view, pe)
		c.replyError(id, protocol.NewError(protocol.CodeInternal), err)
	default:
		c.g.cfg.Logger.Debug("view mount error", "view", logsafe.String(view), "conn", c.id, "err", logsafe.String(err.Error()))
		c.replyError(id, clientError(err), err)
	}
}

// handleView runs an event of a joined view. It returns false when the
// connection was closed (rate-limit warnings).
func (c *conn) handleView(id uint64, p protocol.ViewParams) bool {
	if c.g.cfg.Views == nil {
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "views_off", p.Name)
		c.replyError(id, notAvailable, nil)
		return true
	}
	if err := c.g.csrf.Verify(c.csrfCookie, p.CSRF); err != nil {
		c.event(audit.TypeCSRFRejected, audit.SeverityWarning, "view_"+csrfReason(err), p.Name)
		c.replyError(id, protocol.NewError(protocol.CodeForbidden), err)
		return true
	}
	slot := c.views.begin(p.Ref)
	if slot == nil {
		c.replyError(id, protocol.NewError(protocol.CodeBadRequest), errors.New("view not joined"))
		return true
	}
	res, err := slot.inst.Event(c.ctx, c.subject(), p.Name, p.Payload)
	if err == nil {
		result := protocol.AppendViewResult(nil, res)
		if replySize(id, result) > c.g.cfg.MaxOutboundMessage {
			// The instance moved on but its client cannot follow.
			c.dropView(slot)
			slot.inst.Close()
			c.replyError(id, protocol.NewError(protocol.CodeTooLarge), ErrTooLarge)
			return true
		}
		c.views.mu.Lock()
		c.sendAroundLocked(slot, res.Version, protocol.AppendReply(nil, id, result))
		c.views.mu.Unlock()
		return true
	}

	detail := slot.ref + ":" + p.Name
	var pe *live.PanicError
	drop := false
	var reply *protocol.Error
	switch {
	case errors.Is(err, live.ErrUnknownEvent):
		// The same bytes as an unknown gateway event, never a detail.
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "unknown_event", detail)
		reply, err = notAvailable, nil
	case errors.Is(err, live.ErrForbidden):
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "forbidden_event", detail)
		reply, err = notAvailable, nil
	case errors.Is(err, live.ErrBadPayload):
		reply = protocol.NewError(protocol.CodeBadRequest)
	case errors.Is(err, live.ErrStateTooLarge):
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "state_too_large", detail)
		reply, drop = protocol.NewError(protocol.CodeLimitExceeded), true
	case errors.Is(err, live.ErrClosed):
		reply, drop = protocol.NewError(protocol.CodeBadRequest), true
	case errors.Is(err, live.ErrRateLimited):
		// Answered by warn below.
	case errors.As(err, &pe):
		c.viewPanic(detail, pe)
		reply = protocol.NewError(protocol.CodeInternal)
	default:
		c.g.cfg.Logger.Debug("view handler error", "view", logsafe.String(detail), "conn", c.id, "err", logsafe.String(err.Error()))
		reply = clientError(err)
	}
	if drop {
		c.dropView(slot)
	} else {
		// Patches held meanwhile go out; an error reply carries no version.
		c.views.mu.Lock()
		c.sendAroundLocked(slot, ^uint64(0), nil)
		c.views.mu.Unlock()
	}
	if reply == nil {
		return !c.warn(id, "view_rate", detail)
	}
	c.replyError(id, reply, err)
	return true
}

func (c *conn) handleLeave(id uint64, p protocol.LeaveParams) {
	if c.g.cfg.Views == nil {
		c.replyError(id, notAvailable, nil)
		return
	}
	c.views.mu.Lock()
	slot := c.views.slots[p.Ref]
	if slot != nil {
		c.views.removeLocked(slot)
	}
	c.views.mu.Unlock()
	if slot == nil {
		c.replyError(id, protocol.NewError(protocol.CodeBadRequest), errors.New("view not joined"))
		return
	}
	slot.inst.Close()
	c.reply(id, []byte("{}"))
}

// closeViews closes every joined view; connection cleanup calls it.
func (c *conn) closeViews() {
	c.views.mu.Lock()
	slots := c.views.slots
	c.views.slots = nil
	for _, s := range slots {
		s.gone = true
	}
	c.views.mu.Unlock()
	for _, s := range slots {
		s.inst.Close()
	}
}

func (c *conn) dropView(s *viewSlot) {
	c.views.mu.Lock()
	c.views.removeLocked(s)
	c.views.mu.Unlock()
}

// sendAroundLocked ends the reply being prepared for s: held patches up
// to version go first, then reply (if any), then later patches, then the
// view_closed notice if the view closed itself meanwhile.
func (c *conn) sendAroundLocked(s *viewSlot, version uint64, reply []byte) {
	held := s.held
	s.held, s.replying = nil, false
	for _, p := range held {
		if p.Version <= version {
			c.sendPatch(s, p) // nothing once the view is gone
		}
	}
	if reply != nil {
		c.send(reply)
	}
	for _, p := range held {
		if p.Version > version {
			c.sendPatch(s, p)
		}
	}
	if s.closedCode != "" && !s.gone {
		c.views.removeLocked(s)
		c.send(protocol.AppendViewClosed(nil, s.ref, s.closedCode))
		go s.inst.Close() // not under c.views.mu: hooks lock the other way round
	}
}

// viewPatch is an instance's WithPatch hook: it runs with the instance
// locked, from whatever goroutine called Update.
func (c *conn) viewPatch(s *viewSlot, p protocol.Patch) {
	c.views.mu.Lock()
	defer c.views.mu.Unlock()
	switch {
	case s.gone:
	case s.replying && len(s.held) < maxHeldPatches:
		s.held = append(s.held, p)
	case s.replying:
		// Far more updates than one reply takes to prepare: the client
		// cannot be kept in step any more.
		s.closedCode = protocol.CodeLimitExceeded
		s.held = nil
	default:
		c.sendPatch(s, p)
	}
}

// sendPatch sends a patch push; one that would exceed the outbound limit
// closes the view instead, since the client could not follow it.
func (c *conn) sendPatch(s *viewSlot, p protocol.Patch) {
	if s.gone {
		return
	}
	frame := protocol.AppendPatchPush(nil, p)
	if len(frame) <= c.g.cfg.MaxOutboundMessage {
		c.send(frame)
		return
	}
	c.views.removeLocked(s)
	c.send(protocol.AppendViewClosed(nil, s.ref, protocol.CodeTooLarge))
	// The instance is locked by whoever is sending (an update or this
	// reply's event has just released it): close it on the side.
	go s.inst.Close()
}

// viewClosedItself is an instance's WithClosed hook: an update outgrew the
// state limit, failed to render or panicked. It runs with the instance
// locked, maybe before the join reply has registered s.
func (c *conn) viewClosedItself(s *viewSlot, ref string, err error) {
	code := protocol.CodeInternal
	var pe *live.PanicError
	switch {
	case errors.Is(err, live.ErrStateTooLarge):
		code = protocol.CodeLimitExceeded
		c.event(audit.TypeViewDenied, audit.SeverityWarning, "state_too_large", ref)
	case errors.As(err, &pe):
		c.viewPanic(ref, pe)
	default:
		c.g.cfg.Logger.Error("view update failed", "view", ref, "conn", c.id, "err", logsafe.String(err.Error()))
	}
	c.views.mu.Lock()
	defer c.views.mu.Unlock()
	switch {
	case s.gone:
	case s.replying:
		s.closedCode = code
	default:
		c.views.removeLocked(s)
		c.send(protocol.AppendViewClosed(nil, s.ref, code))
	}
}

func (c *conn) viewPanic(where string, pe *live.PanicError) {
	c.event(audit.TypeHandlerPanic, audit.SeverityCritical, "view_panic", where)
	c.g.cfg.Logger.Error("view panic", "view", logsafe.String(where), "conn", c.id,
		"panic", logsafe.Truncate(fmt.Sprint(pe.Value), 1024), "stack", string(pe.Stack))
}
