package livegate

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate/internal/wsconn"
	"github.com/livegate/livegate/protocol"
)

// Buffer sizes of a connection's socket. The WebSocket library keeps the
// buffers of the upgrade for the connection's life; net/http's are 4 KiB
// each. The read buffer batches small frames into one read; larger frames
// are read straight into the message. The write buffer only carries frame
// headers and control frames: messages go to a wsconn.Writer, which sends
// each batch with one write from a pooled buffer.
const (
	readBufferSize  = 2 << 10
	writeBufferSize = 256
)

// The library's writer must hold a whole control frame, so that each of
// its writes reaches the wsconn.Writer as one frame (see EnableMessages).
const _ = uint(writeBufferSize - wsconn.MaxControlFrame)

// upgradeWriter hands websocket.Accept the connection's buffers in place of
// net/http's when it hijacks the connection.
type upgradeWriter struct {
	http.ResponseWriter
	cfg *Config
	out *wsconn.Writer // set by Hijack
}

// Hijack implements http.Hijacker.
func (u *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := brw.Reader
	if n := br.Buffered(); n <= readBufferSize {
		// Bytes the client sent right after its handshake are already
		// buffered: move them to the new reader's buffer (the library
		// keeps what is buffered in the reader it is given).
		pending, _ := br.Peek(n)
		small := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(pending)), nc), readBufferSize)
		if n > 0 {
			if _, err := small.Peek(n); err != nil {
				_ = nc.Close()
				return nil, nil, err
			}
		}
		br = small
	}
	u.out = wsconn.NewWriter(nc, u.cfg.WriteTimeout)
	return nc, bufio.NewReadWriter(br, bufio.NewWriterSize(u.out, writeBufferSize)), nil
}

// accept upgrades the request; out is the connection's batching writer.
// Unless the connection compresses its messages (permessage-deflate was
// negotiated), out frames the messages itself and the library sends only
// control frames.
func (g *Gateway) accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, *wsconn.Writer, error) {
	u := &upgradeWriter{ResponseWriter: w, cfg: &g.cfg}
	ws, err := websocket.Accept(u, r, &g.acceptOpts)
	if err == nil && u.out != nil && w.Header().Get("Sec-WebSocket-Extensions") == "" {
		u.out.EnableMessages()
	}
	return ws, u.out, err
}

// startDrain is the queue's starter: a writer goroutine runs only while
// the connection has frames to send (or its close to perform).
func (c *conn) startDrain() { go c.drain() }

// CoalesceAfter is the number of frames in one write from which a
// connection counts as behind (see Config.CoalesceDelay).
const CoalesceAfter = 3

// coalesceDelay is how long a writer waits before its next write, given
// how many frames its last write carried and how many frames and bytes
// are queued now. A queue already a quarter full is not held back, so
// that the wait cannot push a connection that keeps up at the socket over
// its queue bounds (4503).
func coalesceDelay(cfg *Config, lastBatch, queued, queuedBytes int) time.Duration {
	if lastBatch < CoalesceAfter || cfg.CoalesceDelay <= 0 {
		return 0
	}
	if queued*4 >= cfg.SendQueueMessages || queuedBytes*4 >= cfg.SendQueueBytes {
		return 0
	}
	return cfg.CoalesceDelay
}

// drain writes the queued frames until the queue is empty, then returns;
// the next frame queued starts it again. Once the queue is closed it
// performs the close handshake with the connection's close code, so frames
// queued before a close (a last error reply) reach the client first.
//
// A connection that is behind waits CoalesceDelay before each write. The
// wait parks the writer, so the node takes in more publications meanwhile
// (with one CPU, Go's scheduler polls the network only when no goroutine
// is runnable) and the next write carries them all.
func (c *conn) drain() {
	for {
		if d := coalesceDelay(&c.g.cfg, c.lastBatch, c.queue.Len(), c.queue.Bytes()); d > 0 {
			c.g.cfg.Metrics.CoalesceWait()
			time.Sleep(d)
		}
		frames, st := c.queue.Next()
		switch st {
		case wsconn.Idle:
			return
		case wsconn.Done:
			c.finish()
			return
		}
		c.lastBatch = len(frames)
		if !c.writeBatch(frames) {
			c.queue.Close()
			continue
		}
		c.g.cfg.Metrics.Wrote(len(frames))
		// Let the producers run before looking again: under load the
		// next batch is then larger (fewer writes per frame), and this
		// goroutine, rather than a new one, sends it.
		runtime.Gosched()
	}
}

// finish closes the connection once its queue is closed and drained.
func (c *conn) finish() {
	defer close(c.done)
	defer c.stop()
	code := protocol.CloseCode(c.closeCode.Load())
	if code == 0 {
		// The server closes without a more specific reason only on its own
		// failures (a failed write); tell the client to come back.
		code = protocol.CloseInternal
	}
	if l := c.g.limits.Load(); code == protocol.CloseRateLimited && l.cfg.Cooldown > 0 {
		if err := l.cooldown.Block(context.Background(), c.ip, c.g.cfg.Now().Add(l.cfg.Cooldown)); err != nil {
			c.g.cfg.Logger.Error("limit store", "limit", "cooldown", "err", err)
		}
	}
	// Close is bounded: 5 s to write the frame, 5 s for the peer's answer.
	_ = c.ws.Close(websocket.StatusCode(code), code.String())
}

// writeBatch writes frames, as one message when the client asked for
// batches, and sends them with one write under one WriteTimeout deadline.
// A write that fails or cannot finish in time closes the connection.
func (c *conn) writeBatch(frames [][]byte) bool {
	var err error
	if c.out != nil {
		// The network write happens in Flush, under the Writer's deadline;
		// the library only copies, so it needs no deadline of its own.
		c.out.Hold()
		if c.direct {
			err = c.writeMessages(frames)
		} else {
			err = c.writeFrames(context.Background(), frames)
		}
		if ferr := c.out.Flush(); err == nil {
			err = ferr
		}
	} else {
		ctx, cancel := context.WithTimeout(c.ctx, c.g.cfg.WriteTimeout)
		err = c.writeFrames(ctx, frames)
		cancel()
	}
	if err != nil {
		c.close(0)
		return false
	}
	return true
}

// writeMessages is writeFrames for a connection whose Writer frames the
// messages itself: each message's header and frames go straight into the
// batch buffer, with no intermediate copy.
func (c *conn) writeMessages(frames [][]byte) error {
	if !c.batch.Load() {
		for _, f := range frames {
			if err := c.out.WriteText(len(f), func(dst []byte) []byte { return append(dst, f...) }); err != nil {
				return err
			}
		}
		return nil
	}
	limit := c.g.cfg.MaxOutboundMessage
	for len(frames) > 0 {
		n, k := len(frames[0]), 1
		for k < len(frames) && n+1+len(frames[k]) <= limit {
			n += 1 + len(frames[k])
			k++
		}
		group := frames[:k]
		err := c.out.WriteText(n, func(dst []byte) []byte {
			for i, f := range group {
				if i > 0 {
					dst = append(dst, '\n')
				}
				dst = appendNoNewline(dst, f)
			}
			return dst
		})
		if err != nil {
			return err
		}
		frames = frames[k:]
	}
	return nil
}

// joinPool holds the buffers batched messages are joined in.
var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// writeFrames writes frames one message each or, for a client that asked
// for batches, joined by "\n" into messages of at most MaxOutboundMessage
// bytes.
func (c *conn) writeFrames(ctx context.Context, frames [][]byte) error {
	if !c.batch.Load() {
		for _, f := range frames {
			if err := c.ws.Write(ctx, websocket.MessageText, f); err != nil {
				return err
			}
		}
		return nil
	}
	if len(frames) == 1 && bytes.IndexByte(frames[0], '\n') < 0 {
		return c.ws.Write(ctx, websocket.MessageText, frames[0])
	}
	bp := joinPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 1<<20 {
			*bp = (*bp)[:0]
			joinPool.Put(bp)
		}
	}()
	msg := *bp
	limit := c.g.cfg.MaxOutboundMessage
	for _, f := range frames {
		if len(msg) > 0 && len(msg)+1+len(f) > limit {
			if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
				return err
			}
			msg = msg[:0]
		}
		if len(msg) > 0 {
			msg = append(msg, '\n')
		}
		msg = appendNoNewline(msg, f)
	}
	*bp = msg
	return c.ws.Write(ctx, websocket.MessageText, msg)
}

// appendNoNewline appends frame with any raw newline replaced by a space.
// In JSON a raw newline can only be whitespace between tokens (inside a
// string it must be escaped), so the frame means the same, and "\n" can
// separate the frames of a batch. Frames the gateway encodes have none;
// publication data from a publisher may.
func appendNoNewline(dst, frame []byte) []byte {
	start := len(dst)
	dst = append(dst, frame...)
	if bytes.IndexByte(frame, '\n') < 0 {
		return dst
	}
	for i := start; i < len(dst); i++ {
		if dst[i] == '\n' {
			dst[i] = ' '
		}
	}
	return dst
}

// Commands run on pooled command goroutines rather than on the
// connection's reader goroutine. Handling a command (token checks, JSON,
// policies, handlers) grows a goroutine's stack to several times what a
// reader parked in Read needs, and a stack only shrinks at garbage
// collection, so an idle connection would keep the largest stack it ever
// needed. A command goroutine keeps its grown stack and serves the next
// command of any connection; it exits after commandIdle without work.
// The reader waits for each command to finish, so commands still run one
// at a time and in order, and the reader's state passes with them.
var commands = make(chan *conn) // unbuffered: a send succeeds only to a waiting goroutine

const commandIdle = 10 * time.Second

// runFrame handles frame as handleFrame does, on a command goroutine.
func runFrame(c *conn, frame []byte) bool {
	c.frame = frame
	select {
	case commands <- c:
	default:
		go commandLoop(c)
	}
	return <-c.handled
}

func commandLoop(c *conn) {
	idle := time.NewTimer(commandIdle)
	defer idle.Stop()
	for {
		frame := c.frame
		c.frame = nil
		c.handled <- c.handleFrame(frame)
		idle.Reset(commandIdle)
		select {
		case c = <-commands:
		case <-idle.C:
			return
		}
	}
}
