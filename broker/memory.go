package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// defaultMemoryHistoryTTL is the idle lifetime of a stream when neither
// PublishOptions.HistoryTTL nor MemoryConfig.DefaultHistoryTTL is set.
const defaultMemoryHistoryTTL = 5 * time.Minute

// memoryShards is how many mutex-guarded maps hold the channels, so that
// unrelated channels rarely contend for the same lock.
const memoryShards = 64

// maxInitialRing caps the capacity allocated up front for a channel's
// history; larger histories grow as publications arrive.
const maxInitialRing = 64

var errEmptyChannel = errors.New("broker: empty channel name")

// MemoryConfig configures a MemoryBroker. The zero value is usable.
type MemoryConfig struct {
	// DefaultHistoryTTL is how long an idle stream is kept when
	// PublishOptions.HistoryTTL is 0. It applies to streams with history
	// and also to streams without (HistorySize 0), which keep only their
	// epoch and offset. Zero or negative means 5 minutes.
	DefaultHistoryTTL time.Duration
	// Now is the clock used to stamp publications and expire streams.
	// Nil means time.Now.
	Now func() time.Time
}

// MemoryBroker is a Broker that keeps everything in the memory of one node:
// it delivers publications to its own Handler and keeps per-channel history
// in ring buffers. It is safe for concurrent use. Create it with NewMemory.
//
// A channel has a stream once it is published to or its History is asked
// for: a random epoch chosen when the stream is created, an offset that
// grows by one per publication (0 for a stream History started), and the
// last PublishOptions.HistorySize publications. The options of the latest
// publication decide how many are kept and for how long. A stream expires
// HistoryTTL (or MemoryConfig.DefaultHistoryTTL) after its last
// publication, and a stream started by History DefaultHistoryTTL after it
// was started; History itself does not extend a stream's life. An expired
// stream is dropped, either lazily when the channel is next used or by
// Sweep, and the next Publish or History starts a new stream with a new
// epoch (Publish then returns offset 1). Streams without history expire
// the same way, so channels nobody publishes to any more do not hold
// memory forever.
//
// MemoryBroker starts no goroutines. Call Sweep periodically (for example
// from a ticker whose owner stops it on shutdown) to release streams of
// channels that are never touched again.
//
// Publish stores data without copying it, and History and the Handler see
// that same slice: callers must not modify data after Publish, and
// receivers must not modify Publication.Data.
//
// The Handler is called synchronously by Publish, while the channel's lock
// is held, so deliveries for one channel happen one at a time in offset
// order even with concurrent publishers; different channels are delivered
// concurrently. The Handler must therefore not block and must not call
// any method of the MemoryBroker (doing so for the same channel deadlocks,
// and for other channels can deadlock against a concurrent publisher);
// hand publications off to a queue instead. A panic in the Handler
// propagates to the caller of Publish; the publication stays recorded.
type MemoryBroker struct {
	now        func() time.Time
	defaultTTL time.Duration
	handler    atomic.Pointer[handlerRef]
	closed     atomic.Bool
	shards     [memoryShards]memoryShard
}

var _ Broker = (*MemoryBroker)(nil)

// handlerRef boxes a Handler so it can be swapped atomically.
type handlerRef struct{ h Handler }

// memoryShard holds the channels whose names hash to it. mu guards only the
// map; each channel has its own lock. Code never takes a channel's lock
// while holding a shard's lock, or the other way round.
type memoryShard struct {
	mu       sync.Mutex
	channels map[string]*memoryChannel
}

// memoryChannel is the node's state for one channel: whether the node
// subscribed to it, and its stream. A channel is removed from its shard
// once it has neither. A removed channel is marked dead first; whoever
// finds a dead channel removes it from the map and looks the name up again.
type memoryChannel struct {
	name string

	mu         sync.Mutex
	dead       bool
	subscribed bool

	// epoch is "" when the channel has no stream.
	epoch     string
	offset    uint64
	expiresAt time.Time
	// size is the history size the ring is shaped for. While the ring is
	// not full head is 0; once full, ring[head] is the oldest publication.
	size int
	ring []Publication
	head int
}

// NewMemory returns a MemoryBroker configured by cfg.
func NewMemory(cfg MemoryConfig) *MemoryBroker {
	b := &MemoryBroker{now: cfg.Now, defaultTTL: cfg.DefaultHistoryTTL}
	if b.now == nil {
		b.now = time.Now
	}
	if b.defaultTTL <= 0 {
		b.defaultTTL = defaultMemoryHistoryTTL
	}
	return b
}

// SetHandler sets the handler that receives publications of subscribed
// channels; nil stops delivery. Publications to a subscribed channel before
// a handler is set are kept in history but delivered to no one.
func (b *MemoryBroker) SetHandler(h Handler) {
	if h == nil {
		b.handler.Store(nil)
		return
	}
	b.handler.Store(&handlerRef{h: h})
}

// Publish appends data to the channel's stream and, if this node subscribed
// to the channel, passes the publication to the Handler before returning.
// It returns the publication's position. opts.HistorySize and
// opts.HistoryTTL must not be negative. After Close it returns ErrClosed.
func (b *MemoryBroker) Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (Position, error) {
	if err := b.check(ctx, channel); err != nil {
		return Position{}, err
	}
	if opts.HistorySize < 0 {
		return Position{}, fmt.Errorf("broker: negative history size %d", opts.HistorySize)
	}
	if opts.HistoryTTL < 0 {
		return Position{}, fmt.Errorf("broker: negative history ttl %v", opts.HistoryTTL)
	}
	ttl := opts.HistoryTTL
	if ttl == 0 {
		ttl = b.defaultTTL
	}
	s := b.shard(channel)
	for {
		c, err := b.getOrCreate(s, channel)
		if err != nil {
			return Position{}, err
		}
		if pos, ok := b.publishTo(c, data, opts.HistorySize, ttl); ok {
			return pos, nil
		}
		s.remove(c)
	}
}

// publishTo records one publication on c and delivers it. It reports false,
// doing nothing, when c is dead.
func (b *MemoryBroker) publishTo(c *memoryChannel, data []byte, size int, ttl time.Duration) (Position, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return Position{}, false
	}
	now := b.now()
	switch {
	case c.epoch == "":
		c.epoch = newEpoch("")
	case c.expired(now):
		old := c.epoch
		c.dropStream()
		c.epoch = newEpoch(old)
	}
	c.offset++
	c.expiresAt = now.Add(ttl)
	p := Publication{Channel: c.name, Offset: c.offset, Epoch: c.epoch, Data: data, Time: now}
	c.push(p, size)
	if c.subscribed {
		if h := b.handler.Load(); h != nil {
			h.h.HandlePublication(p)
		}
	}
	return Position{Offset: c.offset, Epoch: c.epoch}, true
}

// Subscribe makes Publish deliver the channel's publications to the
// Handler. Subscribing twice is the same as once.
func (b *MemoryBroker) Subscribe(ctx context.Context, channel string) error {
	if err := b.check(ctx, channel); err != nil {
		return err
	}
	s := b.shard(channel)
	for {
		c, err := b.getOrCreate(s, channel)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			s.remove(c)
			continue
		}
		c.subscribed = true
		c.mu.Unlock()
		return nil
	}
}

// Unsubscribe stops delivery of the channel to the Handler. The channel's
// stream and history are kept until they expire. Unsubscribing from a
// channel the node is not subscribed to does nothing.
func (b *MemoryBroker) Unsubscribe(ctx context.Context, channel string) error {
	if err := b.check(ctx, channel); err != nil {
		return err
	}
	s := b.shard(channel)
	for {
		c := s.get(channel)
		if c == nil {
			return nil
		}
		done, dead := b.unsubscribeFrom(c)
		if dead {
			s.remove(c)
		}
		if done {
			return nil
		}
	}
}

// unsubscribeFrom clears c's subscription, marking c dead when it has no
// stream left. It reports whether it did so (false when c was already dead)
// and whether c is dead and must leave its shard.
func (b *MemoryBroker) unsubscribeFrom(c *memoryChannel) (done, dead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return false, true
	}
	c.subscribed = false
	if c.epoch != "" && c.expired(b.now()) {
		c.dropStream()
	}
	c.dead = c.epoch == ""
	return true, c.dead
}

// History returns the channel's current position and, when req.Since is
// set, the retained publications after it, oldest first, at most req.Limit
// of them (0 means all retained). req.Limit must not be negative.
//
// The result reports Complete only when it provably holds every
// publication after req.Since, that is, all of:
//   - req.Since is not nil;
//   - the channel has a live stream and req.Since.Epoch equals its epoch;
//   - req.Since.Offset is not beyond the current offset;
//   - history still retains the publication right after req.Since.Offset
//     (or there is none: req.Since is the current position);
//   - req.Limit did not cut the result.
//
// On a channel without a stream (never published to, or its stream
// expired) History starts one: a fresh random epoch, different from the
// expired one, offset 0, expiring MemoryConfig.DefaultHistoryTTL from now.
// It answers that position with no publications, and Complete false since
// req.Since cannot be in the new epoch. A caller that takes this position
// before the channel's first publication, say when subscribing, can later
// recover from it: while the stream lives, req.Since {0, epoch} returns
// every publication made since, with Complete true, and once the stream
// expired the epoch differs and Complete is false. The empty epoch is never
// a stream's epoch, so req.Since with Epoch "" is never Complete. When the
// epoch differs or req.Since.Offset is beyond the current offset, no
// publications are returned, since offsets of other epochs cannot be
// compared. When history was trimmed, the publications still retained
// after req.Since are returned with Complete false.
//
// A stream started by History on a channel this node is not subscribed to
// is released by Sweep once it expires, like any other.
//
// Publications share their Data with the stored ones; do not modify it.
func (b *MemoryBroker) History(ctx context.Context, channel string, req HistoryRequest) (HistoryResult, error) {
	if err := b.check(ctx, channel); err != nil {
		return HistoryResult{}, err
	}
	if req.Limit < 0 {
		return HistoryResult{}, fmt.Errorf("broker: negative history limit %d", req.Limit)
	}
	s := b.shard(channel)
	for {
		c, err := b.getOrCreate(s, channel)
		if err != nil {
			return HistoryResult{}, err
		}
		if res, ok := b.historyOf(c, req); ok {
			return res, nil
		}
		s.remove(c)
	}
}

// historyOf answers req from c, first starting a stream if c has none (or
// its stream expired). It reports false when c is dead.
func (b *MemoryBroker) historyOf(c *memoryChannel, req HistoryRequest) (HistoryResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return HistoryResult{}, false
	}
	now := b.now()
	old := c.epoch
	if old != "" && c.expired(now) {
		c.dropStream()
	}
	if c.epoch == "" {
		// Start the stream now, so a subscriber holds a real epoch and can
		// later recover from offset 0 if nothing was lost. The new epoch
		// must differ from an expired one, or a position taken in the
		// expired stream would pass as current.
		c.epoch = newEpoch(old)
		c.expiresAt = now.Add(b.defaultTTL)
	}
	res := HistoryResult{Position: Position{Offset: c.offset, Epoch: c.epoch}}
	since := req.Since
	if since == nil || since.Epoch != c.epoch || since.Offset > c.offset {
		return res, true
	}
	missed := c.offset - since.Offset
	retained := uint64(len(c.ring))
	res.Complete = true
	if missed > retained {
		// The publication right after since was trimmed.
		res.Complete = false
		missed = retained
	}
	n := missed
	if req.Limit > 0 && n > uint64(req.Limit) {
		n = uint64(req.Limit)
		res.Complete = false
	}
	if n == 0 {
		return res, true
	}
	res.Publications = make([]Publication, n)
	first := retained - missed
	for i := range n {
		res.Publications[i] = c.at(first + i)
	}
	return res, true
}

// Sweep drops streams whose history TTL passed (the channel's next Publish
// or History starts a new epoch) and returns how many, counting streams
// that History started. It also releases channels left with neither a
// stream nor a subscription, so channels that were only asked for their
// History do not accumulate. Streams found expired by other methods are
// dropped there and not counted here.
func (b *MemoryBroker) Sweep() int {
	if b.closed.Load() {
		return 0
	}
	now := b.now()
	dropped := 0
	var batch []*memoryChannel
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		batch = batch[:0]
		for _, c := range s.channels {
			batch = append(batch, c)
		}
		s.mu.Unlock()
		for _, c := range batch {
			expired, dead := c.sweep(now)
			if expired {
				dropped++
			}
			if dead {
				s.remove(c)
			}
		}
	}
	clear(batch)
	return dropped
}

// Close drops all streams and subscriptions. After Close returns the
// Handler is not called again, and every method but Sweep returns
// ErrClosed; Sweep returns 0. Close waits for deliveries in progress.
func (b *MemoryBroker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		m := s.channels
		s.channels = nil
		s.mu.Unlock()
		for _, c := range m {
			c.mu.Lock()
			c.dead = true
			c.subscribed = false
			c.dropStream()
			c.mu.Unlock()
		}
	}
	b.handler.Store(nil)
	return nil
}

// Ping reports whether the broker serves: ErrClosed after Close, else nil.
// It never blocks; readiness checks call it.
func (b *MemoryBroker) Ping(context.Context) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return nil
}

// check returns the error, if any, that every call but Sweep and Close
// starts with.
func (b *MemoryBroker) check(ctx context.Context, channel string) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if channel == "" {
		return errEmptyChannel
	}
	return nil
}

// shard returns the shard of channel, chosen by its 32-bit FNV-1a hash.
func (b *MemoryBroker) shard(channel string) *memoryShard {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(channel); i++ {
		h ^= uint32(channel[i])
		h *= prime32
	}
	return &b.shards[h%memoryShards]
}

// getOrCreate returns the channel named channel in s, adding it if absent.
// It returns ErrClosed once the broker is closed.
func (b *MemoryBroker) getOrCreate(s *memoryShard, channel string) (*memoryChannel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	c := s.channels[channel]
	if c == nil {
		if s.channels == nil {
			s.channels = make(map[string]*memoryChannel)
		}
		c = &memoryChannel{name: channel}
		s.channels[channel] = c
	}
	return c, nil
}

// get returns the channel named channel in s, or nil.
func (s *memoryShard) get(channel string) *memoryChannel {
	s.mu.Lock()
	c := s.channels[channel]
	s.mu.Unlock()
	return c
}

// remove deletes c from s unless it was already replaced.
func (s *memoryShard) remove(c *memoryChannel) {
	s.mu.Lock()
	if s.channels[c.name] == c {
		delete(s.channels, c.name)
	}
	s.mu.Unlock()
}

// expired reports whether c's stream outlived its TTL at now. c.mu must be
// held and c must have a stream.
func (c *memoryChannel) expired(now time.Time) bool {
	return !now.Before(c.expiresAt)
}

// dropStream forgets c's stream. c.mu must be held.
func (c *memoryChannel) dropStream() {
	c.epoch = ""
	c.offset = 0
	c.expiresAt = time.Time{}
	c.size = 0
	c.ring = nil
	c.head = 0
}

// sweep drops c's stream if it expired at now and marks c dead when it has
// neither stream nor subscription. It reports whether a stream was dropped
// and whether c is dead and must leave its shard.
func (c *memoryChannel) sweep(now time.Time) (expired, dead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return false, true
	}
	if c.epoch != "" && c.expired(now) {
		c.dropStream()
		expired = true
	}
	if c.epoch == "" && !c.subscribed {
		c.dead = true
	}
	return expired, c.dead
}

// push appends p to the history, first reshaping it for size. c.mu must be
// held.
func (c *memoryChannel) push(p Publication, size int) {
	if size != c.size {
		c.resize(size)
	}
	if size == 0 {
		return
	}
	if len(c.ring) < size {
		c.ring = append(c.ring, p)
		return
	}
	c.ring[c.head] = p
	c.head++
	if c.head == size {
		c.head = 0
	}
}

// resize reshapes the history to keep at most size publications, keeping
// the newest. c.mu must be held.
func (c *memoryChannel) resize(size int) {
	c.size = size
	if size == 0 {
		c.ring = nil
		c.head = 0
		return
	}
	keep := min(len(c.ring), size)
	ring := make([]Publication, keep, max(keep, min(size, maxInitialRing)))
	first := uint64(len(c.ring) - keep)
	for i := range ring {
		ring[i] = c.at(first + uint64(i))
	}
	c.ring = ring
	c.head = 0
}

// at returns the i-th retained publication, 0 being the oldest. c.mu must be
// held and i must be below len(c.ring).
func (c *memoryChannel) at(i uint64) Publication {
	return c.ring[(uint64(c.head)+i)%uint64(len(c.ring))]
}

// newEpoch returns a random epoch, 8 bytes in hex, different from avoid.
func newEpoch(avoid string) string {
	var buf [8]byte
	for {
		// crypto/rand.Read never fails; it crashes the program instead.
		_, _ = rand.Read(buf[:])
		if e := hex.EncodeToString(buf[:]); e != avoid {
			return e
		}
	}
}
