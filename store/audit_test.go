package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/store"
)

// seedAudit writes six events, one a minute from t0, and returns them.
func seedAudit(t *testing.T, a *store.Audit) []audit.Event {
	t.Helper()
	ev := func(min int, typ string, sev audit.Severity, user, ip string) audit.Event {
		return audit.Event{Type: typ, Time: t0.Add(time.Duration(min) * time.Minute), Severity: sev, User: user, IP: ip,
			Session: "s-" + user, Tenant: "acme", ConnID: "c1", Reason: "r", RequestID: "req", Detail: "d"}
	}
	events := []audit.Event{
		ev(0, audit.TypeAuthFailed, audit.SeverityWarning, "alice", "192.0.2.1"),
		ev(1, audit.TypeTokenReplayed, audit.SeverityCritical, "alice", "192.0.2.1"),
		ev(2, audit.TypeChannelDenied, audit.SeverityWarning, "bob", "192.0.2.2"),
		ev(3, audit.TypeRateLimited, audit.SeverityInfo, "bob", "192.0.2.2"),
		ev(4, audit.TypeAuthFailed, audit.SeverityWarning, "carol", "192.0.2.3"),
		ev(5, audit.TypeRevoked, audit.SeverityWarning, "", "192.0.2.1"),
	}
	if err := a.WriteEvents(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	return events
}

func TestAuditQuery(t *testing.T) {
	t.Parallel()
	db := open(t, tempPath(t), newFakeClock(t0))
	a := db.Audit()
	seedAudit(t, a)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name    string
		f       store.AuditFilter
		wantIDs []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6}},
		{"since", store.AuditFilter{Since: at(4)}, []int64{5, 6}},
		{"until exclusive", store.AuditFilter{Until: at(2)}, []int64{1, 2}},
		{"range", store.AuditFilter{Since: at(1), Until: at(3)}, []int64{2, 3}},
		{"one type", store.AuditFilter{Types: []string{audit.TypeAuthFailed}}, []int64{1, 5}},
		{"two types", store.AuditFilter{Types: []string{audit.TypeRevoked, audit.TypeRateLimited}}, []int64{4, 6}},
		{"user", store.AuditFilter{User: "bob"}, []int64{3, 4}},
		{"ip", store.AuditFilter{IP: "192.0.2.1"}, []int64{1, 2, 6}},
		{"severity", store.AuditFilter{Severity: "critical"}, []int64{2}},
		{"combined", store.AuditFilter{User: "alice", Types: []string{audit.TypeAuthFailed}, Since: t0}, []int64{1}},
		{"after id", store.AuditFilter{AfterID: 4}, []int64{5, 6}},
		{"limit oldest", store.AuditFilter{Limit: 2}, []int64{1, 2}},
		{"limit newest", store.AuditFilter{Limit: 2, Newest: true}, []int64{5, 6}},
		{"newest with filter", store.AuditFilter{IP: "192.0.2.1", Limit: 2, Newest: true}, []int64{2, 6}},
		{"no match", store.AuditFilter{User: "mallory"}, nil},
		{"ip and type", store.AuditFilter{IP: "192.0.2.1", Types: []string{audit.TypeRevoked}}, []int64{6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recs, err := a.Query(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, r := range recs {
				ids = append(ids, r.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Fatalf("ids = %v, want %v", ids, tt.wantIDs)
			}
		})
	}
}

func TestAuditRoundTrip(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			a := open(t, k.path(t), newFakeClock(t0)).Audit()
			events := seedAudit(t, a)
			recs, err := a.Query(context.Background(), store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(events) {
				t.Fatalf("%d records, want %d", len(recs), len(events))
			}
			for i, r := range recs {
				want := events[i]
				if !r.Time.Equal(want.Time) {
					t.Errorf("record %d time %v, want %v", i, r.Time, want.Time)
				}
				r.Time, want.Time = time.Time{}, time.Time{}
				if r.Event != want {
					t.Errorf("record %d = %+v, want %+v", i, r.Event, want)
				}
			}
		})
	}
}

func TestAuditWriteSanitisesAndStamps(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0.Add(1500 * time.Microsecond))
	a := open(t, store.MemoryPath, clock).Audit()
	err := a.WriteEvents(context.Background(), []audit.Event{{
		Type:   audit.TypeAuthFailed,
		User:   "mallory\nforged=1",
		Detail: "\x1b[31m" + strings.Repeat("x", 10000),
	}})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := a.Query(context.Background(), store.AuditFilter{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Query = %v, %v", recs, err)
	}
	r := recs[0]
	if r.User != "mallory\uFFFDforged=1" || strings.Contains(r.Detail, "\x1b") || len(r.Detail) > 300 {
		t.Fatalf("not sanitised: %+v", r)
	}
	if want := t0.Add(time.Millisecond); !r.Time.Equal(want) {
		t.Fatalf("time %v, want the clock floored to the millisecond %v", r.Time, want)
	}
}

func TestAuditDeleteBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	a := open(t, path, newFakeClock(t0)).Audit()
	// More than one delete batch.
	events := make([]audit.Event, 2500)
	for i := range events {
		events[i] = audit.Event{Type: "x", Time: t0.Add(time.Duration(i) * time.Second)}
	}
	if err := a.WriteEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	n, err := a.DeleteBefore(ctx, t0.Add(2200*time.Second))
	if err != nil || n != 2200 {
		t.Fatalf("DeleteBefore = %d, %v; want 2200", n, err)
	}
	if got := count(t, path, "audit_events"); got != 300 {
		t.Fatalf("%d rows left, want 300", got)
	}
	// Empty the table: ids must still grow, so followers miss nothing.
	if _, err := a.DeleteBefore(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteEvents(ctx, []audit.Event{{Type: "y", Time: t0}}); err != nil {
		t.Fatal(err)
	}
	recs, err := a.Query(ctx, store.AuditFilter{})
	if err != nil || len(recs) != 1 || recs[0].ID != 2501 {
		t.Fatalf("after emptying: %+v, %v; want one record with id 2501", recs, err)
	}
	if n, err := a.DeleteBefore(ctx, time.Time{}); err != nil || n != 0 {
		t.Fatalf("DeleteBefore(zero) = %d, %v; want nothing deleted", n, err)
	}
}

func TestAuditQueryLimitsAndErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := open(t, store.MemoryPath, newFakeClock(t0)).Audit()
	events := make([]audit.Event, store.DefaultAuditLimit+5)
	for i := range events {
		events[i] = audit.Event{Type: "x", Time: t0}
	}
	if err := a.WriteEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if recs, err := a.Query(ctx, store.AuditFilter{}); err != nil || len(recs) != store.DefaultAuditLimit {
		t.Fatalf("default limit: %d records, %v", len(recs), err)
	}
	if _, err := a.Query(ctx, store.AuditFilter{Since: t0, Until: t0}); err == nil {
		t.Fatal("empty range accepted")
	}
	if _, err := a.Query(ctx, store.AuditFilter{Types: make([]string, 65)}); err == nil {
		t.Fatal("65 types accepted")
	}
	if err := a.WriteEvents(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}
