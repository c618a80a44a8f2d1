package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate/protocol"
)

var (
	// errToken marks failures of Config.Token.
	errToken = errors.New("fetching token")
	// errSessionEnded is returned by session.call when the connection had
	// already ended, so nothing was sent.
	errSessionEnded = errors.New("client: connection ended")
	// errSilent ends a connection on which the server stopped pinging.
	errSilent = errors.New("client: server silent past its ping interval")
)

// session is one WebSocket connection. Its reader goroutine (readLoop)
// owns the read side and is the only caller of hooks and push callbacks;
// any goroutine may send commands with call.
type session struct {
	c      *Client
	ws     *websocket.Conn
	ctx    context.Context // cancelled when the session ends or is aborted
	cancel context.CancelFunc
	wsem   chan struct{} // serialises writes; taken with a context
	done   chan struct{} // closed when readLoop has finished

	// idle is how long the server may stay silent (ns); 0 disables the
	// watchdog timer.
	idle  atomic.Int64
	watch *time.Timer

	closeOnce sync.Once

	// dead is set, under Client.mu, when the session ends, so that it is
	// never installed afterwards.
	dead bool

	mu      sync.Mutex
	pending map[uint64]*call
	ended   bool
	aborted error // why abort was called, if it was
	cause   error // why the session ended; set before done is closed
}

// call is a command waiting for its reply.
type call struct {
	ch   chan callResult // buffered; receives exactly one result
	hook replyHook
	// abandoned is set (under session.mu) when the caller stopped waiting
	// for a call with a hook; the hook still runs so it can undo the
	// command's effect.
	abandoned bool
}

// replyHook handles a successful result on the reader goroutine before
// any later frame. abandoned reports that the caller stopped waiting.
type replyHook func(sess *session, result json.RawMessage, abandoned bool) error

type callResult struct {
	raw json.RawMessage
	err error
}

// open fetches a token, dials, starts the reader and sends connect. On
// success the session is live but not installed.
func (c *Client) open(ctx context.Context) (*session, protocol.ConnectResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	token, err := c.cfg.Token(ctx)
	if err != nil {
		return nil, protocol.ConnectResult{}, fmt.Errorf("client: connect: %w: %w", errToken, err)
	}
	var sp atomic.Pointer[session]
	ws, resp, err := websocket.Dial(ctx, c.cfg.URL, &websocket.DialOptions{
		Subprotocols: []string{protocol.Subprotocol},
		HTTPHeader:   c.cfg.Header,
		OnPingReceived: func(context.Context, []byte) bool {
			if s := sp.Load(); s != nil {
				s.alive()
			}
			return true
		},
	})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, protocol.ConnectResult{}, fmt.Errorf("client: connect: dial: %w", err)
	}
	if ws.Subprotocol() != protocol.Subprotocol {
		_ = ws.Close(websocket.StatusProtocolError, "subprotocol")
		return nil, protocol.ConnectResult{}, fmt.Errorf("client: connect: server did not select subprotocol %s", protocol.Subprotocol)
	}
	ws.SetReadLimit(c.cfg.MaxMessageSize)

	sess := c.newSession(ws)
	sp.Store(sess)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		sess.abort(ErrClosed)
		return nil, protocol.ConnectResult{}, ErrClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go sess.readLoop()

	// Batch: the server may send several frames in one message, separated
	// by newlines (fewer messages under load); readLoop splits them.
	raw, err := sess.call(ctx, protocol.MethodConnect, protocol.ConnectParams{Token: token, Batch: true}, nil)
	if err != nil {
		sess.abort(err)
		<-sess.done
		var ce *CloseError
		if errors.As(sess.cause, &ce) {
			err = ce
		}
		return nil, protocol.ConnectResult{}, fmt.Errorf("client: connect: %w", err)
	}
	var res protocol.ConnectResult
	if err := json.Unmarshal(raw, &res); err != nil {
		err = fmt.Errorf("client: connect: decode result: %w", err)
		sess.abort(err)
		<-sess.done
		return nil, protocol.ConnectResult{}, err
	}
	if res.Ping > 0 {
		d := time.Duration(res.Ping)*time.Second + c.cfg.DialTimeout
		sess.idle.Store(int64(d))
		sess.alive()
	}
	c.log.Debug("connected", "client", res.Client, "user", res.User, "expires", res.Expires)
	return sess, res, nil
}

func (c *Client) newSession(ws *websocket.Conn) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		c:       c,
		ws:      ws,
		ctx:     ctx,
		cancel:  cancel,
		wsem:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		pending: make(map[uint64]*call),
	}
	s.watch = time.AfterFunc(time.Hour, func() { s.abort(errSilent) })
	s.watch.Stop()
	return s
}

// alive pushes the watchdog back after the server was heard from.
func (s *session) alive() {
	if d := s.idle.Load(); d > 0 {
		s.watch.Reset(time.Duration(d))
	}
}

// readLoop reads frames until the connection fails or closes, then ends
// the session.
func (s *session) readLoop() {
	defer s.c.wg.Done()
	var err error
	for {
		var typ websocket.MessageType
		var b []byte
		typ, b, err = s.ws.Read(s.ctx)
		if err != nil {
			break
		}
		s.alive()
		if typ != websocket.MessageText {
			s.c.log.Warn("binary frame from server ignored")
			continue
		}
		// The connect asked for batches: a message holds one or more frames
		// separated by "\n", which never occurs inside a frame.
		for len(b) > 0 {
			frame := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				frame, b = b[:i], b[i+1:]
			} else {
				b = nil
			}
			if len(frame) > 0 {
				s.handle(frame)
			}
		}
	}
	s.end(err)
}

// handle routes one server frame: a push to its subscription, a reply to
// its waiting call (running the call's hook first).
func (s *session) handle(b []byte) {
	var f protocol.ServerFrame
	if err := json.Unmarshal(b, &f); err != nil {
		s.c.log.Warn("undecodable frame from server ignored", "err", err)
		return
	}
	if f.Push != nil {
		s.c.deliver(s, f.Push)
		return
	}
	if f.ID == 0 {
		s.c.log.Warn("frame without id or push ignored")
		return
	}
	s.mu.Lock()
	cl := s.pending[f.ID]
	delete(s.pending, f.ID)
	s.mu.Unlock()
	if cl != nil && cl.abandoned && f.Error != nil {
		return
	}
	if cl == nil {
		// The caller gave up waiting.
		return
	}
	var r callResult
	switch {
	case f.Error != nil:
		r.err = f.Error
	case cl.hook != nil:
		r.raw, r.err = f.Result, cl.hook(s, f.Result, cl.abandoned)
	default:
		r.raw = f.Result
	}
	cl.ch <- r
}

// end finishes the session after the reader stopped because of readErr:
// it records why, fails the calls still waiting and closes done.
func (s *session) end(readErr error) {
	s.c.uninstall(s)
	s.idle.Store(0)
	s.watch.Stop()

	s.mu.Lock()
	cause := s.aborted
	if cause == nil {
		var we websocket.CloseError
		if errors.As(readErr, &we) {
			cause = &CloseError{Code: protocol.CloseCode(we.Code), Reason: we.Reason}
		} else {
			cause = fmt.Errorf("client: connection lost: %w", readErr)
		}
	}
	s.ended, s.cause = true, cause
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()

	s.cancel()
	_ = s.ws.CloseNow()
	failure := disconnected(cause)
	if s.c.ctx.Err() != nil {
		failure = ErrClosed
	}
	for _, cl := range pending {
		cl.ch <- callResult{err: failure}
	}
	close(s.done)
}

// abort drops the connection without a close handshake; cause becomes
// the session's end reason unless it already ended.
func (s *session) abort(cause error) {
	s.mu.Lock()
	if s.aborted == nil {
		s.aborted = cause
	}
	s.mu.Unlock()
	s.cancel()
	_ = s.ws.CloseNow()
}

// closeNormal closes the connection with 1000 and waits for the close
// handshake (bounded by the WebSocket library).
func (s *session) closeNormal() {
	s.closeOnce.Do(func() {
		_ = s.ws.Close(websocket.StatusNormalClosure, "")
	})
}

// call sends a command and waits for its reply. It returns
// errSessionEnded if the session had ended before anything was sent. If
// ctx ends first the reply is ignored when it arrives, except that hook,
// if set, still runs (told the call was abandoned). hook runs on the
// reader goroutine with a successful result.
func (s *session) call(ctx context.Context, method string, params any, hook replyHook) (json.RawMessage, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s params: %w", method, err)
	}
	id := s.c.nextID.Add(1)
	frame, err := json.Marshal(protocol.Command{ID: id, Method: method, Params: p})
	if err != nil {
		return nil, fmt.Errorf("client: encode %s: %w", method, err)
	}
	if len(frame) > s.c.cfg.MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(frame), s.c.cfg.MaxFrameSize)
	}
	cl := &call{ch: make(chan callResult, 1), hook: hook}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil, errSessionEnded
	}
	s.pending[id] = cl
	s.mu.Unlock()

	if err := s.write(ctx, frame); err != nil {
		if s.forget(id) {
			return nil, err
		}
		r := <-cl.ch
		return r.raw, r.err
	}
	select {
	case r := <-cl.ch:
		return r.raw, r.err
	case <-ctx.Done():
		if s.abandon(id) {
			return nil, ctx.Err()
		}
		// The reader already took the call: its result is on the way.
		r := <-cl.ch
		return r.raw, r.err
	}
}

// abandon gives up waiting for a pending call: a call with a hook stays
// pending, marked abandoned, others are forgotten. false means the reader
// (or end) already took it and will deliver a result.
func (s *session) abandon(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.pending[id]
	if !ok {
		return false
	}
	if cl.hook != nil {
		cl.abandoned = true
	} else {
		delete(s.pending, id)
	}
	return true
}

// forget removes a pending call; false means the reader (or end) already
// took it and will deliver a result.
func (s *session) forget(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; !ok {
		return false
	}
	delete(s.pending, id)
	return true
}

// write sends one frame. Waiting for the turn to write is bounded by ctx;
// the write itself by DialTimeout, and a failed write drops the
// connection (a frame may have been half written).
func (s *session) write(ctx context.Context, frame []byte) error {
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return disconnected(errSessionEnded)
	}
	defer func() { <-s.wsem }()
	wctx, cancel := context.WithTimeout(s.ctx, s.c.cfg.DialTimeout)
	defer cancel()
	if err := s.ws.Write(wctx, websocket.MessageText, frame); err != nil {
		err = fmt.Errorf("client: write: %w", err)
		s.abort(err)
		return disconnected(err)
	}
	return nil
}

// goUnsubscribe sends unsubscribe for channel from a goroutine owned by
// the session: it cannot block the reader, and it ends with the session.
func (s *session) goUnsubscribe(channel string) {
	c := s.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		_, err := s.call(s.ctx, protocol.MethodUnsubscribe, protocol.UnsubscribeParams{Channel: channel}, nil)
		if err != nil {
			c.log.Debug("undoing abandoned subscribe failed", "channel", channel, "err", err)
		}
	}()
}

// goResync answers a resubscribe push for sub from a goroutine owned by
// the session: unsubscribe, then subscribe again from the last position
// delivered, so the server recovers what was lost (or says it cannot).
func (s *session) goResync(sub *Subscription) {
	c := s.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		if !sub.lockOp(s.ctx) {
			return
		}
		sub.mu.Lock()
		skip := sub.gone || sub.sess != s
		sub.mu.Unlock()
		if skip {
			sub.unlockOp()
			return
		}
		_, err := s.call(s.ctx, protocol.MethodUnsubscribe, protocol.UnsubscribeParams{Channel: sub.channel}, nil)
		if err == nil {
			sub.mu.Lock()
			sub.sess = nil // makes resubscribe subscribe on this session
			sub.mu.Unlock()
		}
		sub.unlockOp()
		if err != nil {
			// The connection ended (the next one resubscribes anyway) or
			// the server refused; nothing more to do here.
			c.log.Debug("resync unsubscribe failed", "channel", sub.channel, "err", err)
			return
		}
		c.resubscribe(s, sub)
	}()
}
