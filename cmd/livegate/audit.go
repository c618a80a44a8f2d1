package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/store"
)

// auditPollInterval is how often `livegate audit --follow` looks for new
// events.
const auditPollInterval = 500 * time.Millisecond

// auditCellLen bounds each cell of the table output.
const auditCellLen = 64

// auditOptions are the flags of `livegate audit`.
type auditOptions struct {
	db, since, until string
	filter           store.AuditFilter
	follow, json     bool
}

func auditCommand() *cobra.Command {
	var o auditOptions
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the security events recorded in the database",
		Long: `Show the security events the gateway recorded in its SQLite database:
rejected upgrades, token failures and replays, denied channels and events,
rate-limit kicks, revocations…

Without --follow it prints the newest --limit matching events, oldest first.
With --follow it then keeps printing new events until interrupted.
Every field is sanitised again on output, so no stored text can inject
terminal escapes or fake lines.`,
		Example: `  livegate audit --since 1h
  livegate audit --type auth_failed,token_replayed --user alice --json
  livegate audit --severity critical --follow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd.Context(), o, time.Now(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.db, "db", "livegate-dev.db", "SQLite database the gateway writes")
	f.StringVar(&o.since, "since", "", "only events at or after this time: a duration ago (90s, 1h, 7d) or RFC 3339")
	f.StringVar(&o.until, "until", "", "only events before this time: a duration ago or RFC 3339")
	f.StringSliceVar(&o.filter.Types, "type", nil, "only events of these types (repeatable or comma-separated)")
	f.StringVar(&o.filter.User, "user", "", "only events of this user")
	f.StringVar(&o.filter.IP, "ip", "", "only events from this client IP")
	f.StringVar(&o.filter.Severity, "severity", "", "only events of this severity: info, warning or critical")
	f.IntVar(&o.filter.Limit, "limit", 100, fmt.Sprintf("print at most this many past events (1 to %d)", store.MaxAuditLimit))
	f.BoolVar(&o.follow, "follow", false, "keep printing new events until interrupted")
	f.BoolVar(&o.json, "json", false, "print one JSON object per line instead of a table")
	return cmd
}

// runAudit prints the events selected by o to out, relative to now.
func runAudit(ctx context.Context, o auditOptions, now time.Time, out io.Writer) error {
	f := o.filter
	var err error
	if f.Since, err = parseAuditTime(o.since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseAuditTime(o.until, now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if o.follow && !f.Until.IsZero() {
		return errors.New("--follow cannot be combined with --until")
	}
	switch audit.Severity(f.Severity) {
	case "", audit.SeverityInfo, audit.SeverityWarning, audit.SeverityCritical:
	default:
		return fmt.Errorf("--severity must be info, warning or critical, not %q", logsafe.String(f.Severity))
	}
	if f.Limit < 1 || f.Limit > store.MaxAuditLimit {
		return fmt.Errorf("--limit must be between 1 and %d", store.MaxAuditLimit)
	}
	var types []string
	for _, t := range f.Types {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	f.Types = types

	// Opening creates a missing file; a typo in --db should not.
	if o.db == store.MemoryPath {
		return errors.New("--db must name a database file")
	}
	if _, err := os.Stat(o.db); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no database at %s (set --db)", o.db)
		}
		return err
	}
	db, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer db.Close()

	p := &auditPrinter{out: out, json: o.json}
	f.Newest = true
	recs, err := db.Audit().Query(ctx, f)
	if err != nil {
		return err
	}
	if err := p.print(recs); err != nil {
		return err
	}
	if !o.follow {
		return nil
	}
	// Follow: poll for events with larger ids. An id is never reused, and
	// ids grow in commit order, so none is missed.
	f.Newest, f.Limit = false, store.MaxAuditLimit
	if len(recs) > 0 {
		f.AfterID = recs[len(recs)-1].ID
	}
	t := time.NewTicker(auditPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // interrupted: the normal end of --follow
		case <-t.C:
		}
		for {
			recs, err := db.Audit().Query(ctx, f)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if err := p.print(recs); err != nil {
				return err
			}
			if len(recs) > 0 {
				f.AfterID = recs[len(recs)-1].ID
			}
			if len(recs) < f.Limit {
				break
			}
		}
	}
}

// parseAuditTime parses s as a duration before now ("90s", "1h", "7d") or
// an RFC 3339 time; "" is the zero time (no bound).
func parseAuditTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("a duration ago must not be negative")
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (1h, 7d) nor an RFC 3339 time", logsafe.String(s))
	}
	return t, nil
}

// auditPrinter writes records as JSON lines or as a table whose header it
// prints once.
type auditPrinter struct {
	out     io.Writer
	json    bool
	started bool
}

// auditLine is the JSON form of a record: the keys of audit.Recorder's
// JSON lines plus the id.
type auditLine struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Severity  string    `json:"severity,omitempty"`
	User      string    `json:"user,omitempty"`
	Session   string    `json:"session,omitempty"`
	Tenant    string    `json:"tenant,omitempty"`
	IP        string    `json:"ip,omitempty"`
	ConnID    string    `json:"conn,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	RequestID string    `json:"request,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

var auditHeader = []string{"ID", "TIME", "SEVERITY", "TYPE", "USER", "SESSION", "TENANT", "IP", "CONN", "REASON", "REQUEST", "DETAIL"}

func (p *auditPrinter) print(recs []store.AuditRecord) error {
	if p.json {
		enc := json.NewEncoder(p.out)
		for _, r := range recs {
			e := r.Sanitized() // the database may have been written by anything
			if err := enc.Encode(auditLine{
				ID: r.ID, Time: e.Time.UTC(), Type: e.Type, Severity: string(e.Severity), User: e.User,
				Session: e.Session, Tenant: e.Tenant, IP: e.IP, ConnID: e.ConnID, Reason: e.Reason,
				RequestID: e.RequestID, Detail: e.Detail,
			}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(recs) == 0 && p.started {
		return nil
	}
	// Sanitised cells hold no tab, newline or 0xff byte, so they cannot
	// break tabwriter's columns.
	tw := tabwriter.NewWriter(p.out, 0, 0, 2, ' ', 0)
	if !p.started {
		p.started = true
		fmt.Fprintln(tw, strings.Join(auditHeader, "\t"))
	}
	for _, r := range recs {
		cells := []string{
			strconv.FormatInt(r.ID, 10), r.Time.UTC().Format("2006-01-02T15:04:05.000Z"), string(r.Severity), r.Type,
			r.User, r.Session, r.Tenant, r.IP, r.ConnID, r.Reason, r.RequestID, r.Detail,
		}
		for i, c := range cells {
			if c = logsafe.Truncate(c, auditCellLen); c == "" {
				c = "-"
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
