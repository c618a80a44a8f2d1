// Package wsconn holds the per-connection plumbing of the gateway's
// WebSocket transport: a bounded outbound queue whose consumer runs only
// while it has frames to write, and a writer that turns the frames written
// in one batch into one system call.
package wsconn

import (
	"errors"
	"sync"
)

// Errors returned by Queue.Push.
var (
	// ErrFull means the queue's byte or message bound would be exceeded:
	// the consumer is too slow and should be disconnected.
	ErrFull = errors.New("wsconn: send queue full")
	// ErrClosed means the queue was closed.
	ErrClosed = errors.New("wsconn: send queue closed")
)

// Queue is a bounded FIFO of encoded frames with one consumer. Frames are
// shared, never copied: a producer must not modify a frame after Push.
// Push never blocks; it fails when the bounds would be exceeded. The zero
// value is not usable; use NewQueue.
//
// With a starter (SetStarter), the consumer exists only while there is
// work: the first Push (or Seal, or Close) into an idle queue calls the
// starter, which must start a consumer that calls Next until Next tells it
// to stop. At most one consumer runs at a time, and no frame is left
// behind without one: the decision to stop is taken under the same lock
// as Push's decision to start.
type Queue struct {
	mu       sync.Mutex
	items    [][]byte
	spare    [][]byte
	bytes    int
	maxBytes int
	maxItems int
	closed   bool // no more pushes
	discard  bool // queued frames dropped
	active   bool // a consumer runs or is being started
	start    func()
}

// NewQueue returns a queue holding at most maxItems frames and maxBytes
// bytes in total.
func NewQueue(maxItems, maxBytes int) *Queue {
	return &Queue{maxItems: maxItems, maxBytes: maxBytes}
}

// SetStarter sets the function that starts a consumer when work arrives
// at an idle queue. It is called without the queue's lock held, at most
// once until that consumer's Next returns idle or done. Call SetStarter
// before the first Push. Without a starter the owner drains the queue
// itself with Drain.
func (q *Queue) SetStarter(start func()) {
	q.mu.Lock()
	q.start = start
	q.mu.Unlock()
}

// Push appends frame. It returns ErrFull if a bound would be exceeded and
// ErrClosed after Close or Seal.
func (q *Queue) Push(frame []byte) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if len(q.items)+1 > q.maxItems || q.bytes+len(frame) > q.maxBytes {
		q.mu.Unlock()
		return ErrFull
	}
	q.items = append(q.items, frame)
	q.bytes += len(frame)
	start := q.wakeLocked()
	q.mu.Unlock()
	if start != nil {
		start()
	}
	return nil
}

// wakeLocked marks the queue active and returns the starter to call when
// no consumer was running.
func (q *Queue) wakeLocked() func() {
	if q.active || q.start == nil {
		return nil
	}
	q.active = true
	return q.start
}

// idleKeep is the largest frame array an idle queue keeps for reuse.
const idleKeep = 16

// State is what Next tells a consumer to do.
type State int

const (
	// Frames: write the frames returned, then call Next again.
	Frames State = iota
	// Idle: the queue is empty; the consumer must stop. The next Push
	// starts a new one.
	Idle
	// Done: the queue was closed (and, after Seal, drained); the consumer
	// finishes the connection and stops. No other consumer is started.
	Done
)

// Next is Drain for a consumer started by the starter: it returns the
// queued frames (Frames), or tells the consumer to stop because the queue
// is empty (Idle) or closed (Done). The frames are owned by the queue and
// valid until the next call.
func (q *Queue) Next() ([][]byte, State) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.discard || (q.closed && len(q.items) == 0) {
		return nil, Done // active stays set: no consumer starts again
	}
	if len(q.items) == 0 {
		// The consumer is done with the frames of its last call: let
		// them go, and do not keep a large array for an idle connection.
		clear(q.spare)
		if cap(q.spare) > idleKeep {
			q.spare = nil
		}
		if cap(q.items) > idleKeep {
			q.items = nil
		}
		q.active = false
		return nil, Idle
	}
	return q.takeLocked(), Frames
}

// Drain removes and returns every queued frame. The returned slice is
// owned by the queue and valid until the next Drain; the consumer must not
// keep it. It returns ok=false once the queue is closed and, after Seal,
// empty. It is for queues without a starter.
func (q *Queue) Drain() (frames [][]byte, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.discard || (q.closed && len(q.items) == 0) {
		return nil, false
	}
	return q.takeLocked(), true
}

func (q *Queue) takeLocked() [][]byte {
	frames := q.items
	clear(q.spare)
	q.items = q.spare[:0]
	q.spare = frames
	q.bytes = 0
	return frames
}

// Bytes returns the number of bytes queued.
func (q *Queue) Bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Len returns the number of queued frames.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Seal makes further Push calls fail while letting the consumer drain what
// is queued; Next then reports Done (Drain ok=false) once empty.
func (q *Queue) Seal() {
	q.mu.Lock()
	q.closed = true
	start := q.wakeLocked()
	q.mu.Unlock()
	if start != nil {
		start()
	}
}

// Close discards queued frames and makes further Push calls fail.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed, q.discard = true, true
	q.items, q.spare, q.bytes = nil, nil, 0
	start := q.wakeLocked()
	q.mu.Unlock()
	if start != nil {
		start()
	}
}
