package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/ops"
	"github.com/livegate/livegate/ops/opstest"
)

func TestMemoryStoreContract(t *testing.T) {
	opstest.TestStore(t, func(*testing.T) ops.Store { return ops.NewMemoryStore() })
}

// TestProgressSurvivesReload runs an operation to 100 % with a result and
// reads it back through a new Manager on the same store, as a page
// reloaded after a server restart would.
func TestProgressSurvivesReload(t *testing.T) {
	type result struct {
		Files int    `json:"files"`
		Note  string `json:"note"`
	}
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) (first, second ops.Store)
	}{
		{"memory", func(*testing.T) (ops.Store, ops.Store) { s := ops.NewMemoryStore(); return s, s }},
		{"sqlite", func(t *testing.T) (ops.Store, ops.Store) {
			path := tempDB(t)
			first := sqliteStore(t, path)
			return first.Operations(), sqliteStore(t, path).Operations() // a second connection pool, as after a restart
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, second := tc.store(t)
			e := newEnv(t, first, nil)
			if err := e.m.Register("export", func(ctx context.Context, p *ops.Progress) error {
				p.Status("Exporting")
				for i := 0; i <= 100; i += 10 {
					p.Percent(i)
					p.Log(fmt.Sprintf("step %d", i))
					e.clock.Advance(20 * time.Millisecond)
				}
				if err := p.Swap("summary", "row", map[string]any{"Name": "files", "N": 42}); err != nil {
					return err
				}
				p.Status("Done")
				return p.Result(result{Files: 42, Note: "all <good>"})
			}); err != nil {
				t.Fatal(err)
			}
			op, err := e.m.Start(context.Background(), alice, "export")
			if err != nil {
				t.Fatal(err)
			}
			if op.Channel() != "op:"+op.ID || op.Kind != "export" {
				t.Fatalf("op = %+v", op)
			}
			wait(t, op)

			msgs := e.pub.Messages(op.Channel())
			checkSeq(t, op.ID, msgs)
			last := msgs[len(msgs)-1]
			if last.Type != ops.TypeState || last.State != ops.StateDone {
				t.Fatalf("last message %+v, want state done", last)
			}
			pcts := ofType(msgs, ops.TypePercent)
			if p := pcts[len(pcts)-1].Percent; p == nil || *p != 100 {
				t.Fatalf("last percent message %+v, want 100", pcts[len(pcts)-1])
			}
			res := ofType(msgs, ops.TypeResult)
			if len(res) != 1 || string(res[0].Result) != `{"files":42,"note":"all \u003cgood\u003e"}` {
				t.Fatalf("result messages %+v", res)
			}

			// "Reload": a new Manager on the same data.
			m2, err := ops.New(ops.Config{Publisher: &opstest.Recorder{}, Store: second})
			if err != nil {
				t.Fatal(err)
			}
			snap, err := m2.Get(context.Background(), alice, op.ID)
			if err != nil {
				t.Fatal(err)
			}
			var got result
			if err := json.Unmarshal(snap.Result, &got); err != nil || got != (result{42, "all <good>"}) {
				t.Fatalf("Result = %s (%v)", snap.Result, err)
			}
			if snap.State != ops.StateDone || snap.Percent != 100 || snap.Status != "Done" ||
				snap.Kind != "export" || snap.Channel() != op.Channel() || snap.FinishedAt.IsZero() ||
				len(snap.Logs) != 11 || snap.Logs[10] != "step 100" ||
				snap.Swaps["summary"] != "<tr><td>files</td><td>42</td></tr>" ||
				strings.Contains(string(snap.ResultHTML), "<good>") || !strings.Contains(string(snap.ResultHTML), "&lt;good&gt;") ||
				snap.Seq != last.Seq {
				t.Fatalf("snapshot after reload: %+v", snap)
			}
			list, err := m2.List(context.Background(), alice)
			if err != nil || len(list) != 1 || list[0].ID != op.ID {
				t.Fatalf("List = %+v, %v", list, err)
			}
		})
	}
}

// TestEscaping sends script payloads through every report kind and checks
// that each published fragment and each persisted one is inert text.
func TestEscaping(t *testing.T) {
	for _, payload := range xss {
		t.Run(payload, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			op, h := e.hold(t, alice)
			p := h.p
			p.Status(payload)
			p.Log(payload)
			p.Error(payload)
			if err := p.Swap("cell", "row", map[string]any{"Name": payload, "N": payload}); err != nil {
				t.Fatal(err)
			}
			if err := p.Result(payload); err != nil {
				t.Fatal(err)
			}
			if err := p.Result(map[string]string{"v": payload}); err != nil {
				t.Fatal(err)
			}
			h.release <- nil
			wait(t, op)

			seen := map[string]bool{}
			for _, m := range e.pub.Messages(op.Channel()) {
				if m.HTML == "" {
					continue
				}
				seen[m.Type] = true
				if m.Trusted {
					t.Errorf("%s message marked trusted", m.Type)
				}
				for _, bad := range []string{"<img", "<script", "<svg", "<iframe", `"`, `'`} {
					if strings.Contains(m.HTML, bad) {
						t.Errorf("%s fragment %q contains %q", m.Type, m.HTML, bad)
					}
				}
				if !strings.Contains(m.HTML, "&lt;") {
					t.Errorf("%s fragment %q does not escape '<'", m.Type, m.HTML)
				}
			}
			for _, typ := range []string{ops.TypeStatus, ops.TypeLog, ops.TypeError, ops.TypeSwap, ops.TypeResult} {
				if !seen[typ] {
					t.Errorf("no %s fragment published", typ)
				}
			}
			// The exact form of the example.
			if payload == xss[0] {
				st := ofType(e.pub.Messages(op.Channel()), ops.TypeStatus)[0]
				if st.HTML != "&lt;img src=x onerror=alert(1)&gt;" || st.Text != payload {
					t.Errorf("status message %+v", st)
				}
			}
			snap, err := e.m.Get(context.Background(), alice, op.ID)
			if err != nil {
				t.Fatal(err)
			}
			for name, h := range map[string]template.HTML{"result": snap.ResultHTML, "swap": snap.Swaps["cell"]} {
				if strings.Contains(string(h), "<img") || strings.Contains(string(h), "<script") || strings.Contains(string(h), "<svg") {
					t.Errorf("persisted %s HTML %q is not escaped", name, h)
				}
			}
			// Text fields keep the raw text: pages escape them when rendering.
			if snap.Status != payload || snap.Error != payload || snap.Logs[0] != payload {
				t.Errorf("persisted text changed: %+v", snap)
			}
		})
	}
}

func TestTrustedHTML(t *testing.T) {
	e := newEnv(t, nil, nil)
	op, h := e.hold(t, alice)
	const raw = `<svg viewBox="0 0 10 10"><rect width="5" height="10"/></svg>`
	if err := h.p.TrustedHTML("chart", raw); err != nil {
		t.Fatal(err)
	}
	if err := h.p.Swap("table", "row", map[string]any{"Name": "<b>", "N": 1}); err != nil {
		t.Fatal(err)
	}
	h.release <- nil
	wait(t, op)
	swaps := ofType(e.pub.Messages(op.Channel()), ops.TypeSwap)
	if len(swaps) != 2 {
		t.Fatalf("swaps %+v", swaps)
	}
	if s := swaps[0]; s.Target != "chart" || s.HTML != raw || !s.Trusted {
		t.Errorf("trusted swap %+v, want the raw HTML marked trusted", s)
	}
	if s := swaps[1]; s.Target != "table" || s.Trusted || s.HTML != "<tr><td>&lt;b&gt;</td><td>1</td></tr>" {
		t.Errorf("template swap %+v", s)
	}
	snap, err := e.m.Get(context.Background(), alice, op.ID)
	if err != nil || snap.Swaps["chart"] != raw {
		t.Fatalf("persisted trusted HTML: %+v, %v", snap, err)
	}
}

func TestElementIDs(t *testing.T) {
	e := newEnv(t, nil, nil)
	op, h := e.hold(t, alice)
	defer func() { h.release <- nil; wait(t, op) }()
	for _, id := range []string{"", "1abc", "-a", "_a", "a b", `a"`, "a<b", "a.b", "a:b", "a/b", "é", "a\x00", strings.Repeat("a", 65)} {
		if err := h.p.Swap(id, "row", nil); !errors.Is(err, ops.ErrInvalidElementID) {
			t.Errorf("Swap(%q) = %v, want ErrInvalidElementID", id, err)
		}
		if err := h.p.TrustedHTML(id, "<b>x</b>"); !errors.Is(err, ops.ErrInvalidElementID) {
			t.Errorf("TrustedHTML(%q) = %v, want ErrInvalidElementID", id, err)
		}
	}
	for _, id := range []string{"a", "Z", "chart-1_x", "a" + strings.Repeat("9", 63)} {
		if err := h.p.TrustedHTML(id, "<b>x</b>"); err != nil {
			t.Errorf("TrustedHTML(%q) = %v", id, err)
		}
	}
	if n := len(ofType(e.pub.Messages(op.Channel()), ops.TypeSwap)); n > 4 {
		t.Errorf("%d swaps published, want only the 4 valid ones", n)
	}
}

func TestSwapAndResultErrors(t *testing.T) {
	e := newEnv(t, nil, func(c *ops.Config) {
		c.MaxMessageBytes = ops.MinMessageBytes
		c.Templates = template.Must(template.New("big").Parse(`{{range .}}<p>{{.}}</p>{{end}}`))
		template.Must(c.Templates.New("bad").Parse(`{{.Missing}}`))
	})
	op, h := e.hold(t, alice)
	p := h.p
	if err := p.Swap("x", "nope", nil); !errors.Is(err, ops.ErrUnknownTemplate) {
		t.Errorf("unknown template: %v", err)
	}
	if err := p.Swap("x", "bad", struct{}{}); err == nil || errors.Is(err, ops.ErrUnknownTemplate) {
		t.Errorf("failing template: %v", err)
	}
	big := slices.Repeat([]string{strings.Repeat("x", 100)}, 200) // 20 KB of text
	if err := p.Swap("x", "big", big); !errors.Is(err, ops.ErrTooLarge) {
		t.Errorf("large swap: %v", err)
	}
	if err := p.TrustedHTML("x", template.HTML(strings.Repeat("x", ops.MinMessageBytes))); !errors.Is(err, ops.ErrTooLarge) {
		t.Errorf("large trusted HTML: %v", err)
	}
	if err := p.Result(strings.Repeat(`"`, 5000)); !errors.Is(err, ops.ErrTooLarge) {
		t.Errorf("large result: %v", err) // 5000 quotes: 25000 bytes escaped
	}
	if err := p.Result(func() {}); err == nil {
		t.Error("unmarshallable result accepted")
	}
	for i := range ops.MaxSwapTargets {
		if err := p.TrustedHTML(fmt.Sprint("t", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.TrustedHTML("t0", "again"); err != nil {
		t.Errorf("swapping a known target again: %v", err)
	}
	if err := p.TrustedHTML("one_more", "x"); !errors.Is(err, ops.ErrTooManyTargets) {
		t.Errorf("target %d: %v, want ErrTooManyTargets", ops.MaxSwapTargets+1, err)
	}
	h.release <- nil
	wait(t, op)
	if err := p.Result("late"); !errors.Is(err, ops.ErrFinished) {
		t.Errorf("Result after the end: %v", err)
	}
	if err := p.TrustedHTML("t1", "late"); !errors.Is(err, ops.ErrFinished) {
		t.Errorf("TrustedHTML after the end: %v", err)
	}
	n := len(e.pub.Messages(op.Channel()))
	p.Status("late")
	p.Log("late")
	p.Percent(50)
	p.Error("late")
	if got := len(e.pub.Messages(op.Channel())); got != n {
		t.Errorf("%d messages published after the end", got-n)
	}

	e2 := newEnv(t, nil, func(c *ops.Config) { c.Templates = nil })
	op2, h2 := e2.hold(t, alice)
	if err := h2.p.Swap("x", "row", nil); !errors.Is(err, ops.ErrUnknownTemplate) {
		t.Errorf("Swap without templates: %v", err)
	}
	h2.release <- nil
	wait(t, op2)
}

// TestCoalescing drives percent and status reports with the fake clock.
func TestCoalescing(t *testing.T) {
	e := newEnv(t, nil, nil) // ReportInterval 50 ms
	op, h := e.hold(t, alice)
	p := h.p
	percents := func() []int {
		var out []int
		for _, m := range ofType(e.pub.Messages(op.Channel()), ops.TypePercent) {
			out = append(out, *m.Percent)
		}
		return out
	}
	p.Percent(1) // the first report goes out at once
	for i := 2; i <= 10; i++ {
		p.Percent(i)
	}
	if got := percents(); !slices.Equal(got, []int{1}) {
		t.Fatalf("after a burst: %v, want [1]", got)
	}
	e.clock.Advance(49 * time.Millisecond)
	if got := percents(); !slices.Equal(got, []int{1}) {
		t.Fatalf("49 ms later: %v, want [1]", got)
	}
	e.clock.Advance(time.Millisecond) // the window ends: the latest value goes out
	if got := percents(); !slices.Equal(got, []int{1, 10}) {
		t.Fatalf("50 ms later: %v, want [1 10]", got)
	}
	p.Percent(150) // clamped
	p.Status("a")
	p.Status("b")
	p.Percent(100) // unchanged
	e.clock.Advance(50 * time.Millisecond)
	if got := percents(); !slices.Equal(got, []int{1, 10, 100}) {
		t.Fatalf("clamped: %v, want [1 10 100]", got)
	}
	if st := ofType(e.pub.Messages(op.Channel()), ops.TypeStatus); len(st) != 1 || st[0].Text != "b" {
		t.Fatalf("status messages %+v, want only the latest", st)
	}
	e.clock.Advance(time.Second)
	p.Percent(-7) // clamped to 0, and the window is long over: at once
	if got := percents(); !slices.Equal(got, []int{1, 10, 100, 0}) {
		t.Fatalf("after a quiet second: %v, want [1 10 100 0]", got)
	}
	// 1000 updates over 1 s of fake time publish at most one per 50 ms.
	for i := range 1000 {
		p.Percent(i % 100)
		e.clock.Advance(time.Millisecond)
	}
	if n := len(percents()) - 4; n > 21 || n < 19 {
		t.Fatalf("%d percent messages for 1 s of updates, want about 20", n)
	}
	// A value still pending when the operation ends is published before
	// the final state.
	e.clock.Advance(time.Second)
	p.Percent(42)
	p.Percent(55)
	h.release <- nil
	wait(t, op)
	msgs := e.pub.Messages(op.Channel())
	if got := percents(); got[len(got)-1] != 55 {
		t.Fatalf("last percent %d, want 55", got[len(got)-1])
	}
	if m := msgs[len(msgs)-2]; m.Type != ops.TypePercent {
		t.Fatalf("message before the final state: %+v", m)
	}
	checkSeq(t, op.ID, msgs)
	if snap, _ := e.m.Get(context.Background(), alice, op.ID); snap.Percent != 55 {
		t.Fatalf("persisted percent %d, want 55", snap.Percent)
	}
}

func TestLogBounds(t *testing.T) {
	e := newEnv(t, nil, func(c *ops.Config) { c.LogLines = 5; c.LogRate = 10; c.LogBurst = 3 })
	op, h := e.hold(t, alice)
	p := h.p
	for i := range 10 {
		p.Log(fmt.Sprint("burst ", i))
	}
	logs := func() []string {
		var out []string
		for _, m := range ofType(e.pub.Messages(op.Channel()), ops.TypeLog) {
			out = append(out, m.Text)
		}
		return out
	}
	if got := logs(); !slices.Equal(got, []string{"burst 0", "burst 1", "burst 2"}) {
		t.Fatalf("logs after a burst: %q", got)
	}
	e.clock.Advance(time.Second)
	p.Log(strings.Repeat("é", ops.MaxTextBytes)) // 2 bytes each
	got := logs()
	if len(got) != 5 || got[3] != "… 7 log lines dropped" {
		t.Fatalf("logs: %q", got)
	}
	if long := got[4]; len(long) > ops.MaxTextBytes || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "éé") {
		t.Fatalf("long line: %d bytes, %q…", len(long), long[:10])
	}
	e.clock.Advance(time.Second)
	for i := range 3 {
		p.Log(fmt.Sprint("tail ", i))
	}
	h.release <- nil
	wait(t, op)
	snap, err := e.m.Get(context.Background(), alice, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Logs) != 5 || snap.Logs[4] != "tail 2" || snap.Logs[0] != "… 7 log lines dropped" {
		t.Fatalf("persisted logs %q, want the newest 5", snap.Logs)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, nil, nil)
	startCtx, cancelStart := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	op, err := e.m.Start(startCtx, alice, "hold")
	if err != nil {
		t.Fatal(err)
	}
	h := <-e.holds
	cancelStart() // the request that started it ends: the operation goes on
	if err := h.ctx.Err(); err != nil || h.ctx.Value(ctxKey{}) != "v" {
		t.Fatalf("operation context: err %v, value %v; want live, with the Start context's values", err, h.ctx.Value(ctxKey{}))
	}
	if err := e.m.Cancel(context.Background(), bob, op.ID); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("Cancel by another user = %v, want ErrNotFound", err)
	}
	if err := e.m.Cancel(context.Background(), auth.Identity{User: "alice", Tenant: "other"}, op.ID); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("Cancel by the same name in another tenant = %v, want ErrNotFound", err)
	}
	if h.ctx.Err() != nil {
		t.Fatal("a refused Cancel cancelled the operation")
	}
	if err := e.m.Cancel(context.Background(), alice, op.ID); err != nil {
		t.Fatal(err)
	}
	wait(t, op)
	if !errors.Is(h.ctx.Err(), context.Canceled) {
		t.Fatalf("Func context: %v, want Canceled", h.ctx.Err())
	}
	msgs := e.pub.Messages(op.Channel())
	if last := msgs[len(msgs)-1]; last.State != ops.StateCancelled {
		t.Fatalf("last message %+v, want state cancelled", last)
	}
	if len(ofType(msgs, ops.TypeError)) != 0 {
		t.Fatal("a cancellation published an error")
	}
	snap, err := e.m.Get(context.Background(), alice, op.ID)
	if err != nil || snap.State != ops.StateCancelled {
		t.Fatalf("Get = %+v, %v", snap, err)
	}
	if err := e.m.Cancel(context.Background(), alice, op.ID); !errors.Is(err, ops.ErrNotRunning) {
		t.Fatalf("second Cancel = %v, want ErrNotRunning", err)
	}
	if err := e.m.Cancel(context.Background(), bob, op.ID); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("Cancel of a finished operation by another user = %v, want ErrNotFound", err)
	}
}

type ctxKey struct{}

func TestRestart(t *testing.T) {
	e := newEnv(t, nil, nil)
	op, h := e.hold(t, alice)
	if _, err := e.m.Restart(context.Background(), bob, op.ID); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("Restart by another user = %v, want ErrNotFound", err)
	}
	op2, err := e.m.Restart(context.Background(), alice, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	h2 := <-e.holds // the same kind's Func runs again
	wait(t, op)     // the old one was cancelled
	if op2.ID == op.ID || op2.Kind != "hold" || op2.RestartedFrom != op.ID || op2.Channel() != "op:"+op2.ID {
		t.Fatalf("restarted op %+v", op2)
	}
	if snap, _ := e.m.Get(context.Background(), alice, op.ID); snap.State != ops.StateCancelled {
		t.Fatalf("old operation %s, want cancelled", snap.State)
	}
	if h.ctx.Err() == nil || h2.ctx.Err() != nil {
		t.Fatal("wrong operation cancelled")
	}
	// Restarting a finished operation starts a new one too.
	h2.release <- nil
	wait(t, op2)
	op3, err := e.m.Restart(context.Background(), alice, op2.ID)
	if err != nil {
		t.Fatal(err)
	}
	h3 := <-e.holds
	snap, err := e.m.Get(context.Background(), alice, op3.ID)
	if err != nil || snap.Kind != "hold" || snap.RestartedFrom != op2.ID || snap.State != ops.StateRunning {
		t.Fatalf("Get(restarted) = %+v, %v", snap, err)
	}
	h3.release <- nil
	wait(t, op3)
}

func TestFailures(t *testing.T) {
	e := newEnv(t, nil, nil)
	secret := errors.New("dial tcp 10.0.0.5:5432: password=hunter2")
	for _, tc := range []struct {
		name      string
		fn        ops.Func
		wantError string
	}{
		{"error", func(context.Context, *ops.Progress) error { return secret }, "The operation failed."},
		{"panic", func(context.Context, *ops.Progress) error { panic(secret) }, "The operation failed."},
		{"described", func(_ context.Context, p *ops.Progress) error {
			p.Error("The export could not reach the database.")
			return secret
		}, "The export could not reach the database."},
		{"error reported, success", func(_ context.Context, p *ops.Progress) error {
			p.Error("One file was skipped.")
			return nil
		}, "One file was skipped."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind := strings.NewReplacer(" ", "_", ",", "").Replace(tc.name)
			if err := e.m.Register(kind, tc.fn); err != nil {
				t.Fatal(err)
			}
			op, err := e.m.Start(context.Background(), alice, kind)
			if err != nil {
				t.Fatal(err)
			}
			wait(t, op)
			msgs := e.pub.Messages(op.Channel())
			for _, m := range msgs {
				if strings.Contains(m.Text+m.HTML, "hunter2") {
					t.Fatalf("internal error leaked: %+v", m)
				}
			}
			errs := ofType(msgs, ops.TypeError)
			if len(errs) != 1 || errs[0].Text != tc.wantError {
				t.Fatalf("error messages %+v, want one %q", errs, tc.wantError)
			}
			want := ops.StateFailed
			if tc.name == "error reported, success" {
				want = ops.StateDone
			}
			snap, _ := e.m.Get(context.Background(), alice, op.ID)
			if snap.State != want || snap.Error != tc.wantError {
				t.Fatalf("snapshot %s %q, want %s %q", snap.State, snap.Error, want, tc.wantError)
			}
		})
	}
}

func TestStartAndRegisterErrors(t *testing.T) {
	e := newEnv(t, nil, func(c *ops.Config) { c.MaxRunningPerOwner = 1; c.MaxRunning = 2 })
	noop := func(context.Context, *ops.Progress) error { return nil }
	for _, kind := range []string{"", "Export", "1x", "a-b", "a b", strings.Repeat("a", 65)} {
		if err := e.m.Register(kind, noop); !errors.Is(err, ops.ErrInvalidKind) {
			t.Errorf("Register(%q) = %v, want ErrInvalidKind", kind, err)
		}
	}
	if err := e.m.Register("hold", noop); err == nil {
		t.Error("duplicate Register succeeded")
	}
	if err := e.m.Register("nil_func", nil); err == nil {
		t.Error("Register of a nil Func succeeded")
	}
	if _, err := e.m.Start(context.Background(), alice, "nope"); !errors.Is(err, ops.ErrUnknownKind) {
		t.Errorf("Start(unknown kind) = %v", err)
	}
	if _, err := e.m.Start(context.Background(), auth.Identity{}, "hold"); !errors.Is(err, ops.ErrForbidden) {
		t.Errorf("Start without a user = %v, want ErrForbidden", err)
	}
	op, h := e.hold(t, alice)
	if _, err := e.m.Start(context.Background(), alice, "hold"); !errors.Is(err, ops.ErrTooMany) {
		t.Errorf("second operation of one owner = %v, want ErrTooMany", err)
	}
	if _, err := e.m.Restart(context.Background(), alice, op.ID); !errors.Is(err, ops.ErrTooMany) {
		t.Errorf("Restart at the limit = %v, want ErrTooMany", err)
	}
	if h.ctx.Err() != nil {
		t.Error("a failed Restart cancelled the old operation")
	}
	opB, hB := e.hold(t, bob)
	if _, err := e.m.Start(context.Background(), auth.Identity{User: "carol"}, "hold"); !errors.Is(err, ops.ErrTooMany) {
		t.Errorf("operation past MaxRunning = %v, want ErrTooMany", err)
	}
	h.release <- nil
	hB.release <- nil
	wait(t, op)
	wait(t, opB)
	op2, h2 := e.hold(t, alice) // the slot is free again
	h2.release <- nil
	wait(t, op2)

	if _, err := ops.New(ops.Config{}); err == nil {
		t.Error("New without a Publisher succeeded")
	}
	for _, c := range []ops.Config{
		{Publisher: e.pub, Retention: -1},
		{Publisher: e.pub, LogRate: -1},
		{Publisher: e.pub, MaxMessageBytes: 1000},
	} {
		if _, err := ops.New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

func TestOwnerScoped(t *testing.T) {
	e := newEnv(t, nil, nil)
	op, h := e.hold(t, alice)
	h.release <- nil
	wait(t, op)
	ctx := context.Background()
	if _, err := e.m.Get(ctx, alice, op.ID); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		who auth.Identity
		id  string
	}{
		"other user":   {bob, op.ID},
		"other tenant": {auth.Identity{User: "alice", Tenant: "t2"}, op.ID},
		"anonymous":    {auth.Identity{}, op.ID},
		"unknown":      {alice, "00000000-0000-4000-8000-000000000000"},
		"malformed":    {alice, "../" + op.ID},
		"upper case":   {alice, strings.ToUpper(op.ID)},
	} {
		if _, err := e.m.Get(ctx, tc.who, tc.id); !errors.Is(err, ops.ErrNotFound) {
			t.Errorf("%s: Get = %v, want ErrNotFound", name, err)
		}
	}
	if list, err := e.m.List(ctx, bob); err != nil || len(list) != 0 {
		t.Errorf("List(bob) = %+v, %v", list, err)
	}
	if list, err := e.m.List(ctx, alice); err != nil || len(list) != 1 || list[0].ID != op.ID {
		t.Errorf("List(alice) = %+v, %v", list, err)
	}
}

func TestAuthorizer(t *testing.T) {
	e := newEnv(t, nil, func(c *ops.Config) { c.RequiredGroup = "ops" })
	az := e.m.Authorizer()
	ctx := context.Background()
	running, h := e.hold(t, alice)
	finished, h2 := e.hold(t, alice)
	h2.release <- nil
	wait(t, finished)
	defer func() { h.release <- nil; wait(t, running) }()

	for _, op := range []*ops.Operation{running, finished} {
		if err := az(ctx, alice, op.Channel()); err != nil {
			t.Fatalf("owner refused: %v", err)
		}
	}
	e.events.take()
	for _, tc := range []struct {
		name, reason string
		who          auth.Identity
		channel      string
	}{
		{"other user", "op_not_owner", bob, running.Channel()},
		{"other user, finished", "op_not_owner", bob, finished.Channel()},
		{"other tenant", "op_not_owner", auth.Identity{User: "alice", Tenant: "t2", Groups: []string{"ops"}}, running.Channel()},
		{"non-member", "op_not_member", auth.Identity{User: "alice"}, running.Channel()},
		{"anonymous", "op_anonymous", auth.Identity{Groups: []string{"ops"}}, running.Channel()},
		{"unknown", "op_unknown", alice, "op:00000000-0000-4000-8000-000000000000"},
		{"user-limited", "op_invalid_channel", alice, running.Channel() + "#alice"},
		{"other namespace", "op_invalid_channel", alice, "room:" + running.ID},
		{"not an id", "op_invalid_channel", alice, "op:lobby"},
		{"upper case", "op_invalid_channel", alice, "op:" + strings.ToUpper(running.ID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := az(ctx, tc.who, tc.channel); !errors.Is(err, ops.ErrForbidden) {
				t.Fatalf("err = %v, want ErrForbidden", err)
			}
			ev := e.events.take()
			if len(ev) != 1 || ev[0].Type != audit.TypeChannelDenied || ev[0].Reason != tc.reason ||
				ev[0].User != tc.who.User || ev[0].Detail != tc.channel || ev[0].Severity != audit.SeverityWarning {
				t.Fatalf("audit events %+v, want one %s", ev, tc.reason)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	e := newEnv(t, nil, func(c *ops.Config) { c.Retention = time.Hour })
	ctx := context.Background()
	old, h := e.hold(t, alice)
	h.release <- nil
	wait(t, old)
	e.clock.Advance(30 * time.Minute)
	recent, h := e.hold(t, alice)
	h.release <- nil
	wait(t, recent)
	running, hr := e.hold(t, alice)
	defer func() { hr.release <- nil; wait(t, running) }()

	if n, err := e.m.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want 0", n, err)
	}
	e.clock.Advance(31 * time.Minute) // old finished 61 min ago, recent 31
	if n, err := e.m.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if _, err := e.m.Get(ctx, alice, old.ID); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("swept operation: %v", err)
	}
	e.clock.Advance(10 * time.Hour)
	if n, err := e.m.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if snap, err := e.m.Get(ctx, alice, running.ID); err != nil || snap.State != ops.StateRunning {
		t.Fatalf("running operation after sweeps: %+v, %v", snap, err)
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, nil, nil)
	op1, _ := e.hold(t, alice)
	op2, _ := e.hold(t, bob)
	if err := e.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, op := range []*ops.Operation{op1, op2} {
		select {
		case <-op.Done():
		default:
			t.Fatal("Shutdown returned before the operations ended")
		}
		msgs := e.pub.Messages(op.Channel())
		if last := msgs[len(msgs)-1]; last.State != ops.StateCancelled {
			t.Fatalf("last message %+v, want cancelled", last)
		}
	}
	if _, err := e.m.Start(context.Background(), alice, "hold"); !errors.Is(err, ops.ErrClosed) {
		t.Fatalf("Start after Shutdown = %v, want ErrClosed", err)
	}
	if err := e.m.Register("late", func(context.Context, *ops.Progress) error { return nil }); !errors.Is(err, ops.ErrClosed) {
		t.Fatalf("Register after Shutdown = %v, want ErrClosed", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, nil, nil)
	release := make(chan struct{})
	started := make(chan struct{})
	if err := e.m.Register("stubborn", func(context.Context, *ops.Progress) error {
		close(started)
		<-release // ignores its context
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	op, err := e.m.Start(context.Background(), alice, "stubborn")
	if err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.m.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want the context's error", err)
	}
	close(release)
	wait(t, op)
	if snap, _ := e.m.Get(context.Background(), alice, op.ID); snap.State != ops.StateDone {
		t.Fatalf("state %s, want done (it returned nil)", snap.State)
	}
}

func TestRecover(t *testing.T) {
	path := tempDB(t)
	ctx := context.Background()
	// A previous process left an operation running (its Manager is still
	// up here, but the new one cannot know that).
	old := newEnv(t, sqliteStore(t, path).Operations(), nil)
	orphan, _ := old.hold(t, alice)

	clock := newFakeClock()
	clock.Advance(time.Second) // the new process starts later
	m, err := ops.New(ops.Config{Publisher: &opstest.Recorder{}, Store: sqliteStore(t, path).Operations(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)
	if err := m.Register("wait", func(ctx context.Context, _ *ops.Progress) error { <-ctx.Done(); return ctx.Err() }); err != nil {
		t.Fatal(err)
	}
	mine, err := m.Start(ctx, alice, "wait")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want 1", n, err)
	}
	snap, err := m.Get(ctx, alice, orphan.ID)
	if err != nil || snap.State != ops.StateFailed || !strings.Contains(snap.Error, "interrupted") || snap.FinishedAt.IsZero() {
		t.Fatalf("orphan after Recover: %+v, %v", snap, err)
	}
	if snap, _ := m.Get(ctx, alice, mine.ID); snap.State != ops.StateRunning {
		t.Fatalf("own operation after Recover: %s", snap.State)
	}
}
