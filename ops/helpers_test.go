package ops_test

import (
	"context"
	"html/template"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/ops"
	"github.com/livegate/livegate/ops/opstest"
	"github.com/livegate/livegate/store"
)

var (
	t0    = time.UnixMilli(1_700_000_000_000)
	alice = auth.Identity{User: "alice", Session: "s-alice", Groups: []string{"ops"}}
	bob   = auth.Identity{User: "bob", Session: "s-bob", Groups: []string{"ops"}}
)

// xss lists payloads that must arrive as text.
var xss = []string{
	`<img src=x onerror=alert(1)>`,
	`<script>alert(1)</script>`,
	`"><svg onload=alert(1)>`,
	`'><iframe srcdoc="<script>alert(1)</script>">`,
}

// fakeClock is a settable clock whose AfterFunc timers fire when Advance
// passes their deadline. It is safe for concurrent use.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at   time.Time
	f    func()
	done bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.done
		t.done = true
		return was
	}
}

// Advance moves the clock and runs the timers that are due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			due = append(due, t)
		}
	}
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t.done })
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// events is an audit.Sink that keeps events.
type events struct {
	mu sync.Mutex
	ev []audit.Event
}

func (e *events) Record(_ context.Context, ev audit.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ev = append(e.ev, ev)
}

func (e *events) take() []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := e.ev
	e.ev = nil
	return ev
}

// env is a Manager under test with its doubles.
type env struct {
	m      *ops.Manager
	pub    *opstest.Recorder
	clock  *fakeClock
	events *events
	store  ops.Store
	holds  chan *held
}

// held is a running "hold" operation: its Func waits for release (or
// cancellation) and returns what release sends.
type held struct {
	p       *ops.Progress
	ctx     context.Context
	release chan error
}

// newEnv returns a Manager on s (a MemoryStore if nil) with a fake clock,
// a recorder, an audit log and the kind "hold" registered. edit adjusts
// the Config.
func newEnv(t *testing.T, s ops.Store, edit func(*ops.Config)) *env {
	t.Helper()
	if s == nil {
		s = ops.NewMemoryStore()
	}
	e := &env{pub: &opstest.Recorder{}, clock: newFakeClock(), events: &events{}, store: s, holds: make(chan *held, 16)}
	cfg := ops.Config{
		Publisher: e.pub,
		Store:     s,
		Events:    e.events,
		Now:       e.clock.Now,
		Templates: template.Must(template.New("row").Parse(`<tr><td>{{.Name}}</td><td>{{.N}}</td></tr>`)),
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := ops.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ops.SetAfterFunc(m, e.clock.AfterFunc)
	e.m = m
	if err := m.Register("hold", func(ctx context.Context, p *ops.Progress) error {
		h := &held{p: p, ctx: ctx, release: make(chan error)}
		e.holds <- h
		select {
		case err := <-h.release:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return e
}

// hold starts a "hold" operation for who and returns it with its handle.
func (e *env) hold(t *testing.T, who auth.Identity) (*ops.Operation, *held) {
	t.Helper()
	op, err := e.m.Start(context.Background(), who, "hold")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case h := <-e.holds:
		return op, h
	case <-time.After(10 * time.Second):
		t.Fatal("the operation did not start")
		return nil, nil
	}
}

// wait waits for op to finish.
func wait(t *testing.T, op *ops.Operation) {
	t.Helper()
	select {
	case <-op.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("operation %s did not finish", op.ID)
	}
}

// ofType returns the messages of type typ.
func ofType(msgs []ops.Message, typ string) []ops.Message {
	var out []ops.Message
	for _, m := range msgs {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// checkSeq checks that msgs are numbered 1, 2, 3… and start with the
// running state.
func checkSeq(t *testing.T, id string, msgs []ops.Message) {
	t.Helper()
	if len(msgs) == 0 || msgs[0].Type != ops.TypeState || msgs[0].State != ops.StateRunning {
		t.Fatalf("first message %+v, want state running", msgs)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) || m.Op != id {
			t.Fatalf("message %d = %+v; want seq %d, op %s", i, m, i+1, id)
		}
	}
}

// sqliteStore opens a SQLite database at path, closed at the end of the
// test.
func sqliteStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func tempDB(t *testing.T) string { return filepath.Join(t.TempDir(), "livegate.db") }
