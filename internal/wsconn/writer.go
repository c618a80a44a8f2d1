package wsconn

import (
	"net"
	"sync"
	"time"
)

// flushAt is the size at which a held batch is sent without waiting for
// Flush, so that one batch never holds more than about this much.
const flushAt = 256 << 10

// maxPooled is the largest batch buffer kept for reuse.
const maxPooled = 1 << 20

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// Writer sits between a WebSocket library's buffered writer and the
// network connection. Outside a batch it writes through. Between Hold and
// Flush it collects everything written in a pooled buffer and sends it
// with one write, under one deadline: many WebSocket messages, one system
// call. An idle connection holds no buffer.
//
// Writes are serialised by the Writer; a write that fails makes every
// later write fail with the same error.
type Writer struct {
	conn    net.Conn
	timeout time.Duration

	mu      sync.Mutex
	holding bool
	buf     *[]byte
	err     error
}

// NewWriter returns a Writer to conn whose every network write must finish
// within timeout.
func NewWriter(conn net.Conn, timeout time.Duration) *Writer {
	return &Writer{conn: conn, timeout: timeout}
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if !w.holding {
		return w.sendLocked(p)
	}
	if w.buf == nil {
		w.buf = batchPool.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, p...)
	if len(*w.buf) >= flushAt {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Hold starts a batch: writes are collected until Flush.
func (w *Writer) Hold() {
	w.mu.Lock()
	w.holding = true
	w.mu.Unlock()
}

// Flush ends the batch, sending what it collected.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holding = false
	err := w.flushLocked()
	if w.buf != nil {
		b := w.buf
		w.buf = nil
		if cap(*b) <= maxPooled {
			*b = (*b)[:0]
			batchPool.Put(b)
		}
	}
	return err
}

func (w *Writer) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.buf == nil || len(*w.buf) == 0 {
		return nil
	}
	_, err := w.sendLocked(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
}

// sendLocked writes p to the network under the write timeout.
func (w *Writer) sendLocked(p []byte) (int, error) {
	if err := w.conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		w.err = err
		return 0, err
	}
	n, err := w.conn.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}
