package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// Instance is a view joined over a connection: its socket, the HTML the
// client holds (the base of the next patch) and its version. It is safe
// for concurrent use: Event (from the connection), Update (from any
// goroutine) and Close serialise on the instance.
type Instance struct {
	reg      *Registry
	view     *view
	ref      string
	user     string
	request  policy.RequestAttrs
	onPatch  func(protocol.Patch)
	onClosed func(ref string, err error)

	ctx       context.Context
	cancel    context.CancelFunc
	stopAfter func() bool
	isClosed  atomic.Bool

	// mu guards the state below. Every holder releases it with
	// unlockAndDrain (or closes the instance), so updates queued while it
	// was held are applied.
	mu       sync.Mutex
	sock     *Socket
	cur      *renderBuf // the client's HTML, version `version`
	next     *renderBuf // scratch for the next render
	meter    stateMeter
	version  uint64
	closed   bool
	limiters map[string]*rate.Limiter

	pendingMu sync.Mutex
	pending   []func(*Socket)
}

// Ref returns the instance's reference, unique per Registry.
func (i *Instance) Ref() string { return i.ref }

// User returns the user the instance was joined for.
func (i *Instance) User() string { return i.user }

// Done returns a channel closed when the instance closes. Application
// code that keeps the instance (to call Update) lets go of it then.
func (i *Instance) Done() <-chan struct{} { return i.ctx.Done() }

// Version returns the version of the HTML the client holds.
func (i *Instance) Version() uint64 {
	i.mu.Lock()
	defer i.unlockAndDrain()
	return i.version
}

// HTML returns the HTML the client holds (version Version), or "" once
// closed.
func (i *Instance) HTML() string {
	i.mu.Lock()
	defer i.unlockAndDrain()
	if i.closed {
		return ""
	}
	return i.cur.buf.String()
}

// Event runs the view's event name with payload for subject: the name
// must be registered by the view (else ErrUnknownEvent), subject must be
// the view's user and pass the event's guard (else ErrForbidden), the
// event's rate limit must allow it (else ErrRateLimited), and the payload
// must decode into the handler's type (else ErrBadPayload). Then the
// handler runs and the view re-renders. The result carries the new version
// and the patch from the previous HTML, or no patch when the HTML did not
// change.
//
// When the handler fails (its error is returned as is; a panic as a
// *PanicError) or the render does, the assigns are restored to what they
// were before the event (a shallow copy: values the handler mutated in
// place stay mutated). When the state exceeds MaxStateBytes, the instance
// is closed and ErrStateTooLarge returned.
func (i *Instance) Event(ctx context.Context, subject policy.Subject, name string, payload json.RawMessage) (protocol.ViewResult, error) {
	var ev *event
	if policy.ValidEventName(name) {
		ev = i.view.events[name]
	}
	if ev == nil {
		return protocol.ViewResult{}, ErrUnknownEvent
	}
	if subject.User != i.user {
		return protocol.ViewResult{}, fmt.Errorf("%w: subject is not the view's user", ErrForbidden)
	}
	if ev.guard != nil {
		if err := ev.guard.Allow(subject, i.request); err != nil {
			return protocol.ViewResult{}, fmt.Errorf("%w: %w", ErrForbidden, err)
		}
	}
	i.mu.Lock()
	defer i.unlockAndDrain()
	if i.closed {
		return protocol.ViewResult{}, ErrClosed
	}
	if !i.allow(ev) {
		return protocol.ViewResult{}, ErrRateLimited
	}
	before := cloneAssigns(i.sock.assigns)
	if err := callHandler(ctx, ev, i.sock, payload); err != nil {
		i.sock.assigns = before
		return protocol.ViewResult{}, err
	}
	p, err := i.rerenderLocked()
	if errors.Is(err, ErrStateTooLarge) {
		i.closeLocked()
		return protocol.ViewResult{}, err
	}
	if err != nil {
		i.sock.assigns = before
		return protocol.ViewResult{}, err
	}
	return protocol.ViewResult{Version: i.version, Patch: p}, nil
}

// Update changes the view from application code — another user's chat
// message, a timer, a finished job: fn changes the socket (Assign), then
// the view re-renders and the patch goes to the WithPatch function, in
// version order with the patches of events.
//
// Update never blocks: fn runs at once, in the caller's goroutine, when
// the instance is idle; otherwise it is queued and run as soon as the
// event or update in progress finishes. So it may be called from any
// handler, of this instance or another, without deadlock. Updates queued
// together are applied together and give one patch. It returns ErrClosed
// after the instance closed and ErrBusy when too many updates are queued;
// a later failure (the state outgrew MaxStateBytes, the render failed, fn
// panicked) closes the instance and is reported to the WithClosed
// function.
func (i *Instance) Update(fn func(*Socket)) error {
	if fn == nil {
		return nil
	}
	i.pendingMu.Lock()
	if i.isClosed.Load() {
		i.pendingMu.Unlock()
		return ErrClosed
	}
	if len(i.pending) >= maxPendingUpdates {
		i.pendingMu.Unlock()
		return ErrBusy
	}
	i.pending = append(i.pending, fn)
	i.pendingMu.Unlock()
	if i.mu.TryLock() {
		i.unlockAndDrain()
	}
	return nil
}

// Close closes the instance: it stops taking events and updates, cancels
// the context Mount received and drops the state. It is idempotent.
func (i *Instance) Close() {
	i.mu.Lock()
	i.closeLocked()
	i.mu.Unlock()
}

func (i *Instance) closeLocked() {
	if i.closed {
		return
	}
	i.closed = true
	i.isClosed.Store(true)
	i.cancel()
	if i.stopAfter != nil {
		i.stopAfter()
	}
	if i.sock != nil {
		i.sock.assigns = nil
	}
	i.cur, i.next, i.limiters, i.meter = nil, nil, nil, stateMeter{}
	i.pendingMu.Lock()
	i.pending = nil
	i.pendingMu.Unlock()
}

// closeSelfLocked closes the instance for a failure outside Event and
// tells the WithClosed function.
func (i *Instance) closeSelfLocked(err error) {
	i.closeLocked()
	if i.onClosed != nil {
		i.onClosed(i.ref, err)
	}
}

// unlockAndDrain applies queued updates, then unlocks. An update queued
// after the last check but before the unlock found the mutex held and
// left it to the holder, so it checks again after unlocking.
func (i *Instance) unlockAndDrain() {
	for {
		i.drainLocked()
		i.mu.Unlock()
		i.pendingMu.Lock()
		n := len(i.pending)
		i.pendingMu.Unlock()
		if n == 0 || !i.mu.TryLock() {
			return
		}
	}
}

func (i *Instance) drainLocked() {
	i.pendingMu.Lock()
	fns := i.pending
	i.pending = nil
	i.pendingMu.Unlock()
	if len(fns) == 0 || i.closed {
		return
	}
	for _, fn := range fns {
		if err := callUpdate(fn, i.sock); err != nil {
			i.closeSelfLocked(err)
			return
		}
	}
	if i.onPatch == nil {
		// Nobody receives the patch, so the client's HTML stays the base
		// and this change travels with the next event's patch. The state
		// bound still applies.
		if err := i.renderLocked(); err != nil {
			i.closeSelfLocked(err)
		}
		return
	}
	p, err := i.rerenderLocked()
	if err != nil {
		i.closeSelfLocked(err)
		return
	}
	if p != nil {
		i.onPatch(*p)
	}
}

// renderLocked renders into i.next, replacing invalid UTF-8 (patch offsets
// are computed on valid UTF-8, as the client sees it), and enforces
// MaxStateBytes; a render that outgrows the bound is stopped early.
func (i *Instance) renderLocked() error {
	max := i.reg.opts.MaxStateBytes
	i.next.reset(max)
	err := i.view.def.Template.Execute(i.next, i.sock.assigns)
	if i.next.over {
		return fmt.Errorf("%w: view %q: HTML over %d bytes", ErrStateTooLarge, i.view.name, max)
	}
	if err != nil {
		return fmt.Errorf("live: view %q: render: %w", i.view.name, err)
	}
	if b := i.next.buf.Bytes(); !utf8.Valid(b) {
		fixed := bytes.ToValidUTF8(b, []byte("\uFFFD"))
		i.next.buf.Reset()
		i.next.buf.Write(fixed)
	}
	size, err := i.meter.size(i.next.buf.Len(), i.sock.assigns)
	if err != nil {
		return fmt.Errorf("live: view %q: %w", i.view.name, err)
	}
	if size > max {
		return fmt.Errorf("%w: view %q: %d bytes", ErrStateTooLarge, i.view.name, size)
	}
	return nil
}

// rerenderLocked renders and, when the HTML changed, makes the next
// version the client's base and returns its patch.
func (i *Instance) rerenderLocked() (*protocol.Patch, error) {
	if err := i.renderLocked(); err != nil {
		return nil, err
	}
	p, changed := makePatch(i.cur.buf.Bytes(), i.next.buf.Bytes())
	if !changed {
		return nil, nil
	}
	i.version++
	p.Ref, p.Version = i.ref, i.version
	i.cur, i.next = i.next, i.cur
	return &p, nil
}

func (i *Instance) allow(ev *event) bool {
	o := ev.h.opts
	if o.rate <= 0 {
		return true
	}
	l := i.limiters[ev.name]
	if l == nil {
		if i.limiters == nil {
			i.limiters = make(map[string]*rate.Limiter)
		}
		l = rate.NewLimiter(rate.Limit(o.rate), o.burst)
		i.limiters[ev.name] = l
	}
	return l.AllowN(i.reg.now(), 1)
}

func callHandler(ctx context.Context, ev *event, s *Socket, payload json.RawMessage) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return ev.h.call(ctx, s, payload)
}

func callUpdate(fn func(*Socket), s *Socket) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	fn(s)
	return nil
}

// renderBuf is a render target that refuses to grow past max bytes, so a
// template looping over a huge assign stops early instead of growing
// memory. It has only Write, so io.WriteString cannot bypass the bound.
type renderBuf struct {
	buf  bytes.Buffer
	max  int
	over bool
}

var errRenderTooLarge = errors.New("live: render too large")

func (b *renderBuf) reset(max int) {
	b.buf.Reset()
	b.max, b.over = max, false
}

func (b *renderBuf) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.over = true
		return 0, errRenderTooLarge
	}
	return b.buf.Write(p)
}
