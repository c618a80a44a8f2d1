package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/livegate/livegate/audit"
)

// Audit keeps security events in the audit_events table: it is the
// audit.Store behind an audit.Recorder, and answers the queries of
// `livegate audit`. Get it from DB.Audit; it is safe for concurrent use,
// including by several processes sharing the file.
//
// Every event gets an id that increases with each write and is never
// reused, even after the retention sweep has emptied the table, so a
// reader can follow new events with AuditFilter.AfterID. Times are kept to
// the millisecond.
type Audit struct {
	db *DB
}

var _ audit.Store = (*Audit)(nil)

// Audit returns the database's audit event store.
func (db *DB) Audit() *Audit { return &Audit{db: db} }

// Query limits.
const (
	// DefaultAuditLimit is the number of events Query returns when
	// AuditFilter.Limit is not positive.
	DefaultAuditLimit = 100
	// MaxAuditLimit is the most events one Query returns.
	MaxAuditLimit = 10000
	// maxAuditTypes bounds AuditFilter.Types.
	maxAuditTypes = 64
)

const (
	insertAuditSQL = `INSERT INTO audit_events (at, type, severity, user, session, tenant, ip, conn, reason, request, detail)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)`

	// ?1 = cut-off; deletes up to sweepBatch rows, oldest first.
	deleteAuditSQL = `DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < ?1 ORDER BY id LIMIT 1000)`

	auditColumns = `id, at, type, severity, user, session, tenant, ip, conn, reason, request, detail`
)

// WriteEvents inserts events in one transaction: all or none, in order, so
// their ids increase in slice order. Each string field is sanitised again
// (audit.Event.Sanitized) and an event without a Time gets the store's
// clock.
func (a *Audit) WriteEvents(ctx context.Context, events []audit.Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	tx, err := a.db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: write audit events: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			err = fmt.Errorf("store: write audit events: %w", err)
		}
	}()
	stmt, err := tx.PrepareContext(ctx, insertAuditSQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	now := a.db.now()
	for _, e := range events {
		e = e.Sanitized()
		if e.Time.IsZero() {
			e.Time = now
		}
		if _, err := stmt.ExecContext(ctx, floorMilli(e.Time), e.Type, string(e.Severity), e.User, e.Session,
			e.Tenant, e.IP, e.ConnID, e.Reason, e.RequestID, e.Detail); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// DeleteBefore deletes the events recorded before t (to the millisecond)
// and returns how many it deleted. It deletes in small batches, each its
// own transaction, so concurrent writers are never held up for long; on
// error it returns the rows deleted so far.
func (a *Audit) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	cut := floorMilli(t)
	n := 0
	for {
		res, err := a.db.w.ExecContext(ctx, deleteAuditSQL, cut)
		if err != nil {
			return n, fmt.Errorf("store: delete audit events: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, fmt.Errorf("store: delete audit events: %w", err)
		}
		n += int(k)
		if k < sweepBatch {
			return n, nil
		}
	}
}

// AuditFilter selects events for Audit.Query. Zero fields select
// everything; set fields must all match.
type AuditFilter struct {
	// Since and Until bound the event time: Since <= Time < Until, to the
	// millisecond. A zero time is no bound.
	Since, Until time.Time
	// Types, when not empty, lists the event types to return (at most 64).
	Types []string
	// User, IP and Severity, when set, must equal the event's field.
	User, IP, Severity string
	// AfterID selects events with a larger id: pass the last id seen to
	// page forward or follow new events.
	AfterID int64
	// Limit is the most events returned: DefaultAuditLimit when not
	// positive, at most MaxAuditLimit.
	Limit int
	// Newest, when more than Limit events match, returns the newest Limit
	// of them rather than the oldest. Results are oldest first either way.
	Newest bool
}

// AuditRecord is a stored event with its id.
type AuditRecord struct {
	ID int64
	audit.Event
}

// Query returns the events matching f, oldest (lowest id) first.
func (a *Audit) Query(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	if len(f.Types) > maxAuditTypes {
		return nil, fmt.Errorf("store: query audit events: %d types, at most %d", len(f.Types), maxAuditTypes)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, errors.New("store: query audit events: since is not before until")
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg ...any) {
		where = append(where, cond)
		args = append(args, arg...)
	}
	if !f.Since.IsZero() {
		add("at >= ?", floorMilli(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < ?", floorMilli(f.Until))
	}
	if len(f.Types) > 0 {
		add("type IN (?"+strings.Repeat(", ?", len(f.Types)-1)+")", anySlice(f.Types)...)
	}
	if f.User != "" {
		add("user = ?", f.User)
	}
	if f.IP != "" {
		add("ip = ?", f.IP)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if f.AfterID > 0 {
		add("id > ?", f.AfterID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)

	var q strings.Builder
	q.WriteString("SELECT " + auditColumns + " FROM audit_events")
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	if f.Newest {
		q.WriteString(" ORDER BY id DESC")
	} else {
		q.WriteString(" ORDER BY id")
	}
	q.WriteString(" LIMIT ?")
	args = append(args, limit)

	rows, err := a.db.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("store: query audit events: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var (
			r        AuditRecord
			at       int64
			severity string
		)
		if err := rows.Scan(&r.ID, &at, &r.Type, &severity, &r.User, &r.Session, &r.Tenant,
			&r.IP, &r.ConnID, &r.Reason, &r.RequestID, &r.Detail); err != nil {
			return nil, fmt.Errorf("store: query audit events: %w", err)
		}
		r.Time = time.UnixMilli(at)
		r.Severity = audit.Severity(severity)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query audit events: %w", err)
	}
	if f.Newest {
		slices.Reverse(out)
	}
	return out, nil
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
