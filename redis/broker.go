package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/livegate/livegate/broker"
)

// Broker is a broker.Broker, broker.Control and broker.Presence shared by
// every gateway node connected to one Redis. Get it from Engine.Broker.
//
// Each channel has a stream in Redis: a hash holding its epoch and last
// offset, and a Redis stream holding its history, whose entry ids are the
// publications' offsets. One Lua script assigns the offset, appends to
// the history, sets the TTL and PUBLISHes the publication, so offsets are
// assigned atomically across nodes and pub/sub carries the publications
// of a channel in offset order.
//
// The node holds one pub/sub connection, subscribed once per channel that
// has local subscribers (Subscribe is idempotent) and to one control
// topic. It remembers the last offset it delivered per channel; when a
// publication arrives after a gap, or the connection is re-established, it
// fetches the missing publications from history and delivers them first.
// When it cannot (the epoch changed, history was trimmed or Redis did not
// answer) it calls HandleLoss on the Handler if the Handler implements
// broker.LossHandler. The pub/sub connection is re-established
// automatically, with backoff, for as long as the Engine is open.
type Broker struct {
	e       *Engine
	handler atomic.Pointer[handlerRef]
	control atomic.Pointer[controlRef]

	mu       sync.Mutex
	channels map[string]*chanState
	ps       *goredis.PubSub // nil while disconnected
	down     bool            // set by shutdown

	// connects counts pub/sub connections made (control topic
	// subscriptions confirmed).
	connects atomic.Uint64
	// sessionHook, when set, runs before each pub/sub connection is made.
	sessionHook atomic.Pointer[func()]
}

var (
	_ broker.Broker   = (*Broker)(nil)
	_ broker.Control  = (*Broker)(nil)
	_ broker.Presence = (*Broker)(nil)
)

type handlerRef struct{ h broker.Handler }

type controlRef struct{ f func(msg []byte) }

// chanState is the node's delivery state of one subscribed channel. ready
// is closed once Redis confirmed the subscription. The other fields are
// touched only by the pub/sub goroutine.
type chanState struct {
	ready   chan struct{}
	isReady bool
	synced  bool
	epoch   string
	offset  uint64
}

func newBroker(e *Engine) *Broker {
	return &Broker{e: e, channels: make(map[string]*chanState)}
}

// Key layout. Channel names go inside a hash tag so that a channel's keys
// share a Redis Cluster slot.
func (b *Broker) metaKey(ch string) string   { return b.e.key("ch:{", ch, "}:m") }
func (b *Broker) streamKey(ch string) string { return b.e.key("ch:{", ch, "}:s") }
func (b *Broker) pubName(ch string) string   { return b.e.key("pub:", ch) }
func (b *Broker) controlName() string        { return b.e.key("control") }

// SetHandler sets the handler for delivered publications; nil stops
// delivery. A handler implementing broker.LossHandler is told about
// publications that could not be delivered.
func (b *Broker) SetHandler(h broker.Handler) {
	if h == nil {
		b.handler.Store(nil)
		return
	}
	b.handler.Store(&handlerRef{h: h})
}

// SetControlHandler sets the function receiving control messages, every
// node's including this one's.
func (b *Broker) SetControlHandler(f func(msg []byte)) {
	if f == nil {
		b.control.Store(nil)
		return
	}
	b.control.Store(&controlRef{f: f})
}

// PublishControl sends msg to the control handler of every node connected
// to this Redis, this one included. Control messages are not stored: a
// node whose pub/sub connection is down when msg is sent misses it.
func (b *Broker) PublishControl(ctx context.Context, msg []byte) error {
	ctx, cancel, err := b.e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return b.e.wrap("publish control", b.e.rdb.Publish(ctx, b.controlName(), msg).Err())
}

const publishScript = `
local e = redis.call('HGET', KEYS[1], 'e')
if not e then
  e = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', e, 'o', 0)
end
local o = string.format('%d', redis.call('HINCRBY', KEYS[1], 'o', 1))
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, o .. '-0', 'd', ARGV[2], 't', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
else
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[6], o .. ':' .. e .. ':' .. ARGV[5] .. ':' .. ARGV[2])
return {e, o}
`

const historyScript = `
local m = redis.call('HMGET', KEYS[1], 'e', 'o')
if not m[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', ARGV[1], 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {ARGV[1], '0'}
end
local e, o = m[1], m[2]
if ARGV[3] == '' or ARGV[3] ~= e then return {e, o} end
local since, off = tonumber(ARGV[4]), tonumber(o)
if since >= off then return {e, o} end
local n = off - since
local limit = tonumber(ARGV[6])
if limit > 0 and limit < n then n = limit end
return {e, o, redis.call('XRANGE', KEYS[2], ARGV[5], '+', 'COUNT', n)}
`

var (
	publishLua = goredis.NewScript(publishScript)
	historyLua = goredis.NewScript(historyScript)
)

// Publish appends data to the channel's stream and publishes it to every
// node subscribed to the channel. It returns the publication's position.
// The stream is kept opts.HistoryTTL (Options.HistoryTTL when 0) after
// this publication, with its last opts.HistorySize publications. A channel
// whose stream is gone (never published to, expired, evicted, flushed)
// starts a new one with a fresh epoch. When Publish fails with
// ErrUnavailable the publication may or may not have been made.
func (b *Broker) Publish(ctx context.Context, channel string, data []byte, opts broker.PublishOptions) (broker.Position, error) {
	if err := b.check(channel); err != nil {
		return broker.Position{}, err
	}
	if opts.HistorySize < 0 {
		return broker.Position{}, fmt.Errorf("broker: negative history size %d", opts.HistorySize)
	}
	if opts.HistoryTTL < 0 {
		return broker.Position{}, fmt.Errorf("broker: negative history ttl %v", opts.HistoryTTL)
	}
	ttl := opts.HistoryTTL
	if ttl == 0 {
		ttl = b.e.opts.HistoryTTL
	}
	ctx, cancel, err := b.e.op(ctx)
	if err != nil {
		return broker.Position{}, err
	}
	defer cancel()
	now := time.Now().UnixNano()
	res, err := publishLua.Run(ctx, b.e.rdb,
		[]string{b.metaKey(channel), b.streamKey(channel)},
		randomID(), data, opts.HistorySize, durMillis(ttl), now, b.pubName(channel),
	).Slice()
	if err != nil {
		return broker.Position{}, b.e.wrap("publish", err)
	}
	return parsePosition(res)
}

// Subscribe makes this node receive the channel's publications. It
// returns once Redis confirmed the subscription and the node noted the
// channel's position (starting a stream as History does when the channel
// has none), so every publication made after Subscribe returns is
// delivered. Subscribing twice is the same as once.
func (b *Broker) Subscribe(ctx context.Context, channel string) error {
	if err := b.check(channel); err != nil {
		return err
	}
	ctx, cancel, err := b.e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	b.mu.Lock()
	st, ok := b.channels[channel]
	if !ok {
		st = &chanState{ready: make(chan struct{})}
		b.channels[channel] = st
	}
	ps := b.ps
	b.mu.Unlock()
	// While the pub/sub connection is down, the next one subscribes to
	// every channel in b.channels; wait for it within the timeout.
	if !ok && ps != nil {
		if err := ps.Subscribe(ctx, b.pubName(channel)); err != nil {
			b.forget(channel, st)
			return b.e.wrap("subscribe", err)
		}
	}
	select {
	case <-st.ready:
		return nil
	case <-ctx.Done():
		if !ok {
			b.forget(channel, st)
			_ = b.unsubscribeRedis(channel)
		}
		return fmt.Errorf("%w: subscribe: %w", ErrUnavailable, ctx.Err())
	}
}

// forget removes st from the subscribed channels unless it was replaced.
func (b *Broker) forget(channel string, st *chanState) {
	b.mu.Lock()
	if b.channels[channel] == st {
		delete(b.channels, channel)
	}
	b.mu.Unlock()
}

// unsubscribeRedis tells Redis to stop sending channel, unless the node
// subscribed to it again meanwhile.
func (b *Broker) unsubscribeRedis(channel string) error {
	b.mu.Lock()
	_, again := b.channels[channel]
	ps := b.ps
	b.mu.Unlock()
	if again || ps == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.e.opTO)
	defer cancel()
	return ps.Unsubscribe(ctx, b.pubName(channel))
}

// Unsubscribe stops delivery of the channel to this node at once. It
// returns an error if Redis could not be told, in which case Redis may
// keep sending the channel, which the node ignores, until the pub/sub
// connection is next re-established.
func (b *Broker) Unsubscribe(ctx context.Context, channel string) error {
	if err := b.check(channel); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.mu.Lock()
	_, ok := b.channels[channel]
	delete(b.channels, channel)
	b.mu.Unlock()
	if !ok {
		return nil
	}
	return b.e.wrap("unsubscribe", b.unsubscribeRedis(channel))
}

// History implements broker.Broker.History with the MemoryBroker's
// semantics: on a channel without a stream it starts one (fresh epoch,
// offset 0, kept Options.HistoryTTL, not extended by History), and
// Complete is true only when the result provably holds every publication
// after req.Since. Streams expire by Redis TTL, in Redis's clock.
func (b *Broker) History(ctx context.Context, channel string, req broker.HistoryRequest) (broker.HistoryResult, error) {
	if err := b.check(channel); err != nil {
		return broker.HistoryResult{}, err
	}
	if req.Limit < 0 {
		return broker.HistoryResult{}, fmt.Errorf("broker: negative history limit %d", req.Limit)
	}
	ctx, cancel, err := b.e.op(ctx)
	if err != nil {
		return broker.HistoryResult{}, err
	}
	defer cancel()
	return b.history(ctx, channel, req)
}

func (b *Broker) history(ctx context.Context, channel string, req broker.HistoryRequest) (broker.HistoryResult, error) {
	var sinceEpoch, start string
	var sinceOffset uint64
	if req.Since != nil {
		sinceEpoch, sinceOffset = req.Since.Epoch, req.Since.Offset
		if sinceOffset < 1<<63 {
			start = strconv.FormatUint(sinceOffset+1, 10) + "-0"
		} else {
			sinceEpoch = ""
		}
	}
	raw, err := historyLua.Run(ctx, b.e.rdb,
		[]string{b.metaKey(channel), b.streamKey(channel)},
		randomID(), durMillis(b.e.opts.HistoryTTL), sinceEpoch, sinceOffset, start, req.Limit,
	).Slice()
	if err != nil {
		return broker.HistoryResult{}, b.e.wrap("history", err)
	}
	pos, err := parsePosition(raw)
	if err != nil {
		return broker.HistoryResult{}, err
	}
	res := broker.HistoryResult{Position: pos}
	since := req.Since
	if since == nil || since.Epoch != pos.Epoch || since.Offset > pos.Offset {
		return res, nil
	}
	missed := pos.Offset - since.Offset
	if missed == 0 {
		res.Complete = true
		return res, nil
	}
	if len(raw) < 3 {
		return res, nil
	}
	entries, _ := raw[2].([]any)
	if len(entries) > 0 {
		res.Publications = make([]broker.Publication, 0, len(entries))
	}
	for _, en := range entries {
		p, err := parseEntry(channel, pos.Epoch, en)
		if err != nil {
			return broker.HistoryResult{}, err
		}
		res.Publications = append(res.Publications, p)
	}
	res.Complete = uint64(len(res.Publications)) == missed && contiguous(res.Publications, since.Offset+1)
	return res, nil
}

// contiguous reports whether pubs have offsets first, first+1, ….
func contiguous(pubs []broker.Publication, first uint64) bool {
	for i, p := range pubs {
		if p.Offset != first+uint64(i) {
			return false
		}
	}
	return true
}

// Close stops delivery and releases the broker; the Engine's Close does
// the same. Other methods then return ErrClosed.
func (b *Broker) Close() error { return b.e.Close() }

// Ping reports whether Redis answers.
func (b *Broker) Ping(ctx context.Context) error { return b.e.Ping(ctx) }

// check returns the error every channel method starts with.
func (b *Broker) check(channel string) error {
	if b.e.closed() {
		return ErrClosed
	}
	if channel == "" {
		return errors.New("broker: empty channel name")
	}
	return nil
}

// shutdown closes the pub/sub connection for good.
func (b *Broker) shutdown() {
	b.mu.Lock()
	b.down = true
	ps := b.ps
	b.ps = nil
	b.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
}

// run keeps a pub/sub connection up until Close, reconnecting with
// backoff.
func (b *Broker) run() {
	defer b.e.wg.Done()
	const minBackoff, maxBackoff = 20 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	for b.e.ctx.Err() == nil {
		start := time.Now()
		err := b.session()
		if b.e.ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = minBackoff
		}
		b.e.logger().Warn("redis pub/sub connection lost; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-b.e.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session runs one pub/sub connection until it fails.
func (b *Broker) session() error {
	if h := b.sessionHook.Load(); h != nil {
		(*h)()
	}
	ps := b.e.rdb.Subscribe(b.e.ctx)
	defer ps.Close()
	b.mu.Lock()
	if b.down {
		b.mu.Unlock()
		return ErrClosed
	}
	names := make([]string, 0, len(b.channels)+1)
	names = append(names, b.controlName())
	for ch := range b.channels {
		names = append(names, b.pubName(ch))
	}
	b.ps = ps
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if b.ps == ps {
			b.ps = nil
		}
		b.mu.Unlock()
	}()

	ctx, cancel := context.WithTimeout(b.e.ctx, b.e.opTO)
	err := ps.Subscribe(ctx, names...)
	cancel()
	if err != nil {
		return err
	}
	pingEvery := b.e.opts.ReadTimeout
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(b.e.ctx, pingEvery)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				pinged = true
				if err := ps.Ping(b.e.ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				if m.Channel == b.controlName() {
					b.connects.Add(1)
				} else {
					b.onSubscribed(m.Channel)
				}
			}
		case *goredis.Message:
			b.onMessage(m)
		}
	}
}

// state returns the state of the subscribed channel whose pub/sub name is
// name, or nil.
func (b *Broker) state(name string) (string, *chanState) {
	ch, ok := strings.CutPrefix(name, b.e.key("pub:"))
	if !ok {
		return "", nil
	}
	b.mu.Lock()
	st := b.channels[ch]
	b.mu.Unlock()
	return ch, st
}

// onSubscribed runs when Redis confirms a subscription: the first time it
// notes the channel's position, after a reconnect it delivers what the
// node missed meanwhile.
func (b *Broker) onSubscribed(name string) {
	ch, st := b.state(name)
	if st == nil {
		return
	}
	b.resync(ch, st)
	if !st.isReady {
		st.isReady = true
		close(st.ready)
	}
}

// resync brings st up to the channel's current position.
func (b *Broker) resync(ch string, st *chanState) {
	ctx, cancel := context.WithTimeout(b.e.ctx, b.e.opTO)
	defer cancel()
	req := broker.HistoryRequest{}
	if st.synced {
		req.Since = &broker.Position{Epoch: st.epoch, Offset: st.offset}
	}
	res, err := b.history(ctx, ch, req)
	if err != nil {
		if st.synced {
			b.e.logger().Warn("redis: cannot check a channel for missed publications", "channel", ch, "err", err)
			b.loss(ch)
		}
		return
	}
	if !st.synced {
		st.synced, st.epoch, st.offset = true, res.Position.Epoch, res.Position.Offset
		return
	}
	if res.Position.Epoch == st.epoch && res.Position.Offset == st.offset {
		return
	}
	if res.Complete {
		for _, p := range res.Publications {
			b.deliver(st, p)
		}
		return
	}
	b.loss(ch)
	st.epoch, st.offset = res.Position.Epoch, res.Position.Offset
}

// onMessage handles one pub/sub message: a control message or a
// publication.
func (b *Broker) onMessage(m *goredis.Message) {
	if m.Channel == b.controlName() {
		if c := b.control.Load(); c != nil {
			c.f([]byte(m.Payload))
		}
		return
	}
	ch, st := b.state(m.Channel)
	if st == nil {
		return
	}
	p, err := decodePublication(ch, m.Payload)
	if err != nil {
		b.e.logger().Warn("redis: undecodable publication", "channel", ch, "err", err)
		return
	}
	switch {
	case !st.synced:
		// The baseline could not be read at subscribe time.
	case p.Epoch != st.epoch:
		b.loss(ch)
	case p.Offset <= st.offset:
		return // already delivered from history
	case p.Offset > st.offset+1:
		b.fill(ch, st, p.Offset)
	}
	b.deliver(st, p)
}

// fill delivers the publications between st and upto (exclusive) from
// history, or reports a loss.
func (b *Broker) fill(ch string, st *chanState, upto uint64) {
	ctx, cancel := context.WithTimeout(b.e.ctx, b.e.opTO)
	defer cancel()
	need := upto - st.offset - 1
	since := broker.Position{Epoch: st.epoch, Offset: st.offset}
	res, err := b.history(ctx, ch, broker.HistoryRequest{Since: &since, Limit: int(min(need, 1<<30))})
	if err == nil && res.Position.Epoch == st.epoch && uint64(len(res.Publications)) == need && contiguous(res.Publications, st.offset+1) {
		for _, p := range res.Publications {
			b.deliver(st, p)
		}
		return
	}
	if err != nil {
		b.e.logger().Warn("redis: cannot fetch missed publications", "channel", ch, "err", err)
	}
	b.loss(ch)
}

// deliver passes p to the handler and records it as delivered.
func (b *Broker) deliver(st *chanState, p broker.Publication) {
	st.synced, st.epoch, st.offset = true, p.Epoch, p.Offset
	if h := b.handler.Load(); h != nil {
		h.h.HandlePublication(p)
	}
}

// loss tells the handler that publications of ch were lost.
func (b *Broker) loss(ch string) {
	if h := b.handler.Load(); h != nil {
		if lh, ok := h.h.(broker.LossHandler); ok {
			lh.HandleLoss(ch)
		}
	}
}

// decodePublication parses "offset:epoch:unixnano:data".
func decodePublication(ch, payload string) (broker.Publication, error) {
	off, rest, ok1 := strings.Cut(payload, ":")
	epoch, rest, ok2 := strings.Cut(rest, ":")
	ts, data, ok3 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || !ok3 {
		return broker.Publication{}, errors.New("malformed payload")
	}
	o, err := strconv.ParseUint(off, 10, 64)
	if err != nil {
		return broker.Publication{}, fmt.Errorf("offset: %w", err)
	}
	ns, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return broker.Publication{}, fmt.Errorf("time: %w", err)
	}
	return broker.Publication{Channel: ch, Offset: o, Epoch: epoch, Data: []byte(data), Time: time.Unix(0, ns)}, nil
}

// parsePosition reads {epoch, offset, …} from a script reply.
func parsePosition(raw []any) (broker.Position, error) {
	if len(raw) < 2 {
		return broker.Position{}, errors.New("redis: malformed script reply")
	}
	e, _ := raw[0].(string)
	o, _ := raw[1].(string)
	off, err := strconv.ParseUint(o, 10, 64)
	if e == "" || err != nil {
		return broker.Position{}, fmt.Errorf("redis: malformed position %v", raw[:2])
	}
	return broker.Position{Offset: off, Epoch: e}, nil
}

// parseEntry reads one XRANGE entry: [id, [field, value, …]].
func parseEntry(ch, epoch string, en any) (broker.Publication, error) {
	bad := errors.New("redis: malformed stream entry")
	pair, ok := en.([]any)
	if !ok || len(pair) != 2 {
		return broker.Publication{}, bad
	}
	id, _ := pair[0].(string)
	off, _, _ := strings.Cut(id, "-")
	o, err := strconv.ParseUint(off, 10, 64)
	if err != nil {
		return broker.Publication{}, bad
	}
	fields, _ := pair[1].([]any)
	p := broker.Publication{Channel: ch, Offset: o, Epoch: epoch}
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch k {
		case "d":
			p.Data = []byte(v)
		case "t":
			ns, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return broker.Publication{}, bad
			}
			p.Time = time.Unix(0, ns)
		}
	}
	return p, nil
}

// durMillis converts d to whole milliseconds, rounding up, at least 1.
func durMillis(d time.Duration) int64 {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return max(int64(ms), 1)
}
