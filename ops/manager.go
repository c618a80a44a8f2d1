package ops

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/csrf"
	"github.com/livegate/livegate/internal/logsafe"
)

// Publisher is what the Manager needs from the gateway: a way to publish
// a message to every subscriber of a channel. data is always a
// json.RawMessage holding one encoded Message. livegate.Gateway satisfies
// it through PublisherFunc (see the package documentation).
type Publisher interface {
	Publish(ctx context.Context, channel string, data any) error
}

// PublisherFunc adapts a function to a Publisher.
type PublisherFunc func(ctx context.Context, channel string, data any) error

// Publish calls f(ctx, channel, data).
func (f PublisherFunc) Publish(ctx context.Context, channel string, data any) error {
	return f(ctx, channel, data)
}

// Func is the body of an operation. It runs on its own goroutine with a
// context that is cancelled by Cancel, Restart and Shutdown (never by the
// context given to Start, whose values it keeps), reports through p, and
// returns nil on success. Return ctx.Err() (or any error) after a
// cancellation so that the operation ends "cancelled". The text of a
// returned error is logged, never shown to the user; call p.Error for a
// message the user should see. A panic is recovered and fails the
// operation.
type Func func(ctx context.Context, p *Progress) error

// Defaults for the zero fields of Config.
const (
	DefaultRetention          = 24 * time.Hour
	DefaultReportInterval     = 50 * time.Millisecond
	DefaultLogLines           = 200
	DefaultLogRate            = 20
	DefaultLogBurst           = 50
	DefaultMaxMessageBytes    = 64 << 10
	DefaultMaxRunningPerOwner = 4
	DefaultMaxRunning         = 256
	DefaultListLimit          = 50
)

// MinMessageBytes is the smallest Config.MaxMessageBytes accepted: every
// text report fits in it.
const MinMessageBytes = 16 << 10

// MaxTextBytes is the longest status, log line or error message, in bytes
// of UTF-8; longer ones are cut and end in "…".
const MaxTextBytes = 1024

// MaxSwapTargets is the most distinct elements one operation may swap.
const MaxSwapTargets = 32

// EventDenied is the type of the audit event the Handler records when it
// refuses a request for an operation (unauthenticated, unknown or another
// user's). CSRF failures are audit.TypeCSRFRejected and refused channel
// joins audit.TypeChannelDenied.
const EventDenied = "operation_denied"

const (
	// writeTimeout bounds each store write and publish of a report.
	writeTimeout = 5 * time.Second
	// genericError is the error shown for a failure the Func did not
	// describe with Progress.Error.
	genericError = "The operation failed."
	// interruptedError is the error Recover stores.
	interruptedError = "The operation was interrupted by a server restart."
)

// Config configures a Manager. Only Publisher is required; every other
// zero field has the safe default its comment gives.
type Config struct {
	// Publisher publishes each report to the operation's channel.
	// Required.
	Publisher Publisher
	// Store persists operations. Nil: a new MemoryStore, which forgets
	// everything when the process exits.
	Store Store
	// Templates holds the named templates that Progress.Swap renders
	// (html/template: auto-escaped). Nil: Swap refuses every name.
	Templates *template.Template
	// RequiredGroup, when set, is a group (auth.Identity.Groups) that a
	// user must be in to join an operation channel, on top of owning the
	// operation. Empty: ownership alone.
	RequiredGroup string
	// Retention is how long Sweep keeps a finished operation. Zero:
	// DefaultRetention (24 h).
	Retention time.Duration
	// CSRF checks every request to Handler. Nil: Handler refuses every
	// request.
	CSRF *csrf.Protector
	// Identify returns the signed-in user of an HTTP request, typically
	// from the application's session. An error, or an identity without a
	// User, is refused. Nil: Handler refuses every request.
	Identify func(r *http.Request) (auth.Identity, error)
	// ClientIP returns the client address of an HTTP request for audit
	// events. Nil: the host of r.RemoteAddr (wrong behind a proxy: pass the
	// gateway's trusted-proxy-aware function there).
	ClientIP func(r *http.Request) string
	// Logger receives operational logs (failed operations, store and
	// publish failures). Nil: discarded.
	Logger *slog.Logger
	// Events records security events (refused joins and requests). Nil: a
	// sink logging them to Logger.
	Events audit.Sink
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// ReportInterval is the coalescing window of status, percent and swap
	// reports: within it only the latest value of each is published.
	// Zero: DefaultReportInterval (50 ms).
	ReportInterval time.Duration
	// LogLines is how many log lines an operation keeps. Zero:
	// DefaultLogLines (200).
	LogLines int
	// LogRate and LogBurst bound log lines per operation (a token bucket:
	// LogRate lines per second, bursts of LogBurst); lines over it are
	// dropped and counted in a later "… N log lines dropped" line. Zero:
	// DefaultLogRate (20/s) and DefaultLogBurst (50).
	LogRate  float64
	LogBurst int
	// MaxMessageBytes bounds each published message once encoded; a swap
	// or result that would exceed it is refused with ErrTooLarge. Keep it
	// below the gateway's outbound message limit (128 KiB by default).
	// Zero: DefaultMaxMessageBytes (64 KiB); at least MinMessageBytes.
	MaxMessageBytes int
	// MaxRunningPerOwner and MaxRunning bound the operations running at
	// once per owner and in total; Start refuses more with ErrTooMany.
	// Zero: DefaultMaxRunningPerOwner (4) and DefaultMaxRunning (256).
	MaxRunningPerOwner int
	MaxRunning         int
	// ListLimit is the most operations List returns. Zero:
	// DefaultListLimit (50).
	ListLimit int
}

// kindPattern is the grammar of operation kinds.
var kindPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Manager runs live operations: it starts them, persists and publishes
// their reports, authorises joins of their channels, cancels, restarts and
// sweeps them. Create it with New; it is safe for concurrent use.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	events    audit.Sink
	afterFunc func(d time.Duration, f func()) (stop func() bool)
	created   time.Time

	mu       sync.Mutex
	kinds    map[string]Func
	running  map[string]*run
	perOwner map[owner]int
	closed   bool
	wg       sync.WaitGroup
}

// owner identifies the owner of an operation: user names are unique only
// within a tenant.
type owner struct{ user, tenant string }

func ownerOf(id auth.Identity) owner { return owner{id.User, id.Tenant} }

// run is an operation running in this Manager.
type run struct {
	op        *Operation
	owner     owner
	cancel    context.CancelFunc
	cancelled atomic.Bool // Cancel, Restart or Shutdown asked it to stop
	progress  *Progress
}

// Operation is a started operation.
type Operation struct {
	ID            string // opaque UUIDv4
	Kind          string
	RestartedFrom string // the operation this one restarted, or ""
	CreatedAt     time.Time
	done          chan struct{}
}

// Channel returns the operation's channel, "op:<id>".
func (o *Operation) Channel() string { return Channel(o.ID) }

// Done returns a channel closed once the operation has finished and its
// final state is persisted and published.
func (o *Operation) Done() <-chan struct{} { return o.done }

// New returns a Manager for cfg.
func New(cfg Config) (*Manager, error) {
	if cfg.Publisher == nil {
		return nil, errors.New("ops: Publisher is required")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Retention", int64(cfg.Retention)}, {"ReportInterval", int64(cfg.ReportInterval)},
		{"LogLines", int64(cfg.LogLines)}, {"LogBurst", int64(cfg.LogBurst)},
		{"MaxMessageBytes", int64(cfg.MaxMessageBytes)}, {"MaxRunningPerOwner", int64(cfg.MaxRunningPerOwner)},
		{"MaxRunning", int64(cfg.MaxRunning)}, {"ListLimit", int64(cfg.ListLimit)},
	} {
		if f.v < 0 {
			return nil, fmt.Errorf("ops: negative %s", f.name)
		}
	}
	if cfg.LogRate < 0 {
		return nil, errors.New("ops: negative LogRate")
	}
	if cfg.MaxMessageBytes != 0 && cfg.MaxMessageBytes < MinMessageBytes {
		return nil, fmt.Errorf("ops: MaxMessageBytes below %d", MinMessageBytes)
	}
	setDefault(&cfg.Retention, DefaultRetention)
	setDefault(&cfg.ReportInterval, DefaultReportInterval)
	setDefault(&cfg.LogLines, DefaultLogLines)
	setDefault(&cfg.LogRate, DefaultLogRate)
	setDefault(&cfg.LogBurst, DefaultLogBurst)
	setDefault(&cfg.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&cfg.MaxRunningPerOwner, DefaultMaxRunningPerOwner)
	setDefault(&cfg.MaxRunning, DefaultMaxRunning)
	setDefault(&cfg.ListLimit, DefaultListLimit)
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	events := cfg.Events
	if events == nil {
		events = audit.NewSlogSink(log)
	}
	return &Manager{
		cfg:    cfg,
		log:    log,
		events: events,
		afterFunc: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		},
		created:  cfg.Now(),
		kinds:    make(map[string]Func),
		running:  make(map[string]*run),
		perOwner: make(map[owner]int),
	}, nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Register makes kind startable: Start(ctx, owner, kind) runs fn, and so
// does a Restart of an operation of that kind. Kinds match
// ^[a-z][a-z0-9_]{0,63}$ and are registered once.
func (m *Manager) Register(kind string, fn Func) error {
	if !kindPattern.MatchString(kind) {
		return fmt.Errorf("%w: %q", ErrInvalidKind, logsafe.String(kind))
	}
	if fn == nil {
		return errors.New("ops: register: nil Func")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, dup := m.kinds[kind]; dup {
		return fmt.Errorf("ops: kind %q already registered", kind)
	}
	m.kinds[kind] = fn
	return nil
}

// Start starts an operation of kind owned by owner and returns it at once;
// its Func runs on a new goroutine. The operation is stored before Start
// returns, and a "state" message with state "running" is published. ctx
// bounds only the store write; the operation's own context keeps ctx's
// values but is cancelled only by Cancel, Restart and Shutdown.
//
// Errors: ErrForbidden for an identity without a User, ErrUnknownKind,
// ErrTooMany past Config.MaxRunningPerOwner or Config.MaxRunning,
// ErrClosed after Shutdown, or the store's error.
func (m *Manager) Start(ctx context.Context, owner auth.Identity, kind string) (*Operation, error) {
	return m.start(ctx, owner, kind, "")
}

func (m *Manager) start(ctx context.Context, who auth.Identity, kind, from string) (*Operation, error) {
	if who.User == "" {
		return nil, ErrForbidden
	}
	ow := ownerOf(who)
	now := m.cfg.Now()
	op := &Operation{ID: newID(), Kind: kind, RestartedFrom: from, CreatedAt: now, done: make(chan struct{})}
	opCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{op: op, owner: ow, cancel: cancel}
	r.progress = newProgress(m, context.WithoutCancel(ctx), op)

	m.mu.Lock()
	fn := m.kinds[kind]
	var err error
	switch {
	case m.closed:
		err = ErrClosed
	case fn == nil:
		err = fmt.Errorf("%w: %q", ErrUnknownKind, logsafe.String(kind))
	case len(m.running) >= m.cfg.MaxRunning || m.perOwner[ow] >= m.cfg.MaxRunningPerOwner:
		err = ErrTooMany
	default:
		m.running[op.ID] = r
		m.perOwner[ow]++
		m.wg.Add(1)
	}
	m.mu.Unlock()
	if err != nil {
		cancel()
		return nil, err
	}

	rec := Record{
		Snapshot: Snapshot{
			ID: op.ID, Kind: kind, State: StateRunning, Seq: 1, RestartedFrom: from,
			CreatedAt: now, UpdatedAt: now,
		},
		User:   who.User,
		Tenant: who.Tenant,
	}
	if err := m.cfg.Store.Create(ctx, rec); err != nil {
		m.release(r)
		m.wg.Done()
		return nil, fmt.Errorf("ops: start: %w", err)
	}
	r.progress.started()
	go m.run(opCtx, r, fn)
	return op, nil
}

// run runs fn and finishes the operation.
func (m *Manager) run(ctx context.Context, r *run, fn Func) {
	defer m.wg.Done()
	err := m.call(ctx, r, fn)
	cancelled := r.cancelled.Load()
	state := r.progress.finish(err, cancelled)
	switch state {
	case StateFailed:
		m.log.Warn("ops: operation failed", "op", r.op.ID, "kind", r.op.Kind, "err", logsafe.String(err.Error()))
	case StateCancelled:
		m.log.Info("ops: operation cancelled", "op", r.op.ID, "kind", r.op.Kind)
	}
	m.release(r)
	close(r.op.done)
}

// call runs fn, turning a panic into an error.
func (m *Manager) call(ctx context.Context, r *run, fn Func) (err error) {
	defer func() {
		if v := recover(); v != nil {
			m.log.Error("ops: operation panicked", "op", r.op.ID, "kind", r.op.Kind,
				"panic", logsafe.String(fmt.Sprint(v)), "stack", string(debug.Stack()))
			err = fmt.Errorf("ops: panic: %v", v)
		}
	}()
	return fn(ctx, r.progress)
}

// release forgets a run that has ended (or failed to start).
func (m *Manager) release(r *run) {
	r.cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running[r.op.ID] == r {
		delete(m.running, r.op.ID)
		if m.perOwner[r.owner]--; m.perOwner[r.owner] <= 0 {
			delete(m.perOwner, r.owner)
		}
	}
}

// lookup returns the stored operation id if owner owns it, else
// ErrNotFound.
func (m *Manager) lookup(ctx context.Context, who auth.Identity, id string) (Record, error) {
	if who.User == "" || !validID(id) {
		return Record{}, ErrNotFound
	}
	rec, err := m.cfg.Store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("ops: get: %w", err)
	}
	if rec.User != who.User || rec.Tenant != who.Tenant {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// Get returns the persisted state of operation id for its owner. Another
// user's operation is ErrNotFound, like an unknown or malformed id.
// Reports coalesced in the last Config.ReportInterval may not be
// persisted yet.
func (m *Manager) Get(ctx context.Context, owner auth.Identity, id string) (*Snapshot, error) {
	rec, err := m.lookup(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	return &rec.Snapshot, nil
}

// List returns up to Config.ListLimit operations of owner, newest first,
// without their Logs and Swaps.
func (m *Manager) List(ctx context.Context, owner auth.Identity) ([]Snapshot, error) {
	if owner.User == "" {
		return nil, nil
	}
	recs, err := m.cfg.Store.ListByOwner(ctx, owner.User, owner.Tenant, m.cfg.ListLimit)
	if err != nil {
		return nil, fmt.Errorf("ops: list: %w", err)
	}
	out := make([]Snapshot, len(recs))
	for i := range recs {
		out[i] = recs[i].Snapshot
	}
	return out, nil
}

// Cancel cancels the context of operation id, owned by owner, and returns
// at once; the operation ends when its Func returns (see Operation.Done).
// Another user's or an unknown id is ErrNotFound; an operation that has
// finished, or that this Manager does not run, is ErrNotRunning.
func (m *Manager) Cancel(ctx context.Context, owner auth.Identity, id string) error {
	m.mu.Lock()
	r := m.running[id]
	m.mu.Unlock()
	if r != nil {
		if owner.User == "" || r.owner != ownerOf(owner) {
			return ErrNotFound
		}
		r.cancelled.Store(true)
		r.cancel()
		return nil
	}
	if _, err := m.lookup(ctx, owner, id); err != nil {
		return err
	}
	return ErrNotRunning
}

// Restart starts a new operation of the same kind as operation id, owned
// by owner, and then cancels id if it still runs. The new operation
// records id as RestartedFrom. Errors are those of Get and Start; when the
// new operation cannot start, the old one is left alone.
func (m *Manager) Restart(ctx context.Context, owner auth.Identity, id string) (*Operation, error) {
	rec, err := m.lookup(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	op, err := m.start(ctx, owner, rec.Kind, rec.ID)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	r := m.running[id]
	m.mu.Unlock()
	if r != nil {
		r.cancelled.Store(true)
		r.cancel()
	}
	return op, nil
}

// Sweep deletes the operations that finished more than Config.Retention
// ago and returns how many it deleted. Running operations are kept
// however old. Call it periodically (every few minutes).
func (m *Manager) Sweep(ctx context.Context) (int, error) {
	n, err := m.cfg.Store.DeleteFinishedBefore(ctx, m.cfg.Now().Add(-m.cfg.Retention))
	if err != nil {
		return n, fmt.Errorf("ops: sweep: %w", err)
	}
	return n, nil
}

// Recover marks as failed ("interrupted by a server restart") every
// operation that the Store says is running but that was created before
// this Manager, and returns how many it marked: their process stopped
// without finishing them. Call it once at start-up, and only when this
// Manager is the only one using the Store.
func (m *Manager) Recover(ctx context.Context) (int, error) {
	n, err := m.cfg.Store.FailRunning(ctx, m.created, m.cfg.Now(), interruptedError)
	if err != nil {
		return n, fmt.Errorf("ops: recover: %w", err)
	}
	return n, nil
}

// Shutdown stops the Manager: Start and Register fail with ErrClosed from
// now on, every running operation is cancelled, and Shutdown waits for
// them to finish (their final state persisted and published) or for ctx to
// be done, whichever comes first, returning ctx's error in the latter
// case. Shut the Manager down before the gateway and the store it uses.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	for _, r := range m.running {
		r.cancelled.Store(true)
		r.cancel()
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { // ends when the last operation does
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ops: shutdown: %w", ctx.Err())
	}
}
