package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int
		wantErr string
	}{
		{"ordered", fstest.MapFS{
			"migrations/0002_b.sql": file("B"),
			"migrations/0001_a.sql": file("A"),
		}, []int{1, 2}, ""},
		{"empty", fstest.MapFS{"migrations": &fstest.MapFile{Mode: fs.ModeDir | 0o755}}, nil, ""},
		{"gap", fstest.MapFS{
			"migrations/0001_a.sql": file("A"),
			"migrations/0003_c.sql": file("C"),
		}, nil, "want version 0002"},
		{"duplicate", fstest.MapFS{
			"migrations/0001_a.sql": file("A"),
			"migrations/0001_b.sql": file("B"),
		}, nil, "want version 0002"},
		{"starts at 0", fstest.MapFS{"migrations/0000_a.sql": file("A")}, nil, "want version 0001"},
		{"bad name", fstest.MapFS{"migrations/1_a.sql": file("A")}, nil, "bad file name"},
		{"not sql", fstest.MapFS{"migrations/0001_a.txt": file("A")}, nil, "bad file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			migs, err := loadMigrations(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range migs {
				got = append(got, m.version)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("versions %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("versions %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestEmbeddedMigrations checks that the shipped migrations load.
func TestEmbeddedMigrations(t *testing.T) {
	t.Parallel()
	migs, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) < 2 {
		t.Fatalf("%d embedded migrations, want at least 2", len(migs))
	}
}

// TestMigrateAppliesOnlyNew simulates an upgrade: a database migrated by a
// build that knew one migration is opened by one that knows three.
func TestMigrateAppliesOnlyNew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/m.db?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clock := func(ts time.Time) func() time.Time { return func() time.Time { return ts } }
	t1, t2 := time.UnixMilli(1000), time.UnixMilli(2000)
	// Not idempotent on purpose: running one twice fails.
	m1 := migration{1, "0001_a.sql", "CREATE TABLE a (x INTEGER);"}
	m2 := migration{2, "0002_b.sql", "CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (2);"}
	m3 := migration{3, "0003_c.sql", "CREATE TABLE c (x INTEGER);"}

	if err := migrate(ctx, db, []migration{m1}, clock(t1)); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, []migration{m1, m2, m3}, clock(t2)); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if err := migrate(ctx, db, []migration{m1, m2, m3}, clock(t2)); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	rows, err := db.Query(`SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := [][2]int64{{1, 1000}, {2, 2000}, {3, 2000}}
	i := 0
	for ; rows.Next(); i++ {
		var v, at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) || [2]int64{v, at} != want[i] {
			t.Fatalf("row %d = (%d, %d), want %v", i, v, at, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Fatalf("%d rows, want %d", i, len(want))
	}

	// An older build refuses the upgraded database and changes nothing.
	if err := migrate(ctx, db, []migration{m1, m2}, clock(t2)); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("older build: err = %v, want ErrSchemaTooNew", err)
	}
}

// TestMigrateRollsBack checks that a failing migration leaves neither part
// of its changes nor its version behind.
func TestMigrateRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/m.db?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := func() time.Time { return time.UnixMilli(1000) }
	m1 := migration{1, "0001_a.sql", "CREATE TABLE a (x INTEGER);"}
	bad := migration{2, "0002_bad.sql", "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);"}
	if err := migrate(ctx, db, []migration{m1, bad}, now); err == nil || !strings.Contains(err.Error(), "0002_bad.sql") {
		t.Fatalf("err = %v, want a failure naming 0002_bad.sql", err)
	}
	var v, tables int
	if err := db.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'b'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if v != 1 || tables != 0 {
		t.Fatalf("after failed migration: version %d, table b present %d; want 1, 0", v, tables)
	}
}
