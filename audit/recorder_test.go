package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/store"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// memStore is an audit.Store in memory that records its calls.
type memStore struct {
	mu      sync.Mutex
	events  []audit.Event
	batches []int
	deletes []time.Time
	err     error         // returned by WriteEvents
	gate    chan struct{} // when set, WriteEvents waits for it or ctx
}

func (s *memStore) WriteEvents(ctx context.Context, events []audit.Event) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.events = append(s.events, events...)
	s.batches = append(s.batches, len(events))
	return nil
}

func (s *memStore) DeleteBefore(_ context.Context, t time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletes = append(s.deletes, t)
	return 0, nil
}

func (s *memStore) snapshot() (events []audit.Event, batches []int, deletes []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events), slices.Clone(s.batches), slices.Clone(s.deletes)
}

// msgCounter is a slog.Handler counting records by message.
type msgCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *msgCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *msgCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Message]++
	return nil
}
func (c *msgCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *msgCounter) WithGroup(string) slog.Handler      { return c }
func (c *msgCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[msg]
}

// openDB opens a SQLite database in a temporary directory.
func openDB(t testing.TB) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func closeRecorder(t testing.TB, r *audit.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestRecorderBatchesAndPersists(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	spy := &spyStore{Store: db.Audit()}
	r := audit.NewRecorder(audit.RecorderConfig{
		Store:         spy,
		BatchSize:     10,
		FlushInterval: time.Hour, // only full batches and Close write
	})
	for i := range 25 {
		r.Record(context.Background(), audit.Event{
			Type: audit.TypeAuthFailed, Time: t0.Add(time.Duration(i) * time.Second),
			User: fmt.Sprintf("user%d", i), Severity: audit.SeverityWarning,
		})
	}
	closeRecorder(t, r)
	if got := spy.sizes(); !slices.Equal(got, []int{10, 10, 5}) {
		t.Fatalf("batches %v, want [10 10 5]", got)
	}
	recs, err := db.Audit().Query(context.Background(), store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 25 {
		t.Fatalf("%d events persisted, want 25", len(recs))
	}
	for i, rec := range recs {
		if rec.User != fmt.Sprintf("user%d", i) || !rec.Time.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("record %d = %+v", i, rec)
		}
	}
	if st := r.Stats(); st != (audit.Stats{Recorded: 25, Written: 25}) {
		t.Fatalf("Stats = %+v", st)
	}
}

// spyStore records the batch sizes written to an audit.Store.
type spyStore struct {
	audit.Store
	mu    sync.Mutex
	batch []int
}

func (s *spyStore) WriteEvents(ctx context.Context, events []audit.Event) error {
	s.mu.Lock()
	s.batch = append(s.batch, len(events))
	s.mu.Unlock()
	return s.Store.WriteEvents(ctx, events)
}

func (s *spyStore) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batch)
}

func TestRecorderFlushesOnInterval(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	r := audit.NewRecorder(audit.RecorderConfig{Store: db.Audit(), FlushInterval: 10 * time.Millisecond})
	defer closeRecorder(t, r)
	r.Record(context.Background(), audit.Event{Type: audit.TypeRevoked})
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := db.Audit().Query(context.Background(), store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 {
			rec := recs[0]
			if rec.Severity != audit.SeverityWarning || time.Since(rec.Time) > time.Minute {
				t.Fatalf("record %+v: want default severity and a fresh time", rec)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("event not written within 10s of a 10ms flush interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRecorderNeverBlocks records 100,000 events while the Store is stuck:
// Record must return, drop what the queue cannot hold, warn about it
// (rate-limited) and keep memory bounded; once the Store recovers, Close
// writes every accepted event. Not parallel: it measures the heap.
func TestRecorderNeverBlocks(t *testing.T) {
	ms := &memStore{gate: make(chan struct{})}
	logs := &msgCounter{}
	r := audit.NewRecorder(audit.RecorderConfig{
		Store:         ms,
		Logger:        slog.New(logs),
		FlushInterval: time.Hour, // the writer takes exactly one full batch, then blocks
		Retention:     -1,
	})
	defer closeRecorder(t, r)

	const total = 100_000
	big := strings.Repeat("x", 64<<10) // each event carries 64 KiB of user input
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	start := time.Now()
	for i := range total {
		r.Record(context.Background(), audit.Event{Type: audit.TypeRateLimited, User: fmt.Sprint("u", i), Detail: big})
	}
	elapsed := time.Since(start)
	t.Logf("100k Record calls with the store blocked: %v", elapsed)

	runtime.GC()
	runtime.ReadMemStats(&after)
	st := r.Stats()

	if st.Recorded+st.Dropped != total {
		t.Errorf("Recorded %d + Dropped %d != %d", st.Recorded, st.Dropped, total)
	}
	// The queue, plus at most the one batch the blocked writer holds.
	if lo, hi := uint64(audit.DefaultQueueSize), uint64(audit.DefaultQueueSize+audit.DefaultBatchSize); st.Recorded < lo || st.Recorded > hi {
		t.Errorf("Recorded = %d, want between %d and %d", st.Recorded, lo, hi)
	}
	if n, most := logs.count("audit: event dropped"), 1+int(elapsed/(10*time.Second)); n < 1 || n > most {
		t.Errorf("%d drop warnings in %v, want 1 to %d (one per 10s)", n, elapsed, most)
	}
	if n := logs.count("security event"); n != total {
		t.Errorf("%d events logged, want every one (%d)", n, total)
	}
	// Queued events hold sanitised (truncated) copies, not the 64 KiB
	// input: ~8k events of well under 1 KiB each.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 16<<20 {
		t.Errorf("heap grew by %d MiB while recording", grown>>20)
	}

	close(ms.gate) // the store recovers
	closeRecorder(t, r)
	st = r.Stats()
	events, _, _ := ms.snapshot()
	if st.Written != st.Recorded || st.WriteErrors != 0 || uint64(len(events)) != st.Written {
		t.Fatalf("after Close: %+v, %d stored; want every recorded event written", st, len(events))
	}
}

// TestRecorderSQLiteLocked holds the SQLite write lock from another
// connection, as another process would, while recording: Record returns
// and drops instead of waiting, and what was accepted is written once the
// lock is released.
func TestRecorderSQLiteLocked(t *testing.T) {
	t.Parallel()
	db, path := openDB(t)
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	r := audit.NewRecorder(audit.RecorderConfig{Store: db.Audit(), QueueSize: 100, BatchSize: 10})
	const total = 10_000
	for i := range total {
		r.Record(ctx, audit.Event{Type: audit.TypeAuthFailed, User: fmt.Sprint("u", i)})
	}
	// Reaching this line with the lock held is the point of the test.
	st := r.Stats()
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if st.Recorded+st.Dropped != total || st.Dropped == 0 {
		t.Fatalf("Stats %+v: want %d events counted, most dropped", st, total)
	}
	closeRecorder(t, r)
	st = r.Stats()
	// A batch whose wait for the lock outlived SQLite's busy timeout (5s,
	// on a loaded machine) fails and is lost; the rest is written.
	if st.Written > st.Recorded || st.Written+st.WriteErrors*10 < st.Recorded {
		t.Fatalf("after Close: %+v", st)
	}
	var rows uint64
	if err := raw.QueryRow(`SELECT count(*) FROM audit_events`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != st.Written {
		t.Fatalf("%d rows, want %d", rows, st.Written)
	}
}

func TestRecorderCloseFlushesAndRefuses(t *testing.T) {
	t.Parallel()
	ms := &memStore{}
	r := audit.NewRecorder(audit.RecorderConfig{Store: ms, FlushInterval: time.Hour, Retention: -1})
	for range 3 {
		r.Record(context.Background(), audit.Event{Type: "x"})
	}
	closeRecorder(t, r)
	closeRecorder(t, r) // twice is fine
	r.Record(context.Background(), audit.Event{Type: "late"})
	events, batches, deletes := ms.snapshot()
	if len(events) != 3 || !slices.Equal(batches, []int{3}) {
		t.Fatalf("events %d, batches %v; want 3 in one batch", len(events), batches)
	}
	if len(deletes) != 0 {
		t.Fatalf("retention sweep ran with Retention < 0: %v", deletes)
	}
	if st := r.Stats(); st != (audit.Stats{Recorded: 3, Written: 3, Dropped: 1}) {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestRecorderCloseGivesUp(t *testing.T) {
	t.Parallel()
	ms := &memStore{gate: make(chan struct{})} // never opens
	r := audit.NewRecorder(audit.RecorderConfig{Store: ms, BatchSize: 1, Retention: -1})
	r.Record(context.Background(), audit.Event{Type: "x"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
}

func TestRecorderConcurrentRecordAndClose(t *testing.T) {
	t.Parallel()
	ms := &memStore{}
	r := audit.NewRecorder(audit.RecorderConfig{Store: ms, QueueSize: 64, BatchSize: 16, FlushInterval: time.Millisecond})
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r.Record(context.Background(), audit.Event{Type: "x", User: fmt.Sprint(w, "-", i)})
			}
		})
	}
	time.Sleep(time.Millisecond)
	closeRecorder(t, r)
	wg.Wait()
	st := r.Stats()
	events, _, _ := ms.snapshot()
	if st.Recorded+st.Dropped != workers*each {
		t.Fatalf("Recorded %d + Dropped %d != %d", st.Recorded, st.Dropped, workers*each)
	}
	if st.Written != st.Recorded || uint64(len(events)) != st.Written {
		t.Fatalf("Stats %+v, %d stored: every accepted event must be written", st, len(events))
	}
}

func TestRecorderWriteErrors(t *testing.T) {
	t.Parallel()
	logs := &msgCounter{}
	ms := &memStore{err: errors.New("disk full")}
	r := audit.NewRecorder(audit.RecorderConfig{Store: ms, Logger: slog.New(logs), BatchSize: 1, Retention: -1})
	for range 5 {
		r.Record(context.Background(), audit.Event{Type: "x"})
	}
	closeRecorder(t, r)
	if st := r.Stats(); st.WriteErrors != 5 || st.Written != 0 || st.Recorded != 5 {
		t.Fatalf("Stats = %+v", st)
	}
	if n := logs.count("audit: write failed"); n != 1 {
		t.Fatalf("%d write-failure warnings, want 1 (rate-limited)", n)
	}
}

func TestRecorderJSONLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	r := audit.NewRecorder(audit.RecorderConfig{JSONLines: &out}) // no Store
	hostile := []audit.Event{
		{Type: audit.TypeAuthFailed, Time: t0, User: "mallory\n{\"type\":\"forged\"}", IP: "192.0.2.1"},
		{Type: audit.TypeEventDenied, Time: t0, Detail: "\x1b[2J\x1b[31m" + strings.Repeat("A", 1<<20), Severity: audit.SeverityCritical},
		{Type: audit.TypeChannelDenied, Time: t0, Detail: "room\u2028x\u202eevil", Reason: "a\r\nb", Session: "s", Tenant: "t", ConnID: "c", RequestID: "q"},
	}
	for _, e := range hostile {
		r.Record(context.Background(), e)
	}
	closeRecorder(t, r)

	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	var lines []map[string]string
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 4096 {
			t.Fatalf("line of %d bytes", len(line))
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		for k, v := range m {
			if strings.ContainsAny(v, "\n\r\x1b\u2028\u202e") {
				t.Fatalf("%s = %q not sanitised", k, v)
			}
		}
		lines = append(lines, m)
	}
	if len(lines) != len(hostile) {
		t.Fatalf("%d lines, want %d", len(lines), len(hostile))
	}
	if lines[0]["type"] != audit.TypeAuthFailed || lines[0]["user"] != "mallory\uFFFD{\"type\":\"forged\"}" ||
		lines[0]["time"] != "2025-03-01T12:00:00Z" || lines[0]["severity"] != "warning" || lines[0]["ip"] != "192.0.2.1" {
		t.Fatalf("line 0 = %v", lines[0])
	}
	if _, ok := lines[0]["detail"]; ok {
		t.Fatal("empty detail not omitted")
	}
	want := map[string]string{"time": "2025-03-01T12:00:00Z", "type": audit.TypeChannelDenied, "severity": "warning",
		"session": "s", "tenant": "t", "conn": "c", "request": "q", "reason": "a\uFFFD\uFFFDb", "detail": "room\uFFFDx\uFFFDevil"}
	if fmt.Sprint(lines[2]) != fmt.Sprint(want) {
		t.Fatalf("line 2 = %v, want %v", lines[2], want)
	}
}

func TestRecorderRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	a := db.Audit()
	now := t0.Add(40 * 24 * time.Hour)
	err := a.WriteEvents(ctx, []audit.Event{
		{Type: "old", Time: now.Add(-31 * 24 * time.Hour)},
		{Type: "kept", Time: now.Add(-29 * 24 * time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first sweep runs when the recorder starts.
	r := audit.NewRecorder(audit.RecorderConfig{Store: a, Now: func() time.Time { return now }})
	closeRecorder(t, r)
	recs, err := a.Query(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Type != "kept" {
		t.Fatalf("after sweep: %+v; want only the event younger than 30 days", recs)
	}

	// Then one every SweepInterval, with the configured retention.
	ms := &memStore{}
	r = audit.NewRecorder(audit.RecorderConfig{Store: ms, Retention: time.Hour, SweepInterval: time.Millisecond,
		Now: func() time.Time { return now }})
	defer closeRecorder(t, r)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, deletes := ms.snapshot()
		if len(deletes) >= 3 {
			for _, d := range deletes {
				if !d.Equal(now.Add(-time.Hour)) {
					t.Fatalf("DeleteBefore(%v), want now - 1h", d)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sweeps in 10s with a 1ms interval", len(deletes))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRecorderForwardsToLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	r := audit.NewRecorder(audit.RecorderConfig{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	r.Record(context.Background(), audit.Event{Type: audit.TypeTokenReplayed, Severity: audit.SeverityCritical, User: "eve\nlevel=INFO"})
	closeRecorder(t, r)
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "type=token_replayed") {
		t.Fatalf("log %q", out)
	}
}

func ExampleRecorder() {
	ctx := context.Background()
	db, err := store.Open(ctx, store.MemoryPath) // a file path in production
	if err != nil {
		panic(err)
	}
	defer db.Close()

	rec := audit.NewRecorder(audit.RecorderConfig{
		Store: db.Audit(),
		// Logger: logger, JSONLines: file, Retention: 90 * 24 * time.Hour,
	})
	// Pass rec as livegate.Config.SecurityEvents; the gateway records:
	rec.Record(ctx, audit.Event{Type: audit.TypeAuthFailed, User: "mallory\nforged", Reason: "signature"})

	// On shutdown, Close writes what is queued.
	if err := rec.Close(ctx); err != nil {
		panic(err)
	}
	recs, _ := db.Audit().Query(ctx, store.AuditFilter{User: "mallory\uFFFDforged"})
	fmt.Println(len(recs), recs[0].Type, recs[0].Reason, recs[0].Severity)
	fmt.Printf("%+v\n", rec.Stats())
	// Output:
	// 1 auth_failed signature warning
	// {Recorded:1 Dropped:0 Written:1 WriteErrors:0 Queued:0}
}
