package wsconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
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
//
// With EnableMessages, the Writer also frames text messages itself
// (WriteText): the header and the payload go straight into the batch
// buffer, without the library's per-message locks and copies. The library
// then sends only control frames (ping, pong, close), and the Writer
// refuses messages once it has passed on a close frame.
type Writer struct {
	conn    net.Conn
	raw     syscall.RawConn // conn's descriptor, when it has one
	timeout time.Duration

	mu        sync.Mutex
	holding   bool
	messages  bool
	closeSent bool
	buf       *[]byte
	err       error
}

// ErrCloseSent is returned by WriteText after the connection's close
// frame went out: no message may follow it.
var ErrCloseSent = fmt.Errorf("wsconn: close frame sent: %w", net.ErrClosed)

// errFill is returned by WriteText when fill did not append the bytes it
// announced.
var errFill = errors.New("wsconn: message length differs from its header")

// MaxControlFrame is the largest control frame a server sends: a 2-byte
// header and at most 125 bytes of payload.
const MaxControlFrame = 2 + 125

// Frame header bits (RFC 6455 section 5.2).
const (
	finBit     = 0x80
	opText     = 0x1
	opClose    = 0x8
	closeFrame = finBit | opClose
)

// EnableMessages lets WriteText frame messages. The caller promises that
// the WebSocket library above it sends no data messages of its own, and
// that the library's buffered writer is flushed after each frame and is
// at least MaxControlFrame bytes, so each of the library's writes is one
// whole control frame; the Writer then recognises the close frame by its
// first byte. Call it before the first write.
func (w *Writer) EnableMessages() {
	w.mu.Lock()
	w.messages = true
	w.mu.Unlock()
}

// Messages reports whether EnableMessages was called.
func (w *Writer) Messages() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.messages
}

// NewWriter returns a Writer to conn whose every network write must finish
// within timeout.
//
// When conn is backed by a descriptor (a *net.TCPConn, not TLS), a send
// first tries one non-blocking write(2) without a deadline: a socket
// whose buffer has room takes the whole batch at once, and nothing can
// stall. Only what the socket did not take is written the ordinary way,
// under the write deadline. This saves arming and disarming a deadline
// timer for each batch.
func NewWriter(conn net.Conn, timeout time.Duration) *Writer {
	w := &Writer{conn: conn, timeout: timeout}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
		}
	}
	return w
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.messages && len(p) > 0 && p[0] == closeFrame {
		w.closeSent = true
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

// WriteText sends one unfragmented, unmasked text message (a server's
// frame) whose n payload bytes fill appends to the slice it is given; it
// must append exactly n bytes and must not call the Writer. Inside a batch
// the message joins it; outside, it is sent at once. It needs
// EnableMessages, and fails with ErrCloseSent once the close frame went
// out.
func (w *Writer) WriteText(n int, fill func(dst []byte) []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if !w.messages {
		return errors.New("wsconn: WriteText without EnableMessages")
	}
	if w.closeSent {
		return ErrCloseSent
	}
	if n < 0 {
		return fmt.Errorf("%w: negative length %d", errFill, n)
	}
	if w.buf == nil {
		w.buf = batchPool.Get().(*[]byte)
	}
	start := len(*w.buf)
	b := appendHeader(*w.buf, opText, n)
	body := len(b)
	b = fill(b)
	if len(b)-body != n {
		*w.buf = b[:start]
		return fmt.Errorf("%w: %d bytes announced, %d written", errFill, n, len(b)-body)
	}
	*w.buf = b
	if !w.holding {
		err := w.flushLocked()
		w.releaseLocked()
		return err
	}
	if len(b) >= flushAt {
		return w.flushLocked()
	}
	return nil
}

// appendHeader appends the header of an unmasked final frame of opcode op
// with n payload bytes; n must not be negative.
func appendHeader(b []byte, op byte, n int) []byte {
	b = append(b, finBit|op)
	switch {
	case n < 126:
		return append(b, byte(n)) // #nosec G115 -- 0 <= n < 126
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n)) // #nosec G115 -- n <= 0xffff
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n)) // #nosec G115 -- n is a length, not negative
	}
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
	w.releaseLocked()
	return err
}

// releaseLocked returns the batch buffer to the pool.
func (w *Writer) releaseLocked() {
	if w.buf == nil {
		return
	}
	b := w.buf
	w.buf = nil
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		batchPool.Put(b)
	}
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
	sent := 0
	if w.raw != nil {
		n, err := w.tryWrite(p)
		if err != nil {
			w.err = err
			return n, err
		}
		if n == len(p) {
			return n, nil
		}
		sent = n
	}
	if err := w.conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		w.err = err
		return sent, err
	}
	n, err := w.conn.Write(p[sent:])
	sent += n
	if err == nil && w.raw != nil {
		// The next tryWrite must not meet this deadline once it passed.
		err = w.conn.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		w.err = err
	}
	return sent, err
}

// tryWrite writes as much of p as the socket takes without blocking.
func (w *Writer) tryWrite(p []byte) (int, error) {
	n := 0
	var werr error
	err := w.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := syscall.Write(int(fd), p[n:]) // #nosec G115 -- a descriptor fits in an int
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return true // full: the caller writes the rest under a deadline
			case err != nil:
				werr = fmt.Errorf("wsconn: write: %w", err)
				return true
			case m <= 0:
				return true
			}
			n += m
		}
		return true
	})
	if werr == nil && err != nil {
		werr = fmt.Errorf("wsconn: write: %w", err)
	}
	return n, werr
}
