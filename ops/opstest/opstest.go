// Package opstest helps test code that uses package ops: Recorder is a
// Publisher that keeps what it is given, and TestStore checks an ops.Store
// implementation against the contract documented on ops.Store.
package opstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/ops"
)

// Recorder is an ops.Publisher that records every message by channel. It
// decodes each strictly (unknown fields are an error), so a test notices
// when the message format changes. The zero value is ready; it is safe
// for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	raw map[string][]json.RawMessage
	// Err, when set, is returned by every Publish (the message is still
	// recorded), to test publish failures.
	Err error
}

var _ ops.Publisher = (*Recorder)(nil)

// Publish records data, which must be a json.RawMessage or []byte holding
// an ops.Message.
func (r *Recorder) Publish(ctx context.Context, channel string, data any) error {
	var raw []byte
	switch d := data.(type) {
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		return fmt.Errorf("opstest: publish: data is %T, want json.RawMessage", data)
	}
	if _, err := decode(raw); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.raw == nil {
		r.raw = make(map[string][]json.RawMessage)
	}
	r.raw[channel] = append(r.raw[channel], bytes.Clone(raw))
	return r.Err
}

func decode(raw []byte) (ops.Message, error) {
	var m ops.Message
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return ops.Message{}, fmt.Errorf("opstest: publish: %w", err)
	}
	return m, nil
}

// Raw returns the encoded messages published to channel, in order.
func (r *Recorder) Raw(channel string) []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.raw[channel])
}

// Messages returns the messages published to channel, decoded, in order.
func (r *Recorder) Messages(channel string) []ops.Message {
	raw := r.Raw(channel)
	out := make([]ops.Message, 0, len(raw))
	for _, b := range raw {
		m, _ := decode(b) // checked by Publish
		out = append(out, m)
	}
	return out
}

// t0 is the base time of TestStore, on a millisecond: stores may keep
// times to the millisecond only.
var t0 = time.UnixMilli(1_700_000_000_000)

// TestStore runs the ops.Store contract tests against the stores that
// open returns, a fresh empty one per call.
func TestStore(t *testing.T, open func(t *testing.T) ops.Store) {
	ctx := context.Background()
	rec := func(id, user, tenant string, created time.Time) ops.Record {
		return ops.Record{
			Snapshot: ops.Snapshot{ID: id, Kind: "export", State: ops.StateRunning, Seq: 1,
				CreatedAt: created, UpdatedAt: created},
			User: user, Tenant: tenant,
		}
	}
	mustCreate := func(t *testing.T, s ops.Store, r ops.Record) {
		t.Helper()
		if err := s.Create(ctx, r); err != nil {
			t.Fatalf("Create(%s): %v", r.ID, err)
		}
	}
	mustGet := func(t *testing.T, s ops.Store, id string) ops.Record {
		t.Helper()
		r, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		return r
	}

	t.Run("CreateGet", func(t *testing.T) {
		s := open(t)
		r := rec("a", "alice", "t1", t0)
		r.RestartedFrom = "z"
		mustCreate(t, s, r)
		got := mustGet(t, s, "a")
		if got.ID != "a" || got.User != "alice" || got.Tenant != "t1" || got.Kind != "export" ||
			got.State != ops.StateRunning || got.Seq != 1 || got.RestartedFrom != "z" ||
			!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) || !got.FinishedAt.IsZero() ||
			got.Status != "" || got.Percent != 0 || len(got.Logs) != 0 || len(got.Swaps) != 0 || got.Result != nil {
			t.Fatalf("Get = %+v", got)
		}
		if err := s.Create(ctx, r); err == nil {
			t.Fatal("Create of an existing id succeeded")
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, ops.ErrNotFound) {
			t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
		}
		if err := s.Create(ctx, rec("b", "", "", t0)); err == nil {
			t.Fatal("Create without a user succeeded")
		}
	})

	t.Run("Update", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, rec("a", "alice", "", t0))
		st, pc, er := "copying <b>", 42, "disk & full"
		at := t0.Add(time.Second)
		u := ops.Update{Seq: 5, At: at, Status: &st, Percent: &pc, Error: &er,
			Result: &ops.Result{JSON: json.RawMessage(`{"n":1}`), HTML: "{&#34;n&#34;:1}"},
			Swaps:  []ops.Swap{{Target: "chart", HTML: "<b>1</b>"}, {Target: "table", HTML: "<i>t</i>"}}}
		if err := s.Update(ctx, "a", u); err != nil {
			t.Fatal(err)
		}
		// A later update that sets only a log line and one swap leaves the rest.
		line := "line <1>"
		if err := s.Update(ctx, "a", ops.Update{Seq: 6, At: at.Add(time.Second), Log: &line, KeepLogs: 10,
			Swaps: []ops.Swap{{Target: "chart", HTML: "<b>2</b>"}}}); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, s, "a")
		if got.Status != st || got.Percent != pc || got.Error != er || got.Seq != 6 ||
			!got.UpdatedAt.Equal(at.Add(time.Second)) || string(got.Result) != `{"n":1}` ||
			got.ResultHTML != "{&#34;n&#34;:1}" || !slices.Equal(got.Logs, []string{line}) ||
			len(got.Swaps) != 2 || got.Swaps["chart"] != "<b>2</b>" || got.Swaps["table"] != "<i>t</i>" ||
			got.State != ops.StateRunning {
			t.Fatalf("Get = %+v", got)
		}
		if err := s.Update(ctx, "nope", ops.Update{Seq: 1, At: at}); !errors.Is(err, ops.ErrNotFound) {
			t.Fatalf("Update(unknown) = %v, want ErrNotFound", err)
		}
		// An empty status and a zero percent are values, not "unchanged".
		empty, zero := "", 0
		if err := s.Update(ctx, "a", ops.Update{Seq: 7, At: at, Status: &empty, Percent: &zero}); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, "a"); got.Status != "" || got.Percent != 0 {
			t.Fatalf("after clearing: status %q percent %d", got.Status, got.Percent)
		}
	})

	t.Run("LogsBounded", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, rec("a", "alice", "", t0))
		for i := range 7 {
			line := fmt.Sprint("line ", i)
			if err := s.Update(ctx, "a", ops.Update{Seq: uint64(2 + i), At: t0, Log: &line, KeepLogs: 3}); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustGet(t, s, "a").Logs; !slices.Equal(got, []string{"line 4", "line 5", "line 6"}) {
			t.Fatalf("Logs = %q, want the newest 3", got)
		}
	})

	t.Run("Finish", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, rec("a", "alice", "", t0))
		if err := s.Finish(ctx, "a", ops.StateRunning, 2, t0); err == nil {
			t.Fatal("Finish with state running succeeded")
		}
		at := t0.Add(time.Minute)
		if err := s.Finish(ctx, "a", ops.StateCancelled, 9, at); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, s, "a")
		if got.State != ops.StateCancelled || got.Seq != 9 || !got.FinishedAt.Equal(at) || !got.UpdatedAt.Equal(at) {
			t.Fatalf("Get = %+v", got)
		}
		if err := s.Finish(ctx, "nope", ops.StateDone, 2, at); !errors.Is(err, ops.ErrNotFound) {
			t.Fatalf("Finish(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("ListByOwner", func(t *testing.T) {
		s := open(t)
		for i, r := range []ops.Record{
			rec("a1", "alice", "", t0),
			rec("a2", "alice", "", t0.Add(2*time.Second)),
			rec("a3", "alice", "", t0.Add(time.Second)),
			rec("b1", "bob", "", t0),
			rec("t1", "alice", "other", t0), // same user name, other tenant
		} {
			mustCreate(t, s, r)
			line := fmt.Sprint("log ", i)
			if err := s.Update(ctx, r.ID, ops.Update{Seq: 2, At: t0, Log: &line, KeepLogs: 5,
				Swaps: []ops.Swap{{Target: "x", HTML: "y"}}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ListByOwner(ctx, "alice", "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
			if r.User != "alice" || r.Tenant != "" || r.Logs != nil || r.Swaps != nil {
				t.Errorf("listed %+v", r)
			}
		}
		if !slices.Equal(ids, []string{"a2", "a3", "a1"}) {
			t.Fatalf("ids = %q, want newest first", ids)
		}
		if got, err := s.ListByOwner(ctx, "alice", "", 2); err != nil || len(got) != 2 || got[0].ID != "a2" {
			t.Fatalf("limited list = %+v, %v", got, err)
		}
		if got, err := s.ListByOwner(ctx, "carol", "", 10); err != nil || len(got) != 0 {
			t.Fatalf("list of a user without operations = %+v, %v", got, err)
		}
	})

	t.Run("DeleteFinishedBefore", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"old", "new", "running"} {
			mustCreate(t, s, rec(id, "alice", "", t0))
			line := "x"
			if err := s.Update(ctx, id, ops.Update{Seq: 2, At: t0, Log: &line, KeepLogs: 5,
				Swaps: []ops.Swap{{Target: "x", HTML: "y"}}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Finish(ctx, "old", ops.StateDone, 3, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, "new", ops.StateFailed, 3, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteFinishedBefore(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("delete before the first finish = %d, %v; want 0", n, err)
		}
		if n, err := s.DeleteFinishedBefore(ctx, t0.Add(90*time.Minute)); err != nil || n != 1 {
			t.Fatalf("delete = %d, %v; want 1", n, err)
		}
		if _, err := s.Get(ctx, "old"); !errors.Is(err, ops.ErrNotFound) {
			t.Fatalf("Get(deleted) = %v, want ErrNotFound", err)
		}
		if n, err := s.DeleteFinishedBefore(ctx, t0.Add(1000*time.Hour)); err != nil || n != 1 {
			t.Fatalf("second delete = %d, %v; want 1 (the running one stays)", n, err)
		}
		if got := mustGet(t, s, "running"); got.State != ops.StateRunning || len(got.Logs) != 1 {
			t.Fatalf("running operation after delete: %+v", got)
		}
		// A new operation reusing a deleted id starts without old logs.
		mustCreate(t, s, rec("old", "alice", "", t0))
		if got := mustGet(t, s, "old"); len(got.Logs) != 0 || len(got.Swaps) != 0 {
			t.Fatalf("logs or swaps survived deletion: %+v", got)
		}
	})

	t.Run("FailRunning", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, rec("before", "alice", "", t0))
		mustCreate(t, s, rec("after", "alice", "", t0.Add(time.Minute)))
		mustCreate(t, s, rec("done", "alice", "", t0))
		if err := s.Finish(ctx, "done", ops.StateDone, 2, t0); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(2 * time.Minute)
		if n, err := s.FailRunning(ctx, t0.Add(time.Minute), at, "interrupted"); err != nil || n != 1 {
			t.Fatalf("FailRunning = %d, %v; want 1", n, err)
		}
		if got := mustGet(t, s, "before"); got.State != ops.StateFailed || got.Error != "interrupted" || !got.FinishedAt.Equal(at) {
			t.Fatalf("before: %+v", got)
		}
		if got := mustGet(t, s, "after"); got.State != ops.StateRunning {
			t.Fatalf("after: %+v", got)
		}
		if got := mustGet(t, s, "done"); got.State != ops.StateDone || got.Error != "" {
			t.Fatalf("done: %+v", got)
		}
	})

	t.Run("Copies", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, rec("a", "alice", "", t0))
		line := "original"
		if err := s.Update(ctx, "a", ops.Update{Seq: 2, At: t0, Log: &line, KeepLogs: 5,
			Result: &ops.Result{JSON: json.RawMessage(`"r"`), HTML: "r"},
			Swaps:  []ops.Swap{{Target: "x", HTML: "original"}}}); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, s, "a")
		got.Logs[0], got.Swaps["x"], got.Result[1] = "changed", template.HTML("changed"), 'X'
		again := mustGet(t, s, "a")
		if again.Logs[0] != "original" || again.Swaps["x"] != "original" || string(again.Result) != `"r"` {
			t.Fatalf("the store shares memory with its caller: %+v", again)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		for i := range 4 {
			id := fmt.Sprint("op", i)
			mustCreate(t, s, rec(id, "alice", "", t0))
			wg.Go(func() {
				for j := range 20 {
					line := fmt.Sprint(j)
					if err := s.Update(ctx, id, ops.Update{Seq: uint64(2 + j), At: t0, Log: &line, KeepLogs: 5}); err != nil {
						t.Error(err)
						return
					}
					if _, err := s.Get(ctx, id); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for i := range 4 {
			if got := mustGet(t, s, fmt.Sprint("op", i)); got.Seq != 21 || len(got.Logs) != 5 || got.Logs[4] != "19" {
				t.Fatalf("op%d: seq %d logs %q", i, got.Seq, got.Logs)
			}
		}
	})
}
