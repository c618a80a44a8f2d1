package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livegate/livegate/store"
)

func TestOpenCreatesPrivateFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "livegate.db")
	open(t, path, newFakeClock(t0))
	for p, want := range map[string]os.FileMode{
		dir:               0o700 | os.ModeDir,
		filepath.Dir(dir): 0o700 | os.ModeDir,
		path:              0o600,
		path + "-wal":     0o600,
		path + "-shm":     0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestOpenPragmas(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	open(t, path, newFakeClock(t0))
	var mode string
	if err := rawDB(t, path).QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

func TestOpenOddPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "odd ?#%name", "db")
	open(t, path, newFakeClock(t0))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %q: %v", path, err)
	}
}

func TestOpenEmptyPath(t *testing.T) {
	t.Parallel()
	if _, err := store.Open(context.Background(), ""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	clock := newFakeClock(t0)
	db := open(t, path, clock)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	want := count(t, path, "schema_migrations")
	if want < 2 {
		t.Fatalf("%d migrations recorded, want at least 2", want)
	}
	clock.Advance(time.Hour)
	for range 2 {
		db, err := store.Open(ctx, path, store.WithClock(clock.Now))
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(t, path, "schema_migrations"); got != want {
		t.Fatalf("%d migrations recorded after reopening, want %d", got, want)
	}
	var late int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM schema_migrations WHERE applied_at <> ?`, t0.UnixMilli()).Scan(&late); err != nil {
		t.Fatal(err)
	}
	if late != 0 {
		t.Fatalf("%d migrations re-applied on reopen", late)
	}
}

func TestOpenConcurrentMigrations(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			db, err := store.Open(context.Background(), path)
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	clock := newFakeClock(t0)
	db := open(t, path, clock)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(ctx, path, store.WithClock(clock.Now))
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open newer database = %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
}
