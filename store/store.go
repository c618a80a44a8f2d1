package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure Go "sqlite" driver
)

// MemoryPath is the path that opens a private in-memory database, for tests.
const MemoryPath = ":memory:"

// busyTimeout is how long a statement waits for a lock held by another
// connection or process before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// maxReaders bounds the read connection pool of a file database.
const maxReaders = 8

// DB is livegate's embedded SQLite store. Open it once per process and share
// it; it is safe for concurrent use. Several processes may open the same
// file: every guarantee documented in this package (notably the atomicity of
// ReplayStore.Consume) holds across them.
//
// A file database keeps two connection pools: one connection for writes, so
// writers in this process queue in Go instead of spinning on SQLite's busy
// handler, and up to eight read-only connections, which WAL mode lets
// run alongside the writer. An in-memory database has a single connection
// for both.
type DB struct {
	w   *sql.DB // writes; one connection
	r   *sql.DB // reads; == w for an in-memory database
	now func() time.Time

	consume *sql.Stmt // on w
	revoked *sql.Stmt // on r

	replay      *ReplayStore
	revocations *Revocations
}

// Option configures Open.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock sets the clock used for expiry checks, sweeps and migration
// timestamps (nil = time.Now). Tests pass a fake clock.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Open opens (creating if needed) the SQLite database at path and brings its
// schema up to date, applying each pending migration in its own transaction.
// It refuses, with an error wrapping ErrSchemaTooNew, a database migrated by
// a newer livegate.
//
// Missing parent directories are created with mode 0700 and a new database
// file with mode 0600 (SQLite gives its -wal and -shm files the same mode).
// Connections use WAL journaling, synchronous=NORMAL, foreign keys and a
// busy timeout, so concurrent writers from other processes wait rather than
// fail.
//
// path MemoryPath (":memory:") opens a private in-memory database on a single
// connection; two Open calls never share it. It is meant for tests.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if path == "" {
		return nil, errors.New("store: open: empty path")
	}
	migs, err := loadMigrations(migrationFS)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db := &DB{now: o.now}
	if path == MemoryPath {
		err = db.openMemory()
	} else {
		err = db.openFile(path)
	}
	if err == nil {
		err = migrate(ctx, db.w, migs, db.now)
	}
	if err == nil {
		err = db.prepare(ctx)
	}
	if err != nil {
		db.closeAll() // #nosec G104 -- undoing a half-open; the open error is returned
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	return db, nil
}

// openMemory opens a private in-memory database on one connection, which
// the pool must never close: the data lives only as long as it.
func (db *DB) openMemory() error {
	w, err := sql.Open("sqlite", MemoryPath+"?"+dsnParams(false))
	if err != nil {
		return err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db.w, db.r = w, w
	return nil
}

// openFile creates path if needed and opens the writer and reader pools.
// sql.Open connects lazily: the readers connect only after the writer has
// run the migrations and switched the file to WAL mode.
func (db *DB) openFile(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return err
	}
	// Create the file ourselves so that it is private: SQLite would use 0644.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- the database path is the operator's
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// A file: URI, so that a '?' or '#' in the path is escaped.
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:///C:/...
	}
	u := (&url.URL{Scheme: "file", Path: p}).String()

	if db.w, err = sql.Open("sqlite", u+"?"+dsnParams(false)); err != nil {
		return err
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	if db.r, err = sql.Open("sqlite", u+"?"+dsnParams(true)); err != nil {
		return err
	}
	db.r.SetMaxOpenConns(maxReaders)
	db.r.SetMaxIdleConns(maxReaders)
	return nil
}

// dsnParams returns the query part of a DSN. Every connection gets a busy
// timeout and foreign keys. Readers are query-only. The writer sets WAL
// journaling (persistent in the file; an in-memory database ignores it) and
// synchronous=NORMAL, which in WAL mode survives application crashes and
// stays consistent across power loss; its transactions begin IMMEDIATE, so
// a read-then-write transaction never fails to upgrade its lock.
func dsnParams(reader bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	if reader {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", "immediate")
	}
	return q.Encode()
}

// prepare prepares the hot statements once, so each call skips parsing.
func (db *DB) prepare(ctx context.Context) error {
	var err error
	if db.consume, err = db.w.PrepareContext(ctx, consumeSQL); err != nil {
		return fmt.Errorf("prepare consume: %w", err)
	}
	if db.revoked, err = db.r.PrepareContext(ctx, revokedSQL); err != nil {
		return fmt.Errorf("prepare revoked: %w", err)
	}
	db.replay = &ReplayStore{db: db}
	db.revocations = &Revocations{db: db}
	return nil
}

// Close closes the database. Calls in flight may fail; calls after Close
// fail.
func (db *DB) Close() error {
	if err := db.closeAll(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

func (db *DB) closeAll() error {
	var errs []error
	for _, s := range []*sql.Stmt{db.consume, db.revoked} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if db.r != nil && db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers a query (SELECT 1 on a read
// connection), for readiness checks; it fails after Close.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Ping checks the store's database; see DB.Ping.
func (s *ReplayStore) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// Ping checks the store's database; see DB.Ping.
func (r *Revocations) Ping(ctx context.Context) error { return r.db.Ping(ctx) }

// ReplayStore returns the database's auth.ReplayStore.
func (db *DB) ReplayStore() *ReplayStore { return db.replay }

// Revocations returns the database's auth.Revocations.
func (db *DB) Revocations() *Revocations { return db.revocations }

// sweepBatch is the most rows one Sweep statement deletes (the LIMIT in the
// sweep statements), so that a large sweep never holds the write lock long.
const sweepBatch = 1000

// Statements Sweep runs, each deleting up to sweepBatch rows that expired at
// or before ?1. Tables added by later migrations add theirs to Sweep.
const (
	sweepReplaySQL  = `DELETE FROM replay WHERE jti IN (SELECT jti FROM replay WHERE expires_at <= ?1 LIMIT 1000)`
	sweepSessionSQL = `DELETE FROM revoked_session WHERE sid IN (SELECT sid FROM revoked_session WHERE until <= ?1 LIMIT 1000)`
	sweepUserSQL    = `DELETE FROM revoked_user WHERE sub IN (SELECT sub FROM revoked_user WHERE until <= ?1 LIMIT 1000)`
	sweepTokenSQL   = `DELETE FROM revoked_token WHERE jti IN (SELECT jti FROM revoked_token WHERE until <= ?1 LIMIT 1000)`
)

// Sweep deletes expired replay entries and revocations and returns how many
// rows it deleted. Expired rows are already ignored by every lookup; Sweep
// only reclaims their space, so call it periodically (every minute or so).
// It deletes in small batches, each its own transaction, so concurrent
// writers are never held up for long; on error it returns the rows deleted
// so far.
func (db *DB) Sweep(ctx context.Context) (int, error) {
	now := floorMilli(db.now())
	n := 0
	for _, q := range [...]string{sweepReplaySQL, sweepSessionSQL, sweepUserSQL, sweepTokenSQL} {
		for {
			res, err := db.w.ExecContext(ctx, q, now)
			if err != nil {
				return n, fmt.Errorf("store: sweep: %w", err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return n, fmt.Errorf("store: sweep: %w", err)
			}
			n += int(k)
			if k < sweepBatch {
				break
			}
		}
	}
	return n, nil
}

// Times are stored as INTEGER Unix milliseconds. Rounding is always in the
// safe direction: instants at which something stops being valid (expiries)
// round up and "now" rounds down, so sub-millisecond truncation can extend
// a replay entry or revocation by under a millisecond but never shorten it.
// The zero time.Time maps to 0 (the Unix epoch).

// floorMilli returns t in Unix milliseconds, rounded down.
func floorMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli() // floors: the nanosecond part is never negative
}

// ceilMilli returns t in Unix milliseconds, rounded up.
func ceilMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}
