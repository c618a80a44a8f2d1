package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegate/livegate/internal/logsafe"
)

// Store persists audit events for a Recorder; store.DB.Audit implements it
// with SQLite. Implementations must be safe for concurrent use and must
// return promptly once ctx is done.
type Store interface {
	// WriteEvents persists events in order, all or none. The events are
	// already sanitised; WriteEvents must not retain the slice.
	WriteEvents(ctx context.Context, events []Event) error
	// DeleteBefore deletes the events whose Time is before t and returns
	// how many it deleted.
	DeleteBefore(ctx context.Context, t time.Time) (int, error)
}

// Defaults of RecorderConfig.
const (
	DefaultQueueSize     = 8192
	DefaultBatchSize     = 256
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultWriteTimeout  = 10 * time.Second
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultSweepInterval = time.Hour
)

// warnInterval is the least time between two of the Recorder's own
// warnings of one kind (dropped events, failed writes).
const warnInterval = 10 * time.Second

// RecorderConfig configures a Recorder. The zero value gives a recorder
// that only counts events; set Store to persist them.
type RecorderConfig struct {
	// Store persists the events; nil persists nothing.
	Store Store
	// Logger, when set, receives every event as a SlogSink would (during
	// Record, whether or not the event is queued), and the Recorder's own
	// rate-limited warnings about dropped events and failed writes. nil
	// discards both.
	Logger *slog.Logger
	// JSONLines, when set, receives every queued event as one JSON object
	// per line (for log shippers), written by the background writer in one
	// Write call per batch. Its keys are time (RFC 3339, UTC), type,
	// severity, user, session, tenant, ip, conn, reason, request and detail;
	// empty fields are left out. A slow writer slows persistence too.
	JSONLines io.Writer
	// QueueSize bounds the events waiting to be written; when it is full
	// Record drops the event. Zero means DefaultQueueSize.
	QueueSize int
	// BatchSize is the most events written in one Store call. Zero means
	// DefaultBatchSize.
	BatchSize int
	// FlushInterval is the longest a queued event waits for its batch to
	// fill before it is written anyway. Zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// WriteTimeout bounds each Store call. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Retention is how long the Store keeps events: the Recorder calls
	// Store.DeleteBefore(now - Retention) when it starts and every
	// SweepInterval. Zero means DefaultRetention (30 days); negative keeps
	// events forever.
	Retention time.Duration
	// SweepInterval is the time between retention sweeps. Zero means
	// DefaultSweepInterval.
	SweepInterval time.Duration
	// Now is the clock stamping events without a Time and placing the
	// retention cut-off; nil means time.Now.
	Now func() time.Time
}

// Stats counts a Recorder's events. Every Record call is counted once, in
// Recorded or Dropped.
type Stats struct {
	// Recorded counts events accepted into the queue.
	Recorded uint64
	// Dropped counts events refused because the queue was full or the
	// Recorder closed.
	Dropped uint64
	// Written counts events the Store persisted.
	Written uint64
	// WriteErrors counts failed Store.WriteEvents calls (whose events are
	// lost) and failed writes to JSONLines.
	WriteErrors uint64
	// Queued is the number of events waiting in the queue.
	Queued int
}

// Recorder is a Sink that persists events. Record sanitises the event with
// logsafe, forwards it to the Logger and puts it on a bounded queue; it
// never waits for the Store. A background writer drains the queue in
// batches into the Store and JSONLines, and sweeps events older than the
// retention. When the queue is full — the Store is slow or down — the
// event is dropped, counted in Stats().Dropped and reported in a warning
// (at most one every ten seconds), so memory stays bounded by QueueSize.
//
// A Recorder is safe for concurrent use. Close it to flush the queue and
// stop the writer.
type Recorder struct {
	store         Store
	sink          *SlogSink // nil without a Logger
	log           *slog.Logger
	jsonl         io.Writer
	batchSize     int
	flushInterval time.Duration
	writeTimeout  time.Duration
	retention     time.Duration
	sweepInterval time.Duration
	now           func() time.Time
	start         time.Time // monotonic base of the warning throttles

	mu     sync.RWMutex // guards closed against sends to queue
	closed bool
	queue  chan Event
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the writer returns
	ctx    context.Context
	cancel context.CancelFunc // aborts writes when Close gives up

	recorded, dropped, written, writeErrors atomic.Uint64
	dropWarned, errWarned                   atomic.Int64 // ns since start of the last warning

	buf []byte // JSON lines; writer goroutine only
}

var _ Sink = (*Recorder)(nil)

// NewRecorder returns a Recorder and starts its background writer.
func NewRecorder(cfg RecorderConfig) *Recorder {
	r := &Recorder{
		store:         cfg.Store,
		log:           cfg.Logger,
		jsonl:         cfg.JSONLines,
		batchSize:     orDefault(cfg.BatchSize, DefaultBatchSize),
		flushInterval: orDefault(cfg.FlushInterval, DefaultFlushInterval),
		writeTimeout:  orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		retention:     cfg.Retention,
		sweepInterval: orDefault(cfg.SweepInterval, DefaultSweepInterval),
		now:           cfg.Now,
		start:         time.Now(),
		queue:         make(chan Event, orDefault(cfg.QueueSize, DefaultQueueSize)),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	if r.log != nil {
		r.sink = NewSlogSink(r.log)
	} else {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.retention == 0 {
		r.retention = DefaultRetention
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	go r.run()
	return r
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Record sanitises e, stamps it with the clock if its Time is zero (and
// with SeverityWarning if its Severity is empty), logs it and queues it for
// the writer. It never blocks on the Store: when the queue is full, or
// after Close, the event is dropped and counted.
func (r *Recorder) Record(ctx context.Context, e Event) {
	e = e.Sanitized()
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	if e.Severity == "" {
		e.Severity = SeverityWarning
	}
	if r.sink != nil {
		if level := e.Severity.level(); r.log.Enabled(ctx, level) {
			r.sink.log(ctx, level, e)
		}
	}
	r.mu.RLock()
	queued := false
	if !r.closed {
		select {
		case r.queue <- e:
			queued = true
		default:
		}
	}
	closed := r.closed
	r.mu.RUnlock()
	if queued {
		r.recorded.Add(1)
		return
	}
	n := r.dropped.Add(1)
	if r.allow(&r.dropWarned) {
		reason := "queue_full"
		if closed {
			reason = "closed"
		}
		r.log.LogAttrs(ctx, slog.LevelWarn, "audit: event dropped",
			slog.String("reason", reason), slog.String("type", e.Type), slog.Uint64("dropped_total", n))
	}
}

// allow reports whether a throttled warning may be logged now, at most one
// every warnInterval per throttle.
func (r *Recorder) allow(last *atomic.Int64) bool {
	now := int64(time.Since(r.start)) + 1 // never 0, the "never warned" value
	prev := last.Load()
	return (prev == 0 || now-prev >= int64(warnInterval)) && last.CompareAndSwap(prev, now)
}

// Stats returns the Recorder's counters.
func (r *Recorder) Stats() Stats {
	return Stats{
		Recorded:    r.recorded.Load(),
		Dropped:     r.dropped.Load(),
		Written:     r.written.Load(),
		WriteErrors: r.writeErrors.Load(),
		Queued:      len(r.queue),
	}
}

// Close stops accepting events, writes those still queued and stops the
// writer. If ctx is done first, it aborts the write in progress, drops
// what is left and returns ctx's error without waiting further. Close may
// be called more than once.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	select {
	case <-r.done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel()
		return fmt.Errorf("audit: close: %w", ctx.Err())
	}
}

// run is the background writer.
func (r *Recorder) run() {
	defer close(r.done)
	var sweep <-chan time.Time
	if r.store != nil && r.retention > 0 {
		r.sweep()
		t := time.NewTicker(r.sweepInterval)
		defer t.Stop()
		sweep = t.C
	}
	flush := time.NewTicker(r.flushInterval)
	defer flush.Stop()
	batch := make([]Event, 0, r.batchSize)
	for {
		select {
		case e := <-r.queue:
			batch = append(batch, e)
			if len(batch) == r.batchSize {
				batch = r.write(batch)
			}
		case <-flush.C:
			batch = r.write(batch)
		case <-sweep:
			r.sweep()
		case <-r.stop:
			// Closed: nothing enters the queue any more; write the rest.
			for {
				select {
				case e := <-r.queue:
					batch = append(batch, e)
					if len(batch) == r.batchSize {
						batch = r.write(batch)
					}
				default:
					r.write(batch)
					return
				}
			}
		}
	}
}

// write writes batch to JSONLines and the Store and returns it emptied.
func (r *Recorder) write(batch []Event) []Event {
	if len(batch) == 0 {
		return batch
	}
	if r.jsonl != nil {
		r.writeJSON(batch)
	}
	if r.store != nil {
		ctx, cancel := context.WithTimeout(r.ctx, r.writeTimeout)
		err := r.store.WriteEvents(ctx, batch)
		cancel()
		if err != nil {
			r.failed("store", len(batch), err)
		} else {
			r.written.Add(uint64(len(batch)))
		}
	}
	clear(batch) // let the strings go
	return batch[:0]
}

// jsonEvent is the JSON-lines form of an Event.
type jsonEvent struct {
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Severity  Severity  `json:"severity,omitempty"`
	User      string    `json:"user,omitempty"`
	Session   string    `json:"session,omitempty"`
	Tenant    string    `json:"tenant,omitempty"`
	IP        string    `json:"ip,omitempty"`
	ConnID    string    `json:"conn,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	RequestID string    `json:"request,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

func (r *Recorder) writeJSON(batch []Event) {
	b := r.buf[:0]
	for _, e := range batch {
		line, err := json.Marshal(jsonEvent{
			Time: e.Time.UTC(), Type: e.Type, Severity: e.Severity, User: e.User,
			Session: e.Session, Tenant: e.Tenant, IP: e.IP, ConnID: e.ConnID,
			Reason: e.Reason, RequestID: e.RequestID, Detail: e.Detail,
		})
		if err != nil { // cannot happen for these field types
			continue
		}
		b = append(append(b, line...), '\n')
	}
	if _, err := r.jsonl.Write(b); err != nil {
		r.failed("json_lines", len(batch), err)
	}
	if cap(b) <= 1<<20 {
		r.buf = b // reuse, unless a burst made it large
	}
}

// failed counts a failed write and warns about it, throttled.
func (r *Recorder) failed(to string, events int, err error) {
	n := r.writeErrors.Add(1)
	if r.allow(&r.errWarned) {
		r.log.LogAttrs(context.Background(), slog.LevelError, "audit: write failed",
			slog.String("to", to), slog.Int("events", events), slog.Uint64("write_errors_total", n), slog.Any("err", err))
	}
}

// sweep deletes events older than the retention.
func (r *Recorder) sweep() {
	ctx, cancel := context.WithTimeout(r.ctx, r.writeTimeout)
	defer cancel()
	if _, err := r.store.DeleteBefore(ctx, r.now().Add(-r.retention)); err != nil && r.ctx.Err() == nil {
		r.log.LogAttrs(ctx, slog.LevelError, "audit: retention sweep failed", slog.Any("err", err))
	}
}

// Sanitized returns e with every string field passed through the log
// sanitiser: control characters, ANSI escapes, line separators and bidi
// overrides replaced, and each field truncated to 256 bytes.
func (e Event) Sanitized() Event {
	e.Type = logsafe.String(e.Type)
	e.Severity = Severity(logsafe.String(string(e.Severity)))
	e.User = logsafe.String(e.User)
	e.Session = logsafe.String(e.Session)
	e.Tenant = logsafe.String(e.Tenant)
	e.IP = logsafe.String(e.IP)
	e.ConnID = logsafe.String(e.ConnID)
	e.Reason = logsafe.String(e.Reason)
	e.RequestID = logsafe.String(e.RequestID)
	e.Detail = logsafe.String(e.Detail)
	return e
}
