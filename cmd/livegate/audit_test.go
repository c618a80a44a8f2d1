package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/store"
)

// seedAuditDB creates a database with events relative to now: alice's two
// an hour and more ago, bob's and carol's within the hour, and one written
// behind the store's back with unsanitised text.
func seedAuditDB(t *testing.T, now time.Time) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Audit().WriteEvents(ctx, []audit.Event{
		{Type: audit.TypeAuthFailed, Time: now.Add(-3 * time.Hour), Severity: audit.SeverityWarning, User: "alice", IP: "192.0.2.1", Reason: "signature"},
		{Type: audit.TypeTokenReplayed, Time: now.Add(-2 * time.Hour), Severity: audit.SeverityCritical, User: "alice", IP: "192.0.2.1", Session: "s1"},
		{Type: audit.TypeChannelDenied, Time: now.Add(-30 * time.Minute), Severity: audit.SeverityWarning, User: "bob", IP: "192.0.2.2", Detail: "room:secret"},
		{Type: audit.TypeRateLimited, Time: now.Add(-10 * time.Minute), Severity: audit.SeverityInfo, User: "carol", IP: "192.0.2.3", ConnID: "c9", RequestID: "r1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A row from an older or foreign writer, never sanitised.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, err = raw.Exec(`INSERT INTO audit_events (at, type, severity, user, detail) VALUES (?, 'event_denied', 'warning', ?, ?)`,
		now.Add(-5*time.Minute).UnixMilli(), "mallory\n5 2025-01-01T00:00:00.000Z info forged", "\x1b[2J\t\xff"+strings.Repeat("D", 5000))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// runCLI runs the root command with args and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestAuditCommandJSON(t *testing.T) {
	t.Parallel()
	path := seedAuditDB(t, time.Now())
	tests := []struct {
		name  string
		args  []string
		users []string
	}{
		{"all", nil, []string{"alice", "alice", "bob", "carol", "mallory\uFFFD5 2025-01-01T00:00:00.000Z info forged"}},
		{"since", []string{"--since", "1h"}, []string{"bob", "carol", "mallory\uFFFD5 2025-01-01T00:00:00.000Z info forged"}},
		{"until", []string{"--until", "1h"}, []string{"alice", "alice"}},
		{"range", []string{"--since", "150m", "--until", "20m"}, []string{"alice", "bob"}},
		{"user", []string{"--user", "alice"}, []string{"alice", "alice"}},
		{"ip", []string{"--ip", "192.0.2.3"}, []string{"carol"}},
		{"severity", []string{"--severity", "critical"}, []string{"alice"}},
		{"types repeated and comma", []string{"--type", "rate_limited,channel_denied", "--type", "token_replayed"}, []string{"alice", "bob", "carol"}},
		{"limit keeps the newest", []string{"--limit", "2", "--until", "1m"}, []string{"carol", "mallory\uFFFD5 2025-01-01T00:00:00.000Z info forged"}},
		{"no match", []string{"--user", "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runCLI(t, append([]string{"audit", "--db", path, "--json"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var users []string
			var lastID int64
			for line := range strings.Lines(out) {
				var l auditLine
				if err := json.Unmarshal([]byte(line), &l); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if l.ID <= lastID || l.Time.IsZero() || l.Type == "" {
					t.Fatalf("line %q: want increasing ids, a time and a type", line)
				}
				lastID = l.ID
				if strings.ContainsAny(l.Detail+l.User, "\n\t\x1b") || !utf8.ValidString(l.Detail) || len(l.Detail) > 300 {
					t.Fatalf("unsanitised output %q", line)
				}
				users = append(users, l.User)
			}
			if strings.Join(users, "|") != strings.Join(tt.users, "|") {
				t.Fatalf("users %q, want %q", users, tt.users)
			}
		})
	}
}

func TestAuditCommandTable(t *testing.T) {
	t.Parallel()
	path := seedAuditDB(t, time.Now())
	out, err := runCLI(t, "audit", "--db", path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want a header and 5 rows:\n%s", len(lines), out)
	}
	if strings.ContainsAny(out, "\t\x1b\r") || !utf8.ValidString(out) {
		t.Fatalf("control characters in the table: %q", out)
	}
	header := lines[0]
	if !strings.HasPrefix(header, "ID  TIME") {
		t.Fatalf("header %q", header)
	}
	// Columns are aligned: every row has a cell starting where each
	// header column starts.
	for _, col := range []string{"TYPE", "USER", "DETAIL"} {
		at := utf8.RuneCountInString(header[:strings.Index(header, col)])
		for _, row := range lines[1:] {
			r := []rune(row)
			if at >= len(r) || r[at] == ' ' || r[at-1] != ' ' {
				t.Fatalf("column %s (rune %d) not aligned in row %q", col, at, row)
			}
		}
	}
	row := lines[2]
	for _, want := range []string{"2  ", "critical", "token_replayed", "alice", "s1", "192.0.2.1"} {
		if !strings.Contains(row, want) {
			t.Fatalf("row %q lacks %q", row, want)
		}
	}
	if forged := lines[5]; !strings.Contains(forged, "mallory\uFFFD5 2025") || !strings.Contains(forged, "…") {
		t.Fatalf("forged row not sanitised and cut: %q", forged)
	}
}

func TestAuditCommandFollow(t *testing.T) {
	t.Parallel()
	now := time.Now()
	path := seedAuditDB(t, now)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncBuffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"audit", "--db", path, "--json", "--follow", "--user", "dave", "--since", "1h"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Written while the command runs: one for dave (printed), one for
	// someone else (filtered out), then another for dave.
	for _, u := range []string{"dave", "erin", "dave"} {
		if err := db.Audit().WriteEvents(ctx, []audit.Event{{Type: audit.TypeRevoked, User: u, Time: time.Now(), Severity: audit.SeverityWarning}}); err != nil {
			t.Fatal(err)
		}
	}
	for strings.Count(out.String(), "\n") < 2 {
		select {
		case err := <-done:
			t.Fatalf("follow returned early: %v; output %q", err, out.String())
		case <-ctx.Done():
			t.Fatalf("new rows not printed within 20s; output %q", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop after cancellation")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"id":6`) || !strings.Contains(lines[1], `"id":8`) || strings.Contains(out.String(), "erin") {
		t.Fatalf("output %q: want dave's rows 6 and 8 only", out.String())
	}
}

func TestAuditCommandErrors(t *testing.T) {
	t.Parallel()
	path := seedAuditDB(t, time.Now())
	missing := filepath.Join(t.TempDir(), "none.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing db", []string{"--db", missing}, "no database"},
		{"memory db", []string{"--db", ":memory:"}, "must name a database file"},
		{"bad severity", []string{"--db", path, "--severity", "loud"}, "--severity"},
		{"bad since", []string{"--db", path, "--since", "yesterday"}, "--since"},
		{"negative duration", []string{"--db", path, "--since", "-1h"}, "--since"},
		{"bad until", []string{"--db", path, "--until", "2025-13-01"}, "--until"},
		{"empty range", []string{"--db", path, "--since", "1h", "--until", "2h"}, "since is not before until"},
		{"limit", []string{"--db", path, "--limit", "0"}, "--limit"},
		{"follow until", []string{"--db", path, "--follow", "--until", "1h"}, "--follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runCLI(t, append([]string{"audit"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := runCLI(t, "audit", "--db", missing); err == nil {
		t.Fatal("missing database accepted")
	}
}

func TestParseAuditTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"90s", now.Add(-90 * time.Second)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"7d", now.AddDate(0, 0, -7)},
		{"0d", now},
		{"2025-06-01T00:00:00Z", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"2025-06-01T02:00:00.5+02:00", time.Date(2025, 6, 1, 0, 0, 0, 5e8, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseAuditTime(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseAuditTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"d", "-2d", "yesterday", "2025-06-01", "-5m"} {
		if _, err := parseAuditTime(bad, now); err == nil {
			t.Errorf("parseAuditTime(%q) accepted", bad)
		}
	}
}

// TestDevServerRecordsAuditEvents checks the wiring: a request the dev
// server refuses ends up in its database, where `livegate audit` finds it.
func TestDevServerRecordsAuditEvents(t *testing.T) {
	t.Setenv(envSecret, "")
	t.Setenv(envAdminSecret, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "dev.db")
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, "127.0.0.1:0", path, &out) }()
	re := regexp.MustCompile(`on http://(127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", out.String())
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/ws", nil)
	req.Host = "rebind.evil.example"
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel() // shutting down flushes the recorder
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runDev: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev server did not stop")
	}
	got, err := runCLI(t, "audit", "--db", path, "--json", "--type", audit.TypeUpgradeRejected)
	if err != nil {
		t.Fatal(err)
	}
	var l auditLine
	if err := json.Unmarshal([]byte(got), &l); err != nil || l.Reason != "host" || l.IP == "" {
		t.Fatalf("audit output %q (%v): want the refused upgrade with reason host", got, err)
	}
}
