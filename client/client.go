package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegate/livegate/protocol"
)

// Defaults applied to zero Config fields.
const (
	DefaultMinBackoff     = 250 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultRefreshBefore  = 30 * time.Second
	DefaultDialTimeout    = 10 * time.Second
	DefaultMaxMessageSize = 1 << 20
	DefaultMaxFrameSize   = 64 << 10
)

// Config configures a Client. Only URL and Token are required; every other
// zero field takes the default documented on it.
type Config struct {
	// URL is the gateway's WebSocket endpoint, e.g. "wss://example.com/ws".
	// Schemes ws, wss, http and https are accepted.
	URL string
	// Token returns a connection token. It is called before every connect
	// (including each reconnect) and before every refresh, so it should
	// mint or fetch a fresh token each time: tokens that carry a "jti" are
	// single-use. Its error is returned by Connect, or reported to OnError
	// during reconnects and refreshes. Required.
	Token func(ctx context.Context) (string, error)
	// Header holds extra handshake headers, e.g. Origin.
	Header http.Header

	// MinBackoff and MaxBackoff bound the delay before a reconnect
	// attempt: attempt n waits a random duration in
	// [0, min(MaxBackoff, MinBackoff*2^n)] ("full jitter"). Defaults 250ms
	// and 30s. After close 4429 (rate limited) the delay is at least
	// MaxBackoff/2. The attempt count resets once a connection has stayed
	// up for MaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// RefreshBefore is how long before the token's expiry the client
	// fetches a new token and sends "refresh"; default 30s. When the
	// token's remaining lifetime is less than twice RefreshBefore the
	// client refreshes halfway through it instead. If a refresh fails the
	// error goes to OnError and the connection is left to expire: the
	// server closes it 4409 and the client reconnects with a new token.
	RefreshBefore time.Duration

	// OnState, when set, is called on every state change, in order, from
	// the client's goroutines. It must not block.
	OnState func(State)
	// OnError, when set, receives errors no caller is waiting for: a
	// failed resubscribe, refresh or token fetch, a close that made the
	// client stop (a *CloseError). It must not block.
	OnError func(error)

	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger

	// DialTimeout bounds fetching the token, dialing and the connect
	// handshake of one attempt, and the write of one frame; default 10s.
	// It is also the grace period added to the server's ping interval
	// after which a silent connection is dropped.
	DialTimeout time.Duration
	// MaxMessageSize caps one server frame in bytes; default 1 MiB. A
	// larger frame drops the connection. Keep it at least the gateway's
	// MaxOutboundMessage.
	MaxMessageSize int64
	// MaxFrameSize caps one command frame the client sends, in bytes;
	// default 64 KiB, the gateway's default MaxInboundFrame. A larger
	// command fails with ErrTooLarge without being sent, instead of the
	// server closing the connection for good (1009).
	MaxFrameSize int
}

func (c *Config) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MinBackoff, DefaultMinBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.RefreshBefore, DefaultRefreshBefore)
	def(&c.DialTimeout, DefaultDialTimeout)
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("client: config URL is required"))
	case err != nil:
		errs = append(errs, fmt.Errorf("client: config URL: %w", err))
	case u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("client: config URL scheme %q is not ws, wss, http or https", u.Scheme))
	case u.Host == "":
		errs = append(errs, errors.New("client: config URL has no host"))
	}
	if c.Token == nil {
		errs = append(errs, errors.New("client: config Token is required"))
	}
	positive := func(name string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("client: config %s must be positive", name))
		}
	}
	positive("MinBackoff", c.MinBackoff > 0)
	positive("MaxBackoff", c.MaxBackoff > 0)
	positive("RefreshBefore", c.RefreshBefore > 0)
	positive("DialTimeout", c.DialTimeout > 0)
	positive("MaxMessageSize", c.MaxMessageSize > 0)
	positive("MaxFrameSize", c.MaxFrameSize > 0)
	if c.MinBackoff > c.MaxBackoff {
		errs = append(errs, errors.New("client: config MinBackoff exceeds MaxBackoff"))
	}
	return errors.Join(errs...)
}

// State is the client's connection state, reported to Config.OnState.
type State int

// Connection states. A new client is Disconnected; Closed is final.
const (
	// StateConnecting: a connection attempt is in progress.
	StateConnecting State = iota
	// StateConnected: the server accepted the connect command.
	StateConnected
	// StateDisconnected: no connection; the client waits to reconnect
	// (or, before Connect succeeded, for Connect to be called).
	StateDisconnected
	// StateClosed: Close was called or the server told the client to
	// stop. Nothing happens any more.
	StateClosed
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Client is a connection to a livegate gateway that reconnects and
// recovers by itself. Create it with New and start it with Connect. All
// methods are safe for concurrent use; see the package documentation for
// the rules callbacks must follow.
type Client struct {
	cfg Config
	log *slog.Logger

	// ctx is cancelled when the client closes (Close or a stop advice);
	// it stops the run loop and every wait for a connection.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the run loop and the sessions' reader goroutines; Add is
	// only called under mu while closed is false.
	wg     sync.WaitGroup
	nextID atomic.Uint64

	mu         sync.Mutex
	closed     bool
	connecting bool // Connect is dialing
	running    bool // Connect succeeded; the run loop owns reconnection
	sess       *session
	ready      chan struct{} // closed while sess is set
	subs       map[string]*Subscription

	stateMu sync.Mutex // serialises state changes and OnState calls
	state   atomic.Int32
}

// New validates cfg and returns a Client. It does not connect; call
// Connect.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:    cfg,
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
		ready:  make(chan struct{}),
		subs:   make(map[string]*Subscription),
	}
	c.state.Store(int32(StateDisconnected))
	return c, nil
}

// State returns the current connection state.
func (c *Client) State() State { return State(c.state.Load()) }

// Connect opens the first connection: it fetches a token, dials, sends
// connect and waits for the server's answer, bounded by ctx and
// Config.DialTimeout. It returns the reason the connection was refused,
// for example an error wrapping a *CloseError with code 4401 for a bad
// token; the client then stays disconnected and Connect may be called
// again. After Connect succeeds the client reconnects by itself whenever
// the connection is lost, until Close.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.running || c.connecting:
		c.mu.Unlock()
		return ErrAlreadyConnected
	}
	c.connecting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.connecting = false
		c.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()

	c.setState(StateConnecting)
	sess, res, err := c.open(ctx)
	if err != nil {
		if c.ctx.Err() != nil {
			return ErrClosed
		}
		c.setState(StateDisconnected)
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		sess.closeNormal()
		return ErrClosed
	}
	c.running = true
	c.install(sess)
	c.wg.Add(1)
	c.mu.Unlock()
	c.setState(StateConnected)
	go c.run(sess, res)
	return nil
}

// Close closes the connection with 1000 (normal closure), stops
// reconnecting, fails calls in progress with ErrClosed and waits for the
// client's goroutines to finish; the close handshake is bounded to a few
// seconds by the WebSocket library. It is idempotent and always returns
// nil. Do not call it from a callback.
func (c *Client) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	sess := c.sess
	c.mu.Unlock()
	c.cancel()
	if sess != nil && !already {
		sess.closeNormal()
	}
	c.wg.Wait()
	c.setState(StateClosed)
	return nil
}

// Call sends the client event named event with payload (encoded as JSON;
// json.RawMessage and []byte must already be JSON; nil sends none) and
// waits for the reply, decoding its result into result unless result is
// nil. An error reply from the server is a *protocol.Error (use errors.As)
// with a generic code such as protocol.CodeNotAvailable. If the client is
// reconnecting, Call waits for the connection, bounded by ctx.
func (c *Client) Call(ctx context.Context, event string, payload any, result any) error {
	p, err := encodeJSON(payload, false)
	if err != nil {
		return fmt.Errorf("client: call %q: payload: %w", event, err)
	}
	raw, err := c.do(ctx, protocol.MethodEvent, protocol.EventParams{Name: event, Payload: p}, nil)
	if err != nil {
		return fmt.Errorf("client: call %q: %w", event, err)
	}
	if result != nil {
		if err := json.Unmarshal(raw, result); err != nil {
			return fmt.Errorf("client: call %q: decode result: %w", event, err)
		}
	}
	return nil
}

// Publish sends data (encoded as JSON; json.RawMessage and []byte must
// already be JSON) to channel and returns the publication's stream
// position. The channel's namespace must allow client publishing; if not,
// the error is a *protocol.Error with code protocol.CodeForbidden. If the
// client is reconnecting, Publish waits for the connection, bounded by ctx.
func (c *Client) Publish(ctx context.Context, channel string, data any) (protocol.StreamPosition, error) {
	d, err := encodeJSON(data, true)
	if err != nil {
		return protocol.StreamPosition{}, fmt.Errorf("client: publish %q: data: %w", channel, err)
	}
	raw, err := c.do(ctx, protocol.MethodPublish, protocol.PublishParams{Channel: channel, Data: d}, nil)
	if err != nil {
		return protocol.StreamPosition{}, fmt.Errorf("client: publish %q: %w", channel, err)
	}
	var res protocol.PublishResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return protocol.StreamPosition{}, fmt.Errorf("client: publish %q: decode result: %w", channel, err)
	}
	return protocol.StreamPosition(res), nil
}

// encodeJSON encodes v; json.RawMessage and []byte are used as they are
// after a validity check. A nil v gives nil, or "null" when null is set.
func encodeJSON(v any, null bool) (json.RawMessage, error) {
	var b []byte
	switch d := v.(type) {
	case nil:
		if !null {
			return nil, nil
		}
		return json.RawMessage("null"), nil
	case json.RawMessage:
		b = d
	case []byte:
		b = d
	default:
		return json.Marshal(v)
	}
	if !json.Valid(b) {
		return nil, errors.New("client: not valid JSON")
	}
	return b, nil
}

// do sends one command on the current connection, waiting for one if the
// client is reconnecting. hook, if set, runs on the reader goroutine with
// a successful result before any later frame is handled.
func (c *Client) do(ctx context.Context, method string, params any, hook replyHook) (json.RawMessage, error) {
	for {
		sess, err := c.session(ctx)
		if err != nil {
			return nil, err
		}
		raw, err := sess.call(ctx, method, params, hook)
		if errors.Is(err, errSessionEnded) {
			// Nothing was sent; wait for the next connection.
			continue
		}
		return raw, err
	}
}

// session returns the current connection, waiting for one while the
// client reconnects.
func (c *Client) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		closed, running, sess, ready := c.closed, c.running, c.sess, c.ready
		c.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case !running:
			return nil, ErrNotConnected
		case sess != nil:
			return sess, nil
		}
		select {
		case <-ready:
		case <-c.ctx.Done():
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("client: waiting for connection: %w", ctx.Err())
		}
	}
}

// currentSession returns the current connection or nil.
func (c *Client) currentSession() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// install makes sess the current connection unless it already ended (the
// run loop then sees it done and reconnects). c.mu must be held.
func (c *Client) install(sess *session) {
	if sess.dead {
		return
	}
	c.sess = sess
	close(c.ready)
}

// uninstall marks sess dead and forgets it if it is the current
// connection.
func (c *Client) uninstall(sess *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sess.dead = true
	if c.sess == sess {
		c.sess = nil
		c.ready = make(chan struct{})
	}
}

// setState records s and tells OnState, unless nothing changed or the
// client is already closed.
func (c *Client) setState(s State) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	old := State(c.state.Load())
	if old == s || old == StateClosed {
		return
	}
	c.state.Store(int32(s))
	c.log.Debug("client state", "state", s.String())
	if c.cfg.OnState != nil {
		c.cfg.OnState(s)
	}
}

// reportError hands err to OnError.
func (c *Client) reportError(err error) {
	c.log.Warn("client error", "err", err)
	if c.cfg.OnError != nil {
		c.cfg.OnError(err)
	}
}

// run owns reconnection after Connect: it serves each connection until it
// ends, then follows the close code's advice. It stops when the client
// closes.
func (c *Client) run(sess *session, res protocol.ConnectResult) {
	defer c.wg.Done()
	attempt := 0
	for {
		began := time.Now()
		c.serve(sess, res)
		if c.ctx.Err() != nil {
			sess.closeNormal()
			return
		}
		<-sess.done
		cause := sess.cause
		if c.ctx.Err() != nil {
			return
		}
		c.log.Info("connection lost", "err", cause)
		if time.Since(began) >= c.cfg.MaxBackoff {
			attempt = 0
		}
		if adviceFor(cause) == protocol.AdviceStop {
			c.stop(cause)
			return
		}
		c.setState(StateDisconnected)
		var ok bool
		sess, res, ok = c.reconnect(&attempt, cause)
		if !ok {
			return
		}
	}
}

// reconnect retries with back-off until a connection is made (true) or
// the client closes or must stop (false). Every attempt fetches a new
// token, which also covers AdviceNewToken.
func (c *Client) reconnect(attempt *int, cause error) (*session, protocol.ConnectResult, bool) {
	for {
		d := c.backoff(*attempt, cause)
		*attempt++
		if !c.sleep(d) {
			return nil, protocol.ConnectResult{}, false
		}
		c.setState(StateConnecting)
		sess, res, err := c.open(c.ctx)
		if err == nil {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				sess.closeNormal()
				return nil, protocol.ConnectResult{}, false
			}
			c.install(sess)
			c.mu.Unlock()
			c.setState(StateConnected)
			return sess, res, true
		}
		if c.ctx.Err() != nil {
			return nil, protocol.ConnectResult{}, false
		}
		c.log.Info("reconnect failed", "attempt", *attempt, "err", err)
		var ce *CloseError
		switch {
		case errors.As(err, &ce) && protocol.AdviceFor(ce.Code) == protocol.AdviceStop:
			c.stop(err)
			return nil, protocol.ConnectResult{}, false
		case ce != nil, errors.Is(err, errToken):
			// The server refused the connection or no token could be
			// had: the application may want to know.
			c.reportError(err)
		}
		c.setState(StateDisconnected)
		cause = err
	}
}

// stop closes the client for good after cause, a close whose advice is to
// stop: OnError gets cause, then the state becomes Closed.
func (c *Client) stop(cause error) {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.reportError(cause)
	c.setState(StateClosed)
}

// backoff returns the delay before reconnect attempt n (from 0) after
// cause: full jitter, at least MaxBackoff/2 after close 4429.
func (c *Client) backoff(n int, cause error) time.Duration {
	if closeCode(cause) == protocol.CloseRateLimited {
		half := c.cfg.MaxBackoff / 2
		return half + rand.N(c.cfg.MaxBackoff-half+1)
	}
	ceiling := c.cfg.MaxBackoff
	if n < 62 {
		if d := c.cfg.MinBackoff << n; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return rand.N(ceiling + 1)
}

// sleep waits d; it reports false if the client closed meanwhile.
func (c *Client) sleep(d time.Duration) bool { return sleepCtx(c.ctx, d) }

// serve runs one connection's maintenance on the run loop goroutine:
// resubscribe, then refresh the token before it expires. It returns when
// the connection ends or the client closes.
func (c *Client) serve(sess *session, res protocol.ConnectResult) {
	c.resubscribeAll(sess)
	var refresh <-chan time.Time
	timer := time.NewTimer(c.refreshDelay(res.Expires))
	defer timer.Stop()
	if res.Expires > 0 {
		refresh = timer.C
	}
	for {
		select {
		case <-sess.done:
			return
		case <-c.ctx.Done():
			return
		case <-refresh:
			expires, err := c.refresh(sess)
			if err != nil {
				if sess.ctx.Err() == nil {
					c.reportError(err)
				}
				// The server closes the connection 4409 at expiry and the
				// client reconnects with a new token.
				refresh = nil
				continue
			}
			timer.Reset(c.refreshDelay(expires))
		}
	}
}

// refreshDelay returns how long to wait before refreshing a token that
// expires at expires (Unix seconds).
func (c *Client) refreshDelay(expires int64) time.Duration {
	remaining := time.Until(time.Unix(expires, 0))
	lead := min(c.cfg.RefreshBefore, remaining/2)
	return max(remaining-lead, 0)
}

// refresh fetches a token and sends it; it returns the new expiry.
func (c *Client) refresh(sess *session) (int64, error) {
	ctx, cancel := context.WithTimeout(sess.ctx, c.cfg.DialTimeout)
	defer cancel()
	token, err := c.cfg.Token(ctx)
	if err != nil {
		return 0, fmt.Errorf("client: refresh: %w: %w", errToken, err)
	}
	raw, err := sess.call(ctx, protocol.MethodRefresh, protocol.RefreshParams{Token: token}, nil)
	if err != nil {
		return 0, fmt.Errorf("client: refresh: %w", err)
	}
	var res protocol.RefreshResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return 0, fmt.Errorf("client: refresh: decode result: %w", err)
	}
	c.log.Debug("token refreshed", "expires", res.Expires)
	return res.Expires, nil
}

// Resubscriptions after a reconnect are paced to stay under the gateway's
// command rate limit (by default bursts of 20 and 100 a second): the first
// resubscribeBurst go at once, the rest one per resubscribeInterval.
const (
	resubscribeBurst    = 10
	resubscribeInterval = 20 * time.Millisecond
)

// maxResubscribeRetries is how often a resubscribe answered rate_limited
// or unavailable is retried on one connection, each time after a longer
// wait, before the subscription is given up.
const maxResubscribeRetries = 3

// resubscribeAll subscribes every subscription again on a new connection,
// one at a time, recovering from its last position.
func (c *Client) resubscribeAll(sess *session) {
	c.mu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	for i, s := range subs {
		if i >= resubscribeBurst && !sleepCtx(sess.ctx, resubscribeInterval) {
			return
		}
		if sess.ctx.Err() != nil {
			return
		}
		c.resubscribe(sess, s)
	}
}

// sleepCtx waits d; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Client) resubscribe(sess *session, s *Subscription) {
	for try := 0; ; try++ {
		if !s.lockOp(sess.ctx) {
			return
		}
		s.mu.Lock()
		skip := s.gone || s.sess == sess
		pos := s.pos
		s.mu.Unlock()
		if skip {
			s.unlockOp()
			return
		}
		_, err := sess.call(sess.ctx, protocol.MethodSubscribe,
			protocol.SubscribeParams{Channel: s.channel, Since: &pos}, s.applyHook)
		s.unlockOp()
		var pe *protocol.Error
		switch {
		case err == nil:
			return
		case !errors.As(err, &pe):
			// The connection ended; the next one resubscribes.
			return
		case (pe.Code == protocol.CodeRateLimited || pe.Code == protocol.CodeUnavailable) && try < maxResubscribeRetries:
			if !sleepCtx(sess.ctx, c.cfg.MinBackoff<<try) {
				return
			}
			continue
		}
		s.mu.Lock()
		s.gone = true
		s.mu.Unlock()
		c.removeSub(s)
		c.reportError(fmt.Errorf("client: resubscribe %q: %w", s.channel, err))
		return
	}
}

// removeSub forgets s if it is the channel's subscription.
func (c *Client) removeSub(s *Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[s.channel] == s {
		delete(c.subs, s.channel)
	}
}

// deliver routes a push to its channel's subscription; pushes for
// channels without one are dropped.
// A resubscribe push makes the client resubscribe from the last position
// (on another goroutine); join and leave pushes go to the subscription's
// WithJoinLeave callback.
func (c *Client) deliver(sess *session, p *protocol.Push) {
	c.mu.Lock()
	s := c.subs[p.Channel]
	c.mu.Unlock()
	if s == nil {
		c.log.Debug("push for unknown channel dropped", "channel", p.Channel)
		return
	}
	switch {
	case p.Resubscribe:
		c.log.Info("server asked to resubscribe", "channel", p.Channel)
		sess.goResync(s)
	case p.Join != nil:
		s.presenceEvent(PresenceEvent{Join: true, Conn: p.Join.Conn, User: p.Join.User})
	case p.Leave != nil:
		s.presenceEvent(PresenceEvent{Conn: p.Leave.Conn, User: p.Leave.User})
	default:
		s.deliver(Push{Channel: p.Channel, Offset: p.Offset, Epoch: p.Epoch, Data: p.Data})
	}
}

// Presence returns the connections present in channel, which the client
// must be subscribed to in a namespace that records presence (otherwise
// the error wraps a *protocol.Error with code forbidden).
func (c *Client) Presence(ctx context.Context, channel string) ([]protocol.PresenceClient, error) {
	raw, err := c.do(ctx, protocol.MethodPresence, protocol.PresenceParams{Channel: channel}, nil)
	if err != nil {
		return nil, fmt.Errorf("client: presence %q: %w", channel, err)
	}
	var res protocol.PresenceResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("client: decode presence result: %w", err)
	}
	return res.Clients, nil
}
