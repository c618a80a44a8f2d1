package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"time"
)

// migrationFS holds the schema migrations, applied in version order. See
// doc.go for how to add one.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationName is the file name of a migration: a four-digit version, an
// underscore, a lower-case description and ".sql".
var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// migration is one schema change.
type migration struct {
	version int
	name    string // file name, for errors
	sql     string
}

// loadMigrations reads the migrations in fsys's migrations directory and
// checks that their versions run 1, 2, 3… without gaps or duplicates.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var migs []migration
	for _, e := range entries { // sorted by name, hence by version
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("migrations: bad file name %q", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(migs)+1 {
			return nil, fmt.Errorf("migrations: %s: want version %04d", e.Name(), len(migs)+1)
		}
		b, err := fs.ReadFile(fsys, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		migs = append(migs, migration{version: v, name: e.Name(), sql: string(b)})
	}
	return migs, nil
}

const createMigrationsTableSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	applied_at INTEGER NOT NULL -- Unix milliseconds
)`

// migrate applies the migrations db has not seen, each in its own
// transaction together with its schema_migrations row. The writer's
// transactions begin IMMEDIATE, holding the write lock from the start, and
// each re-checks its version inside the transaction, so processes opening
// the same file at once apply every migration exactly once. A database that
// records a version above the newest known one is refused.
func migrate(ctx context.Context, db *sql.DB, migs []migration, now func() time.Time) error {
	if _, err := db.ExecContext(ctx, createMigrationsTableSQL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := checkVersion(ctx, db, len(migs)); err != nil {
		return err
	}
	for _, m := range migs {
		if err := applyMigration(ctx, db, m, len(migs), now); err != nil {
			return err
		}
	}
	return nil
}

// checkVersion returns an error wrapping ErrSchemaTooNew if q records a
// migration newer than latest.
func checkVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, latest int) error {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if v > latest {
		return fmt.Errorf("%w: database is at version %d, this build knows up to %d", ErrSchemaTooNew, v, latest)
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration, latest int, now func() time.Time) (err error) {
	var applied bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)`, m.version).Scan(&applied); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if applied {
		return nil // fast path: no write lock taken
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := checkVersion(ctx, tx, latest); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)`, m.version).Scan(&applied); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if applied {
		return tx.Rollback() // another process got there first
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)`, m.version, floorMilli(now())); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	return nil
}
