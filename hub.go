package livegate

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/metrics"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

const hubShards = 64

// hub fans publications out to this node's subscriptions. Channels are
// spread over mutex-guarded shards; the node subscribes to the broker once
// per channel while it has local subscribers.
type hub struct {
	broker  broker.Broker
	metrics *metrics.Metrics // nil: off
	now     func() time.Time
	seed    maphash.Seed
	shards  [hubShards]hubShard
}

type hubShard struct {
	// subMu serialises broker Subscribe/Unsubscribe for the shard's
	// channels. It is never held by HandlePublication, so a broker may
	// deliver while holding its own locks without deadlocking against a
	// subscribe in progress.
	subMu sync.Mutex
	// mu guards channels.
	mu       sync.RWMutex
	channels map[string]map[*subscription]struct{}
}

func newHub(b broker.Broker, m *metrics.Metrics, now func() time.Time) *hub {
	h := &hub{broker: b, metrics: m, now: now, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].channels = make(map[string]map[*subscription]struct{})
	}
	return h
}

func (h *hub) shard(channel string) *hubShard {
	return &h.shards[maphash.String(h.seed, channel)%hubShards]
}

// subscription is one connection's membership of one channel. Until it is
// live, pushes are held in pending so the subscribe reply (with recovered
// publications) goes out first and nothing is lost or duplicated.
type subscription struct {
	c       *conn
	channel string
	live    atomic.Bool
	// answered is set just before the subscribe reply is queued (live
	// only after it and the held pushes): Channels counts the
	// subscription from the moment its client can learn of it.
	answered atomic.Bool
	// presence and joinLeave are the namespace's settings when the
	// subscription was made.
	presence, joinLeave bool

	mu      sync.Mutex
	pending []pendingPush
	// from is the position the subscription went live at (set before
	// live): a publication at or before it was in the reply already.
	from broker.Position
}

// stale reports whether a publication was already covered by the
// subscribe reply (a broker may deliver it after History read it).
func (s *subscription) stale(offset uint64, epoch string) bool {
	return epoch == s.from.Epoch && offset <= s.from.Offset
}

type pendingPush struct {
	frame  []byte
	offset uint64
	epoch  string
	// notice frames (resubscribe, join, leave) are sent whatever the
	// position.
	notice bool
}

// maxPending bounds pushes held while a subscription recovers.
const maxPending = 1024

func (h *hub) add(ctx context.Context, s *subscription) error {
	sh := h.shard(s.channel)
	sh.subMu.Lock()
	defer sh.subMu.Unlock()
	sh.mu.RLock()
	_, known := sh.channels[s.channel]
	sh.mu.RUnlock()
	if !known {
		if err := h.broker.Subscribe(ctx, s.channel); err != nil {
			h.metrics.BrokerError("subscribe")
			return err
		}
	}
	sh.mu.Lock()
	subs := sh.channels[s.channel]
	if subs == nil {
		subs = make(map[*subscription]struct{})
		sh.channels[s.channel] = subs
	}
	subs[s] = struct{}{}
	sh.mu.Unlock()
	return nil
}

func (h *hub) remove(s *subscription) {
	sh := h.shard(s.channel)
	sh.subMu.Lock()
	defer sh.subMu.Unlock()
	sh.mu.Lock()
	subs := sh.channels[s.channel]
	_, ok := subs[s]
	delete(subs, s)
	last := ok && len(subs) == 0
	if last {
		delete(sh.channels, s.channel)
	}
	sh.mu.Unlock()
	if last {
		if err := h.broker.Unsubscribe(context.Background(), s.channel); err != nil {
			h.metrics.BrokerError("unsubscribe")
			s.c.g.cfg.Logger.Warn("broker unsubscribe failed", "err", err)
		}
	}
}

// HandlePublication encodes p once and queues the same bytes to every
// local subscriber. It never blocks: a subscriber whose queue is full is
// disconnected as a slow consumer. With metrics on, it counts the frames
// queued and observes, once per publication, the time from p.Time to the
// end of the fan-out.
func (h *hub) HandlePublication(p broker.Publication) {
	sh := h.shard(p.Channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	subs := sh.channels[p.Channel]
	if len(subs) == 0 {
		return
	}
	// Subscribers of one internal channel all address it by the same
	// client-facing name (tenant-scoped channels drop the tenant part).
	name := policy.External(p.Channel)
	frame := protocol.AppendPush(make([]byte, 0, protocol.PushSize(name, p.Offset, p.Epoch, p.Data)),
		name, p.Offset, p.Epoch, p.Data)
	queued := 0
	for s := range subs {
		if s.live.Load() {
			if s.stale(p.Offset, p.Epoch) {
				continue
			}
			if s.c.send(frame) {
				queued++
			}
			continue
		}
		if s.hold(frame, p.Offset, p.Epoch) {
			queued++
		}
	}
	if h.metrics != nil {
		h.metrics.Delivered(queued)
		if !p.Time.IsZero() {
			h.metrics.DeliveryLatency(h.now().Sub(p.Time))
		}
	}
}

// hold queues a push for a subscription that is still recovering, or
// sends it if the subscription went live meanwhile; it reports whether
// it sent it.
func (s *subscription) hold(frame []byte, offset uint64, epoch string) (sent bool) {
	s.mu.Lock()
	if s.live.Load() {
		s.mu.Unlock()
		if s.stale(offset, epoch) {
			return false
		}
		return s.c.send(frame)
	}
	if len(s.pending) >= maxPending {
		s.mu.Unlock()
		s.c.g.cfg.Metrics.Dropped(metrics.DropRecoveryOverflow)
		s.c.closeSlow()
		return false
	}
	s.pending = append(s.pending, pendingPush{frame: frame, offset: offset, epoch: epoch})
	s.mu.Unlock()
	return false
}

// goLive queues reply (unless nil), then the held pushes newer than pos, then lets
// pushes flow directly.
func (s *subscription) goLive(reply []byte, pos broker.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answered.Store(true)
	if reply != nil {
		s.c.send(reply)
	}
	sent := 0
	for _, p := range s.pending {
		if (p.notice || p.epoch != pos.Epoch || p.offset > pos.Offset) && s.c.send(p.frame) {
			sent++
		}
	}
	s.c.g.cfg.Metrics.Delivered(sent)
	s.pending = nil
	s.from = pos
	s.live.Store(true)
}

// HandleLoss implements broker.LossHandler: the broker lost publications
// of channel, so every local subscriber is asked to resubscribe with
// "since" and recover (or learn that it cannot).
func (h *hub) HandleLoss(channel string) {
	frame := protocol.AppendResubscribePush(nil, policy.External(channel))
	h.notice(channel, frame, nil)
}

// notice queues a frame that is not a publication (resubscribe, join,
// leave) to the local subscribers of channel, except skip.
func (h *hub) notice(channel string, frame []byte, skip *conn) {
	sh := h.shard(channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	for s := range sh.channels[channel] {
		if s.c == skip {
			continue
		}
		if s.live.Load() {
			s.c.send(frame)
			continue
		}
		s.mu.Lock()
		if s.live.Load() {
			s.mu.Unlock()
			s.c.send(frame)
			continue
		}
		if len(s.pending) < maxPending {
			s.pending = append(s.pending, pendingPush{frame: frame, notice: true})
		}
		s.mu.Unlock()
	}
}

// channelCounts returns the channels with local subscribers whose
// internal name starts with prefix, with their subscriber counts.
func (h *hub) channelCounts(prefix string) []ChannelInfo {
	var out []ChannelInfo
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for ch, subs := range sh.channels {
			if !strings.HasPrefix(ch, prefix) {
				continue
			}
			// Only subscriptions whose subscribe has been answered: they
			// receive every publication from here on.
			n := 0
			for s := range subs {
				if s.answered.Load() {
					n++
				}
			}
			if n > 0 {
				out = append(out, ChannelInfo{Channel: ch, Subscribers: n})
			}
		}
		sh.mu.RUnlock()
	}
	return out
}
