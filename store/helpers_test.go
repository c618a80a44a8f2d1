package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate/store"
)

// t0 is the fake "now" of most tests.
var t0 = time.Unix(1_700_000_000, 0)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// tempPath returns a database path in a fresh temporary directory.
func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "livegate.db")
}

// open opens path with clock c and closes it at the end of the test.
func open(t testing.TB, path string, c *fakeClock) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path, store.WithClock(c.Now))
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// kinds lists the two ways to open a database, for table-driven tests.
var kinds = []struct {
	name string
	path func(testing.TB) string
}{
	{"memory", func(testing.TB) string { return store.MemoryPath }},
	{"file", tempPath},
}

// rawDB opens path with database/sql directly, bypassing the store, to
// inspect or tamper with a closed store database.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// count returns the number of rows of table in the database at path.
func count(t testing.TB, path, table string) int {
	t.Helper()
	var n int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}
