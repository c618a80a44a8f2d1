package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"time"

	"github.com/livegate/livegate/ops"
)

// Operations is an ops.Store kept in the SQLite database, so that a live
// operation's state survives a page reload and a restart. Get it from
// DB.Operations; it is safe for concurrent use.
//
// Each Update is one transaction: the operation's row, its newest log
// lines (operation_log, trimmed to Update.KeepLogs) and its swaps
// (operation_swap) change together, so a reader never sees half a
// report. Get reads the three tables in one read transaction.
type Operations struct {
	db *DB
}

var _ ops.Store = (*Operations)(nil)

// Operations returns the database's ops.Store.
func (db *DB) Operations() *Operations { return &Operations{db: db} }

// opsSweepBatch is the most operations one DeleteFinishedBefore statement
// deletes: each takes its logs and swaps with it, so batches stay small.
const opsSweepBatch = 100

const (
	opColumns = `id, owner, tenant, kind, state, status, percent, error, result_json, result_html,
	seq, restarted_from, created_at, updated_at, finished_at`

	createOpSQL = `INSERT INTO operation (` + opColumns + `)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL)`

	// ?1 = id, ?2 = seq, ?3 = updated_at, ?4 = status, ?5 = percent,
	// ?6 = error (NULL: unchanged), ?7 = whether the result changes,
	// ?8 = result_json, ?9 = result_html.
	updateOpSQL = `UPDATE operation SET
	seq         = ?2,
	updated_at  = ?3,
	status      = COALESCE(?4, status),
	percent     = COALESCE(?5, percent),
	error       = COALESCE(?6, error),
	result_json = CASE WHEN ?7 THEN ?8 ELSE result_json END,
	result_html = CASE WHEN ?7 THEN ?9 ELSE result_html END
WHERE id = ?1`

	appendLogSQL = `INSERT INTO operation_log (op_id, n, line) VALUES (?1, ?2, ?3)
ON CONFLICT (op_id, n) DO UPDATE SET line = excluded.line`

	// Keeps the newest ?2 lines of operation ?1.
	trimLogSQL = `DELETE FROM operation_log WHERE op_id = ?1 AND n <= (
	SELECT n FROM operation_log WHERE op_id = ?1 ORDER BY n DESC LIMIT 1 OFFSET ?2)`

	swapSQL = `INSERT INTO operation_swap (op_id, target, html) VALUES (?1, ?2, ?3)
ON CONFLICT (op_id, target) DO UPDATE SET html = excluded.html`

	finishOpSQL = `UPDATE operation SET state = ?2, seq = ?3, updated_at = ?4, finished_at = ?4 WHERE id = ?1`

	getOpSQL    = `SELECT ` + opColumns + ` FROM operation WHERE id = ?1`
	getLogsSQL  = `SELECT line FROM operation_log WHERE op_id = ?1 ORDER BY n`
	getSwapsSQL = `SELECT target, html FROM operation_swap WHERE op_id = ?1`

	listOpsSQL = `SELECT ` + opColumns + ` FROM operation
WHERE owner = ?1 AND tenant = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3`

	deleteOpsSQL = `DELETE FROM operation WHERE id IN (
	SELECT id FROM operation WHERE finished_at IS NOT NULL AND finished_at < ?1 LIMIT 100)`

	failRunningSQL = `UPDATE operation SET state = 'failed', error = ?3, updated_at = ?2, finished_at = ?2
WHERE finished_at IS NULL AND created_at < ?1`
)

// Create implements ops.Store. Logs and Swaps of r are ignored: a new
// operation has none.
func (o *Operations) Create(ctx context.Context, r ops.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: create operation: %w", err)
	}
	if r.ID == "" || r.User == "" || r.Kind == "" {
		return fmt.Errorf("store: create operation: %w", ErrEmptyID)
	}
	if r.State != ops.StateRunning {
		return fmt.Errorf("store: create operation: state %q, want running", r.State)
	}
	_, err := o.db.w.ExecContext(ctx, createOpSQL, r.ID, r.User, r.Tenant, r.Kind, string(r.State),
		r.Status, r.Percent, r.Error, nullJSON(r.Result), string(r.ResultHTML),
		int64(r.Seq), r.RestartedFrom, floorMilli(r.CreatedAt), floorMilli(r.UpdatedAt)) // #nosec G115 -- Seq counts one operation's updates from 1, far below 2^63
	if err != nil {
		return fmt.Errorf("store: create operation: %w", err)
	}
	return nil
}

// Update implements ops.Store.
func (o *Operations) Update(ctx context.Context, id string, u ops.Update) (err error) {
	tx, err := o.db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: update operation: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			err = fmt.Errorf("store: update operation: %w", err)
		}
	}()
	var status, percent, msg any
	if u.Status != nil {
		status = *u.Status
	}
	if u.Percent != nil {
		percent = *u.Percent
	}
	if u.Error != nil {
		msg = *u.Error
	}
	var resJSON, resHTML any
	if u.Result != nil {
		resJSON, resHTML = nullJSON(u.Result.JSON), string(u.Result.HTML)
	}
	res, err := tx.ExecContext(ctx, updateOpSQL, id, int64(u.Seq), floorMilli(u.At), // #nosec G115 -- Seq counts one operation's updates from 1, far below 2^63
		status, percent, msg, u.Result != nil, resJSON, resHTML)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ops.ErrNotFound
	}
	if u.Log != nil {
		keep := u.KeepLogs
		if keep <= 0 {
			keep = ops.DefaultLogLines
		}
		if _, err := tx.ExecContext(ctx, appendLogSQL, id, int64(u.Seq), *u.Log); err != nil { // #nosec G115 -- Seq counts one operation's updates from 1, far below 2^63
			return err
		}
		if _, err := tx.ExecContext(ctx, trimLogSQL, id, keep); err != nil {
			return err
		}
	}
	for _, s := range u.Swaps {
		if _, err := tx.ExecContext(ctx, swapSQL, id, s.Target, string(s.HTML)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Finish implements ops.Store.
func (o *Operations) Finish(ctx context.Context, id string, state ops.State, seq uint64, at time.Time) error {
	if !state.Final() {
		return fmt.Errorf("store: finish operation: state %q is not final", state)
	}
	res, err := o.db.w.ExecContext(ctx, finishOpSQL, id, string(state), int64(seq), floorMilli(at)) // #nosec G115 -- Seq counts one operation's updates from 1, far below 2^63
	if err != nil {
		return fmt.Errorf("store: finish operation: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: finish operation: %w", err)
	} else if n == 0 {
		return ops.ErrNotFound
	}
	return nil
}

// Get implements ops.Store.
func (o *Operations) Get(ctx context.Context, id string) (r ops.Record, err error) {
	tx, err := o.db.r.BeginTx(ctx, nil)
	if err != nil {
		return ops.Record{}, fmt.Errorf("store: get operation: %w", err)
	}
	defer tx.Rollback() // read-only
	r, err = scanOp(tx.QueryRowContext(ctx, getOpSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ops.Record{}, ops.ErrNotFound
	}
	if err != nil {
		return ops.Record{}, fmt.Errorf("store: get operation: %w", err)
	}
	if r.Logs, err = queryLogs(ctx, tx, id); err != nil {
		return ops.Record{}, fmt.Errorf("store: get operation: %w", err)
	}
	if r.Swaps, err = querySwaps(ctx, tx, id); err != nil {
		return ops.Record{}, fmt.Errorf("store: get operation: %w", err)
	}
	return r, nil
}

func queryLogs(ctx context.Context, tx *sql.Tx, id string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, getLogsSQL, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var logs []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		logs = append(logs, line)
	}
	return logs, rows.Err()
}

func querySwaps(ctx context.Context, tx *sql.Tx, id string) (map[string]template.HTML, error) {
	rows, err := tx.QueryContext(ctx, getSwapsSQL, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var swaps map[string]template.HTML
	for rows.Next() {
		var target, html string
		if err := rows.Scan(&target, &html); err != nil {
			return nil, err
		}
		if swaps == nil {
			swaps = make(map[string]template.HTML)
		}
		swaps[target] = template.HTML(html) // #nosec G203 -- HTML that package ops rendered and escaped, stored by this package
	}
	return swaps, rows.Err()
}

// ListByOwner implements ops.Store.
func (o *Operations) ListByOwner(ctx context.Context, user, tenant string, limit int) ([]ops.Record, error) {
	rows, err := o.db.r.QueryContext(ctx, listOpsSQL, user, tenant, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list operations: %w", err)
	}
	defer rows.Close()
	var out []ops.Record
	for rows.Next() {
		r, err := scanOp(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list operations: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list operations: %w", err)
	}
	return out, nil
}

// DeleteFinishedBefore implements ops.Store. It deletes in batches of 100
// operations, each its own transaction, and on error returns how many it
// deleted so far.
func (o *Operations) DeleteFinishedBefore(ctx context.Context, t time.Time) (int, error) {
	n := 0
	for {
		res, err := o.db.w.ExecContext(ctx, deleteOpsSQL, floorMilli(t))
		if err != nil {
			return n, fmt.Errorf("store: delete operations: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, fmt.Errorf("store: delete operations: %w", err)
		}
		n += int(k)
		if k < opsSweepBatch {
			return n, nil
		}
	}
}

// FailRunning implements ops.Store.
func (o *Operations) FailRunning(ctx context.Context, t, at time.Time, msg string) (int, error) {
	res, err := o.db.w.ExecContext(ctx, failRunningSQL, floorMilli(t), floorMilli(at), msg)
	if err != nil {
		return 0, fmt.Errorf("store: fail running operations: %w", err)
	}
	k, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: fail running operations: %w", err)
	}
	return int(k), nil
}

// scanOp reads the opColumns of one row.
func scanOp(row interface{ Scan(...any) error }) (ops.Record, error) {
	var (
		r                     ops.Record
		state, resultHTML     string
		resultJSON            sql.NullString
		seq, created, updated int64
		finished              sql.NullInt64
	)
	err := row.Scan(&r.ID, &r.User, &r.Tenant, &r.Kind, &state, &r.Status, &r.Percent, &r.Error,
		&resultJSON, &resultHTML, &seq, &r.RestartedFrom, &created, &updated, &finished)
	if err != nil {
		return ops.Record{}, err
	}
	r.State = ops.State(state)
	if resultJSON.Valid {
		r.Result = json.RawMessage(resultJSON.String)
	}
	r.ResultHTML = template.HTML(resultHTML) // #nosec G203 -- HTML that package ops rendered and escaped, stored by this package
	r.Seq = uint64(seq)                      // #nosec G115 -- stored from a uint64 by this package, never negative
	r.CreatedAt = time.UnixMilli(created)
	r.UpdatedAt = time.UnixMilli(updated)
	if finished.Valid {
		r.FinishedAt = time.UnixMilli(finished.Int64)
	}
	return r, nil
}

// nullJSON returns b as a TEXT value, or NULL when empty.
func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}
