// Package broker defines how livegate moves publications between nodes and
// keeps per-channel history, and provides the in-memory broker used by a
// single node.
//
// A Broker delivers each publication of a channel to every node that
// subscribed to the channel, once per node; the node fans it out to its own
// connections. Offsets within a channel increase by one per publication
// for as long as the channel's epoch stays the same. When history is lost
// (a restart, eviction, expiry of the whole stream) the epoch changes, so a
// client recovering with an old position learns that it cannot be served.
package broker

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by a Broker after Close.
var ErrClosed = errors.New("broker: closed")

// Position is a point in a channel's stream.
type Position struct {
	// Offset of the last publication; 0 for a stream with none yet.
	Offset uint64
	// Epoch names the stream generation. Offsets are only comparable
	// within one epoch.
	Epoch string
}

// Publication is one message on a channel.
type Publication struct {
	Channel string
	Offset  uint64
	Epoch   string
	// Data is a JSON value, validated by the caller.
	Data []byte
	// Time is when the broker accepted the publication.
	Time time.Time
}

// PublishOptions control how one publication is kept.
type PublishOptions struct {
	// HistorySize is how many publications the channel's history keeps;
	// 0 keeps none (offsets still advance).
	HistorySize int
	// HistoryTTL is how long the history of an idle channel is kept; after
	// it the stream is dropped and a later Publish or History starts a new
	// epoch.
	// 0 with HistorySize > 0 means the broker's default.
	HistoryTTL time.Duration
}

// HistoryRequest selects publications from a channel's history.
type HistoryRequest struct {
	// Since, when non-nil, asks for publications after Since.Offset.
	// When nil, no publications are returned, only the current position.
	Since *Position
	// Limit caps the number of publications returned; 0 means no cap
	// beyond the history size.
	Limit int
}

// HistoryResult answers a HistoryRequest.
type HistoryResult struct {
	// Position is the stream's current position.
	Position Position
	// Publications after Since, in offset order.
	Publications []Publication
	// Complete is true when Publications holds every publication after
	// Since in the same epoch: nothing was trimmed, expired or cut by Limit.
	// Since {0, E}, taken from a History that started the stream with epoch
	// E, is Complete (with every publication made since) for as long as
	// that stream lives. Complete is false when Since is nil, when Since's
	// epoch differs from the current one (always so for the empty epoch,
	// which is never a stream's, and for a stream History just started),
	// and when Since's offset is beyond the current one.
	Complete bool
}

// Handler receives publications for channels the node subscribed to. It is
// called from the broker's goroutines, possibly concurrently for different
// channels but in offset order for one channel, and must not block. A
// Broker may call it while holding the channel's lock, so it must not call
// back into the Broker.
type Handler interface {
	HandlePublication(p Publication)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(p Publication)

// HandlePublication calls f(p).
func (f HandlerFunc) HandlePublication(p Publication) { f(p) }

// Broker is the contract between the gateway and a message transport.
// Implementations are safe for concurrent use.
type Broker interface {
	// SetHandler sets the handler for delivered publications. It is called
	// once, before any Subscribe.
	SetHandler(h Handler)
	// Publish appends data to the channel's stream (keeping history as
	// opts says) and delivers it to every subscribed node. It returns the
	// publication's position. Publications to one channel are delivered in
	// offset order.
	Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (Position, error)
	// Subscribe makes this node receive the channel's publications. It is
	// idempotent per channel.
	Subscribe(ctx context.Context, channel string) error
	// Unsubscribe stops delivery of the channel to this node.
	Unsubscribe(ctx context.Context, channel string) error
	// History returns the channel's current position and, when asked,
	// the publications after a position. On a channel without a stream
	// (never published to, or its stream expired) it starts one with a
	// fresh epoch and offset 0, kept for the implementation's default
	// history TTL, and returns that position, so that a node subscribing
	// before the first publication holds a real epoch to recover from. A
	// stream started this way is dropped when it expires, like any other.
	History(ctx context.Context, channel string, req HistoryRequest) (HistoryResult, error)
	// Close releases the broker's resources.
	Close() error
}
