// Package wsconn holds the per-connection plumbing of the gateway's
// WebSocket transport: a bounded outbound queue drained by one writer.
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
type Queue struct {
	mu       sync.Mutex
	items    [][]byte
	spare    [][]byte
	bytes    int
	maxBytes int
	maxItems int
	closed   bool // no more pushes
	discard  bool // queued frames dropped
	ready    chan struct{}
}

// NewQueue returns a queue holding at most maxItems frames and maxBytes
// bytes in total.
func NewQueue(maxItems, maxBytes int) *Queue {
	return &Queue{maxItems: maxItems, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// Push appends frame. It returns ErrFull if a bound would be exceeded and
// ErrClosed after Close.
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
	q.mu.Unlock()
	q.signal()
	return nil
}

// Ready returns a channel that receives a value when frames may be
// available. The consumer then calls Drain.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Drain removes and returns every queued frame. The returned slice is
// owned by the queue and valid until the next Drain; the consumer must not
// keep it. It returns ok=false once the queue is closed and, after Seal,
// empty.
func (q *Queue) Drain() (frames [][]byte, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.discard || (q.closed && len(q.items) == 0) {
		return nil, false
	}
	frames = q.items
	clear(q.spare)
	q.items = q.spare[:0]
	q.spare = frames
	q.bytes = 0
	return frames, true
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
// is queued; Drain then reports ok=false once empty.
func (q *Queue) Seal() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// Close discards queued frames and makes further Push calls fail.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed, q.discard = true, true
	q.items, q.spare, q.bytes = nil, nil, 0
	q.mu.Unlock()
	q.signal()
}

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
