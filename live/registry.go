package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"maps"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// Defaults applied to zero Options fields.
const (
	DefaultMaxStateBytes   = 64 << 10
	DefaultMaxViewsPerConn = 8
	DefaultSessionTTL      = time.Hour
)

// maxPendingUpdates bounds the updates queued for one busy instance.
const maxPendingUpdates = 1024

// Options configure a Registry. The zero value of each field is the
// default documented on it.
type Options struct {
	// MaxStateBytes bounds one view instance's state: after the mount and
	// after every event or update, the size of its rendered HTML plus the
	// size of its assigns encoded as JSON (encoding/json, without HTML
	// escaping) must not exceed it. An instance over it is closed with
	// ErrStateTooLarge (a first render over HTTP fails with it). Default
	// 64 KiB.
	MaxStateBytes int
	// MaxViewsPerConn is how many views one connection may have joined at
	// once; the gateway refuses further joins. Default 8.
	MaxViewsPerConn int
	// SessionTTL is the lifetime of session tokens; a page older than this
	// can no longer join (after a reconnect, say) and must be reloaded.
	// Default 1 h.
	SessionTTL time.Duration
	// Roles are the RBAC roles that Require guards resolve groups
	// against; give the gateway's Config.Roles.
	Roles []policy.Role
	// Now is the clock for session expiry and rate limits; default
	// time.Now.
	Now func() time.Time
}

// Registry holds the registered views, signs session tokens and creates
// view instances. It is safe for concurrent use; views may be registered
// while it serves.
type Registry struct {
	key    []byte
	opts   Options
	guards *policy.Set

	mu    sync.RWMutex
	views map[string]*view

	refs atomic.Uint64
}

// view is a registered, validated View.
type view struct {
	name   string
	def    View
	events map[string]*event
}

type event struct {
	name  string
	h     *Handler
	guard *policy.Guard
}

// NewRegistry returns a Registry signing session tokens with a key derived
// from key (at least 32 bytes; the gateway's token secret will do, the
// derivation keeps the uses apart).
func NewRegistry(key []byte, opts Options) (*Registry, error) {
	if len(key) < 32 {
		return nil, errors.New("live: key must be at least 32 bytes")
	}
	if opts.MaxStateBytes < 0 || opts.MaxViewsPerConn < 0 || opts.SessionTTL < 0 {
		return nil, errors.New("live: negative option")
	}
	if opts.MaxStateBytes == 0 {
		opts.MaxStateBytes = DefaultMaxStateBytes
	}
	if opts.MaxViewsPerConn == 0 {
		opts.MaxViewsPerConn = DefaultMaxViewsPerConn
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	guards, err := policy.New(policy.Config{Roles: opts.Roles})
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	return &Registry{key: deriveKey(key), opts: opts, guards: guards, views: make(map[string]*view)}, nil
}

// MaxViewsPerConn returns the configured number of views one connection
// may join.
func (r *Registry) MaxViewsPerConn() int { return r.opts.MaxViewsPerConn }

func (r *Registry) now() time.Time { return r.opts.Now() }

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }

// Register adds a view. Its name and event names must match
// ^[a-z][a-z0-9_]{0,63}$, it needs a template, and event options must be
// valid (a positive rate with a burst of at least 1; a guard that
// compiles).
func (r *Registry) Register(def View) error {
	if !policy.ValidEventName(def.Name) {
		return fmt.Errorf("%w: view %q", ErrInvalidName, def.Name)
	}
	if def.Template == nil {
		return fmt.Errorf("%w: %q", errNilTemplate, def.Name)
	}
	v := &view{name: def.Name, def: def, events: make(map[string]*event, len(def.Events))}
	v.def.Events = nil
	for name, h := range def.Events {
		if !policy.ValidEventName(name) {
			return fmt.Errorf("%w: view %q: event %q", ErrInvalidName, def.Name, name)
		}
		if h == nil || h.call == nil {
			return fmt.Errorf("live: view %q: event %q: nil handler (use Event)", def.Name, name)
		}
		o := h.opts
		if o.rate < 0 || (o.rate > 0 && o.burst < 1) {
			return fmt.Errorf("live: view %q: event %q: RateLimit needs a positive rate and burst", def.Name, name)
		}
		ev := &event{name: name, h: h}
		if o.access != nil {
			a := *o.access
			if a.Mode == policy.ModeDeny {
				a.Mode = policy.ModeAuthenticated
			}
			g, err := r.guards.CompileGuard(a)
			if err != nil {
				return fmt.Errorf("live: view %q: event %q: %w", def.Name, name, err)
			}
			ev.guard = g
		}
		v.events[name] = ev
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.views[def.Name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateView, def.Name)
	}
	r.views[def.Name] = v
	return nil
}

func (r *Registry) view(name string) *view {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.views[name]
}

// Render is the first render of view name over plain HTTP, for user and
// the HTTP session: it mounts the view with params (a JSON object, or
// nil), renders it and writes
//
//	<div data-lg-view="NAME" data-lg-session="TOKEN" [data-lg-params="…"]>HTML</div>
//
// which works without JavaScript. The browser client later joins with the
// token and the page's CSRF token, and takes over. Nothing is written when
// it fails.
func (r *Registry) Render(ctx context.Context, w io.Writer, name, user string, session Session, params json.RawMessage) error {
	v := r.view(name)
	if v == nil {
		return fmt.Errorf("%w: %q", ErrUnknownView, name)
	}
	if err := validParams(params); err != nil {
		return err
	}
	sock := newSocket(user, cloneSession(session), nil)
	if err := callMount(ctx, v, sock, params); err != nil {
		return err
	}
	var body renderBuf
	body.reset(r.opts.MaxStateBytes)
	err := v.def.Template.Execute(&body, sock.assigns)
	if body.over {
		return fmt.Errorf("%w: view %q: HTML over %d bytes", ErrStateTooLarge, name, r.opts.MaxStateBytes)
	}
	if err != nil {
		return fmt.Errorf("live: view %q: render: %w", name, err)
	}
	out := bytes.ToValidUTF8(body.buf.Bytes(), []byte("\uFFFD"))
	var meter stateMeter
	if size, err := meter.size(len(out), sock.assigns); err != nil {
		return fmt.Errorf("live: view %q: %w", name, err)
	} else if size > r.opts.MaxStateBytes {
		return fmt.Errorf("%w: view %q: %d bytes", ErrStateTooLarge, name, size)
	}
	tok, err := r.SignSession(name, user, session)
	if err != nil {
		return err
	}
	var page bytes.Buffer
	page.Grow(len(out) + len(tok) + 96)
	page.WriteString(`<div data-lg-view="`)
	page.WriteString(name) // validated: [a-z0-9_]
	page.WriteString(`" data-lg-session="`)
	page.WriteString(html.EscapeString(tok))
	page.WriteByte('"')
	if p := bytes.TrimSpace(params); len(p) > 0 && string(p) != "null" {
		page.WriteString(` data-lg-params="`)
		page.WriteString(html.EscapeString(string(p)))
		page.WriteByte('"')
	}
	page.WriteByte('>')
	page.Write(out)
	page.WriteString(`</div>`)
	_, err = w.Write(page.Bytes())
	return err
}

// JoinOption configures one Join.
type JoinOption func(*Instance)

// WithPatch sets where the patches of server-initiated updates
// (Instance.Update) go, in version order. Without it an update changes the
// state, and its change reaches the client with the next event's patch.
// fn runs with the instance locked: it must not block, nor call the
// instance's methods other than Update.
func WithPatch(fn func(protocol.Patch)) JoinOption {
	return func(i *Instance) { i.onPatch = fn }
}

// WithClosed sets fn to be called, once, when the instance closes itself
// outside an Event call: an update made its state exceed MaxStateBytes
// (err is ErrStateTooLarge), failed to render, or panicked (*PanicError).
// It is not called for Close, nor when Event returns the error. fn runs
// with the instance locked: it must not block, nor call the instance's
// methods other than Update.
func WithClosed(fn func(ref string, err error)) JoinOption {
	return func(i *Instance) { i.onClosed = fn }
}

// WithRequest gives the request attributes (client IP, Origin) that the
// rules of Require guards may read.
func WithRequest(req policy.RequestAttrs) JoinOption {
	return func(i *Instance) { i.request = req }
}

// Join creates a live instance of view name for user over a connection:
// it checks that sessionToken was signed for this view and this user and
// has not expired (else a *SessionError), mounts the view with the token's
// session data and params (a JSON object or nil; client-controlled), and
// renders it. It returns the instance and its full HTML, version 1. The
// instance closes when ctx is done or Close is called.
func (r *Registry) Join(ctx context.Context, user, name, sessionToken string, params json.RawMessage, opts ...JoinOption) (*Instance, string, error) {
	session, err := r.verifySession(sessionToken, name, user)
	if err != nil {
		return nil, "", err
	}
	v := r.view(name)
	if v == nil {
		return nil, "", fmt.Errorf("%w: %q", ErrUnknownView, name)
	}
	if err := validParams(params); err != nil {
		return nil, "", err
	}
	inst := &Instance{
		reg:  r,
		view: v,
		ref:  "v" + strconv.FormatUint(r.refs.Add(1), 36),
		user: user,
		cur:  new(renderBuf),
		next: new(renderBuf),
	}
	for _, opt := range opts {
		opt(inst)
	}
	inst.ctx, inst.cancel = context.WithCancel(ctx)
	inst.sock = newSocket(user, session, inst)

	inst.mu.Lock()
	if err := callMount(inst.ctx, v, inst.sock, params); err != nil {
		inst.closeLocked()
		inst.mu.Unlock()
		return nil, "", err
	}
	if err := inst.renderLocked(); err != nil {
		inst.closeLocked()
		inst.mu.Unlock()
		return nil, "", err
	}
	inst.cur, inst.next = inst.next, inst.cur
	inst.version = 1
	html := inst.cur.buf.String()
	inst.stopAfter = context.AfterFunc(ctx, inst.Close)
	inst.unlockAndDrain()
	return inst, html, nil
}

func callMount(ctx context.Context, v *view, s *Socket, params json.RawMessage) (err error) {
	if v.def.Mount == nil {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	if err := v.def.Mount(ctx, s, s.Session(), params); err != nil {
		return fmt.Errorf("live: view %q: mount: %w", v.name, err)
	}
	return nil
}

// stateMeter measures the state MaxStateBytes bounds: HTML bytes plus the
// JSON size of the assigns. One per instance, so measuring allocates
// nothing but encoding/json's pooled buffer.
type stateMeter struct {
	n   int
	enc *json.Encoder
}

func (m *stateMeter) Write(p []byte) (int, error) {
	m.n += len(p)
	return len(p), nil
}

func (m *stateMeter) size(htmlLen int, assigns map[string]any) (int, error) {
	if m.enc == nil {
		m.enc = json.NewEncoder(m)
		m.enc.SetEscapeHTML(false)
	}
	m.n = 0
	if err := m.enc.Encode(assigns); err != nil {
		return 0, fmt.Errorf("assigns not encodable as JSON: %w", err)
	}
	return htmlLen + m.n - 1, nil // Encode adds a newline
}

func cloneAssigns(m map[string]any) map[string]any { return maps.Clone(m) }
