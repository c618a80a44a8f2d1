package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/livegate/livegate/protocol"
)

// Push is one publication delivered to a subscription.
type Push struct {
	// Channel is the subscription's channel.
	Channel string
	// Offset and Epoch are the publication's stream position.
	Offset uint64
	Epoch  string
	// Data is the published JSON value. It is not shared; the callback may
	// keep it.
	Data json.RawMessage
}

// SubscribeOption configures one Subscribe call.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	reset     func()
	since     *protocol.StreamPosition
	joinLeave func(PresenceEvent)
}

// PresenceEvent is a connection joining or leaving a channel, in
// namespaces with join/leave notices.
type PresenceEvent struct {
	// Join is true for a join, false for a leave.
	Join bool
	// Conn and User name the connection.
	Conn, User string
}

// WithJoinLeave sets fn to be called, on the reader goroutine, when
// another connection joins or leaves the channel (namespaces with
// join/leave notices only). It must not block.
func WithJoinLeave(fn func(PresenceEvent)) SubscribeOption {
	return func(o *subscribeOptions) { o.joinLeave = fn }
}

// WithRecoveryReset sets fn to be called when publications were lost: a
// resubscribe (or a Subscribe with WithSince) answered recovered:false, or
// a push started a new stream epoch at an offset other than 1. The
// application should reload the channel's state, for example from its
// API. fn runs on the reader goroutine after Position has moved to the
// stream's current position and before any later push; it must not block
// (see the package documentation). Publications the server sends along
// with an incomplete recovery are not delivered.
func WithRecoveryReset(fn func()) SubscribeOption {
	return func(o *subscribeOptions) { o.reset = fn }
}

// WithSince makes Subscribe recover from pos, a position the application
// saved earlier (for example Subscription.Position of a previous run): the
// publications after it are delivered before any new push, or, if they
// cannot all be recovered, the WithRecoveryReset hook is called.
func WithSince(pos protocol.StreamPosition) SubscribeOption {
	return func(o *subscribeOptions) { o.since = &pos }
}

// Subscription is the client's membership of one channel. It survives
// reconnects: the client resubscribes from the last position it
// delivered. If the server refuses a resubscribe (for example because the
// channel became forbidden, or after retries for rate_limited and
// unavailable) the subscription ends and Config.OnError receives the
// error. Its methods are safe for concurrent use.
type Subscription struct {
	c       *Client
	channel string
	onPush  func(Push)
	onReset func()
	onJoin  func(PresenceEvent)
	// op serialises the subscription's commands (resubscribe and
	// unsubscribe); it is taken with a context.
	op chan struct{}

	mu   sync.Mutex
	pos  protocol.StreamPosition
	sess *session // the connection the server has it subscribed on
	gone bool     // unsubscribed, or refused on resubscribe
}

// Subscribe subscribes to channel and returns once the server confirmed.
// onPush is then called for every publication, in stream order, without
// duplicates, from the connection's reader goroutine: it must return
// quickly and must not call blocking client methods. Publications
// recovered after a reconnect (or from WithSince) are delivered before
// any later one.
//
// A refused subscription returns an error wrapping a *protocol.Error
// (e.g. protocol.CodeForbidden). If the client is reconnecting, Subscribe
// waits for the connection, bounded by ctx.
func (c *Client) Subscribe(ctx context.Context, channel string, onPush func(Push), opts ...SubscribeOption) (*Subscription, error) {
	if onPush == nil {
		return nil, fmt.Errorf("client: subscribe %q: nil push callback", channel)
	}
	var o subscribeOptions
	for _, opt := range opts {
		opt(&o)
	}
	s := &Subscription{
		c:       c,
		channel: channel,
		onPush:  onPush,
		onReset: o.reset,
		onJoin:  o.joinLeave,
		op:      make(chan struct{}, 1),
	}
	c.mu.Lock()
	_, dup := c.subs[channel]
	c.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("client: subscribe %q: %w", channel, ErrAlreadySubscribed)
	}
	params := protocol.SubscribeParams{Channel: channel}
	if o.since != nil {
		s.pos = *o.since
		params.Since = o.since
	}
	if _, err := c.do(ctx, protocol.MethodSubscribe, params, s.applyHook); err != nil {
		return nil, fmt.Errorf("client: subscribe %q: %w", channel, err)
	}
	return s, nil
}

// Channel returns the subscription's channel.
func (s *Subscription) Channel() string { return s.channel }

// Position returns the stream position of the last publication delivered
// (or, before any, the position the server reported on subscribe). Save
// it to resume later with WithSince.
func (s *Subscription) Position() protocol.StreamPosition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Unsubscribe stops the subscription: once it returns no new push
// callback starts. It tells the server if connected; if the connection
// is lost meanwhile there is nothing to undo and it returns nil. Calling
// it again returns nil.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	if !s.lockOp(ctx) {
		return fmt.Errorf("client: unsubscribe %q: %w", s.channel, ctx.Err())
	}
	defer s.unlockOp()
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return nil
	}
	s.gone = true
	sess := s.sess
	s.mu.Unlock()
	s.c.removeSub(s)
	if sess == nil || s.c.currentSession() != sess {
		// Not subscribed on the current connection.
		return nil
	}
	_, err := sess.call(ctx, protocol.MethodUnsubscribe, protocol.UnsubscribeParams{Channel: s.channel}, nil)
	if err != nil && !errors.Is(err, ErrDisconnected) && !errors.Is(err, errSessionEnded) && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("client: unsubscribe %q: %w", s.channel, err)
	}
	return nil
}

func (s *Subscription) lockOp(ctx context.Context) bool {
	select {
	case s.op <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Subscription) unlockOp() { <-s.op }

// applyHook handles a successful subscribe result on the reader
// goroutine, before any push that follows it: it makes the subscription
// routable and delivers what was recovered.
func (s *Subscription) applyHook(sess *session, raw json.RawMessage, abandoned bool) error {
	if abandoned {
		// Subscribe gave up, but the server subscribed: undo it, or a
		// retry would be refused as a duplicate.
		sess.goUnsubscribe(s.channel)
		return nil
	}
	var res protocol.SubscribeResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("client: decode subscribe result: %w", err)
	}
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return nil
	}
	s.sess = sess
	s.mu.Unlock()
	s.c.mu.Lock()
	s.c.subs[s.channel] = s
	s.c.mu.Unlock()

	current := protocol.StreamPosition{Offset: res.Offset, Epoch: res.Epoch}
	switch {
	case res.Recovered == nil:
		// Fresh subscription: start from the current position.
		s.setPos(current)
	case !*res.Recovered:
		s.setPos(current)
		s.c.log.Info("recovery incomplete", "channel", s.channel)
		if s.onReset != nil {
			s.onReset()
		}
	default:
		for _, p := range res.Publications {
			s.deliver(Push{Channel: s.channel, Offset: p.Offset, Epoch: res.Epoch, Data: p.Data})
		}
		s.mu.Lock()
		if s.pos.Epoch != current.Epoch || s.pos.Offset < current.Offset {
			s.pos = current
		}
		s.mu.Unlock()
	}
	return nil
}

func (s *Subscription) setPos(p protocol.StreamPosition) {
	s.mu.Lock()
	s.pos = p
	s.mu.Unlock()
}

// deliver calls onPush for p unless the subscription is gone or p is not
// newer than the last position in the same epoch. A push that starts a
// new epoch anywhere but at offset 1 means publications were lost with
// the old stream, so the reset hook runs first. Only the reader goroutine
// calls it.
func (s *Subscription) deliver(p Push) {
	s.mu.Lock()
	if s.gone || (p.Epoch == s.pos.Epoch && p.Offset <= s.pos.Offset) {
		s.mu.Unlock()
		return
	}
	lost := p.Epoch != s.pos.Epoch && p.Offset != 1
	if p.Epoch == s.pos.Epoch && p.Offset > s.pos.Offset+1 {
		s.c.log.Warn("gap in channel stream", "channel", s.channel, "after", s.pos.Offset, "got", p.Offset)
	}
	s.pos = protocol.StreamPosition{Offset: p.Offset, Epoch: p.Epoch}
	s.mu.Unlock()
	if lost {
		s.c.log.Info("channel stream restarted, state lost", "channel", s.channel)
		if s.onReset != nil {
			s.onReset()
		}
	}
	s.onPush(p)
}

// presenceEvent calls the WithJoinLeave callback, if any.
func (s *Subscription) presenceEvent(e PresenceEvent) {
	s.mu.Lock()
	gone := s.gone
	s.mu.Unlock()
	if !gone && s.onJoin != nil {
		s.onJoin(e)
	}
}
