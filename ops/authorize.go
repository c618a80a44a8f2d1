package ops

import (
	"context"
	"errors"
	"slices"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/logsafe"
)

// Authorizer returns the check for joining an operation channel, for the
// gateway's "op" namespace:
//
//	gw.Authorize(ops.Namespace, m.Authorizer())
//
// It allows a subscription to "op:<id>" only by the operation's owner
// (same user and tenant) and, when Config.RequiredGroup is set, only if
// the identity is in that group. Every refusal — a malformed channel, an
// anonymous identity, a non-member, an unknown operation, another user's
// operation, a store failure — returns ErrForbidden and records an
// audit.TypeChannelDenied event whose Reason says which.
func (m *Manager) Authorizer() func(ctx context.Context, id auth.Identity, channel string) error {
	return func(ctx context.Context, who auth.Identity, channel string) error {
		reason := m.joinRefusal(ctx, who, channel)
		if reason == "" {
			return nil
		}
		m.events.Record(ctx, audit.Event{
			Type:     audit.TypeChannelDenied,
			Time:     m.cfg.Now(),
			Severity: audit.SeverityWarning,
			User:     who.User,
			Session:  who.Session,
			Tenant:   who.Tenant,
			Reason:   reason,
			Detail:   channel,
		})
		return ErrForbidden
	}
}

// joinRefusal returns why who may not join channel, or "" if it may.
func (m *Manager) joinRefusal(ctx context.Context, who auth.Identity, channel string) string {
	id := idFromChannel(channel)
	switch {
	case id == "":
		return "op_invalid_channel"
	case who.User == "":
		return "op_anonymous"
	case m.cfg.RequiredGroup != "" && !slices.Contains(who.Groups, m.cfg.RequiredGroup):
		return "op_not_member"
	}
	var ow owner
	m.mu.Lock()
	r := m.running[id]
	m.mu.Unlock()
	if r != nil {
		ow = r.owner
	} else {
		rec, err := m.cfg.Store.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return "op_unknown"
		}
		if err != nil {
			m.log.Error("ops: authorize", "op", id, "err", logsafe.String(err.Error()))
			return "op_store_error"
		}
		ow = owner{rec.User, rec.Tenant}
	}
	if ow != ownerOf(who) {
		return "op_not_owner"
	}
	return ""
}
