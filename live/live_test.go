package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/protocol"
)

func TestRegisterValidates(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, live.Options{})
	ok := counterView()
	tests := []struct {
		name string
		v    live.View
	}{
		{"bad name", live.View{Name: "Counter", Template: counterTmpl}},
		{"empty name", live.View{Template: counterTmpl}},
		{"no template", live.View{Name: "x"}},
		{"bad event name", live.View{Name: "x", Template: counterTmpl, Events: map[string]*live.Handler{"__proto__": ok.Events["inc"]}}},
		{"nil handler", live.View{Name: "x", Template: counterTmpl, Events: map[string]*live.Handler{"a": nil}}},
		{"bad rate", live.View{Name: "x", Template: counterTmpl, Events: map[string]*live.Handler{
			"a": live.Event(func(context.Context, *live.Socket, struct{}) error { return nil }, live.RateLimit(1, 0))}}},
	}
	for _, tt := range tests {
		if err := reg.Register(tt.v); err == nil {
			t.Errorf("%s: Register succeeded", tt.name)
		}
	}
	if err := reg.Register(ok); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ok); !errors.Is(err, live.ErrDuplicateView) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := live.NewRegistry([]byte("short"), live.Options{}); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestRenderFirstPage(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, live.Options{}, counterView())
	var buf bytes.Buffer
	err := reg.Render(context.Background(), &buf, "counter", "alice", live.Session{"name": `<script>alert(1)</script>`}, json.RawMessage(`{"room":"a\"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, `<div data-lg-view="counter" data-lg-session="lv1.`) || !strings.HasSuffix(out, `</section></div>`) {
		t.Fatalf("wrapper: %s", out)
	}
	if strings.Contains(out, "<script>") || !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("session value not escaped: %s", out)
	}
	if !strings.Contains(out, `data-lg-params="{&#34;room&#34;:&#34;a\&#34;b&#34;}"`) {
		t.Fatalf("params attribute: %s", out)
	}
	if err := reg.Render(context.Background(), &buf, "nope", "alice", nil, nil); !errors.Is(err, live.ErrUnknownView) {
		t.Fatalf("unknown view: %v", err)
	}
	if err := reg.Render(context.Background(), &buf, "counter", "alice", nil, json.RawMessage(`[1]`)); !errors.Is(err, live.ErrBadParams) {
		t.Fatalf("array params: %v", err)
	}
}

func TestSessionToken(t *testing.T) {
	t.Parallel()
	clk := newClock()
	other := counterView()
	other.Name = "other"
	reg := newRegistry(t, live.Options{Now: clk.Now, SessionTTL: time.Minute}, counterView(), other)
	tok, err := reg.SignSession("counter", "alice", live.Session{"name": "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := live.NewRegistry([]byte("another key, also at least 32 bytes long"), live.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := otherKey.SignSession("counter", "alice", nil)
	body, sig, _ := strings.Cut(tok[len("lv1."):], ".")

	// A token whose payload says another user, with the original MAC.
	forgedPayload := "lv1." + b64(`{"v":"counter","sub":"mallory","exp":9999999999}`) + "." + sig

	tests := []struct {
		name, view, user, token, reason string
	}{
		{"other user", "counter", "bob", tok, live.ReasonOtherUser},
		{"other view", "other", "alice", tok, live.ReasonOtherView},
		{"tampered signature", "counter", "alice", tok[:len(tok)-2] + "AA", live.ReasonSignature},
		{"tampered payload", "counter", "mallory", forgedPayload, live.ReasonSignature},
		{"other key", "counter", "alice", foreign, live.ReasonSignature},
		{"no signature", "counter", "alice", "lv1." + body, live.ReasonMalformed},
		{"empty signature", "counter", "alice", "lv1." + body + ".", live.ReasonSignature},
		{"empty", "counter", "alice", "", live.ReasonMalformed},
		{"wrong prefix", "counter", "alice", "lv2." + body + "." + sig, live.ReasonMalformed},
		{"huge", "counter", "alice", "lv1." + strings.Repeat("a", live.MaxSessionToken), live.ReasonMalformed},
	}
	for _, tt := range tests {
		_, _, err := reg.Join(context.Background(), tt.user, tt.view, tt.token, nil)
		var se *live.SessionError
		if !errors.Is(err, live.ErrSession) || !errors.As(err, &se) || se.Reason != tt.reason {
			t.Errorf("%s: err = %v, want reason %s", tt.name, err, tt.reason)
		}
	}

	inst, html, err := reg.Join(context.Background(), "alice", "counter", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	inst.Close()
	if !strings.Contains(html, "Hello Alice") {
		t.Fatalf("session data not mounted: %s", html)
	}
	clk.Advance(time.Minute)
	_, _, err = reg.Join(context.Background(), "alice", "counter", tok, nil)
	var se *live.SessionError
	if !errors.As(err, &se) || se.Reason != live.ReasonExpired {
		t.Fatalf("expired: %v", err)
	}
}

func TestEventPatches(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, live.Options{}, counterView())
	inst, html := join(t, reg, "alice", "counter", live.Session{"name": "Alice"})
	tr := &tracker{t: t, html: html, version: 1}
	ctx := context.Background()
	for i := range 20 {
		res, err := inst.Event(ctx, subject("alice"), "say", json.RawMessage(fmt.Sprintf(`{"text":"message number %d, a line of a typical chat"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		tr.apply(res.Patch)
		if n := len(res.Patch.Insert); n > 64 {
			t.Fatalf("appending a line sent %d bytes: %+v", n, res.Patch)
		}
	}
	for i := 1; i <= 12; i++ {
		res, err := inst.Event(ctx, subject("alice"), "inc", json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if res.Patch == nil || res.Version != uint64(21+i) {
			t.Fatalf("event %d: %+v", i, res)
		}
		tr.apply(res.Patch)
		wire, full := len(protocol.AppendViewResult(nil, res)), len(inst.HTML())
		if wire*8 > full {
			t.Fatalf("patch of %d bytes for %d bytes of HTML: %+v", wire, full, res.Patch)
		}
	}
	if tr.html != inst.HTML() || !strings.Contains(tr.html, "<b>12</b>") {
		t.Fatalf("client HTML %q, server %q", tr.html, inst.HTML())
	}
	// An event that changes nothing sends no patch and keeps the version.
	res, err := inst.Event(ctx, subject("alice"), "inc", json.RawMessage(`{"by":0}`))
	if err != nil || res.Patch == nil {
		t.Fatalf("inc: %+v %v", res, err)
	}
	tr.apply(res.Patch)
	reset := newRegistry(t, live.Options{}, live.View{Name: "still", Template: counterTmpl,
		Events: map[string]*live.Handler{"noop": live.Event(func(context.Context, *live.Socket, struct{}) error { return nil })}})
	si, _ := join(t, reset, "alice", "still", nil)
	res, err = si.Event(ctx, subject("alice"), "noop", nil)
	if err != nil || res.Patch != nil || res.Version != 1 {
		t.Fatalf("no-change event: %+v %v", res, err)
	}
}

func TestEventRefusals(t *testing.T) {
	t.Parallel()
	clk := newClock()
	reg := newRegistry(t, live.Options{Now: clk.Now}, counterView())
	inst, html := join(t, reg, "alice", "counter", nil)
	ctx := context.Background()
	tests := []struct {
		name    string
		subject string
		groups  []string
		event   string
		payload string
		want    error
	}{
		{"unknown", "alice", nil, "drop_tables", `{}`, live.ErrUnknownEvent},
		{"malformed name", "alice", nil, "Inc", `{}`, live.ErrUnknownEvent},
		{"proto name", "alice", nil, "__proto__", `{}`, live.ErrUnknownEvent},
		{"guarded", "alice", nil, "reset", `{}`, live.ErrForbidden},
		{"other user", "bob", nil, "inc", `{}`, live.ErrForbidden},
		{"unknown field", "alice", nil, "inc", `{"by":1,"admin":true}`, live.ErrBadPayload},
		{"proto key", "alice", nil, "inc", `{"__proto__":{"count":99}}`, live.ErrBadPayload},
		{"constructor key", "alice", nil, "inc", `{"constructor":{"prototype":{"x":1}}}`, live.ErrBadPayload},
		{"unexported field", "alice", nil, "inc", `{"secret":5}`, live.ErrBadPayload},
		{"assign key", "alice", nil, "inc", `{"count":1000}`, live.ErrBadPayload},
		{"wrong type", "alice", nil, "inc", `{"by":"1"}`, live.ErrBadPayload},
		{"validation", "alice", nil, "inc", `{"by":1000}`, live.ErrBadPayload},
		{"trailing", "alice", nil, "inc", `{} {}`, live.ErrBadPayload},
	}
	for _, tt := range tests {
		_, err := inst.Event(ctx, subject(tt.subject, tt.groups...), tt.event, json.RawMessage(tt.payload))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if inst.HTML() != html || inst.Version() != 1 {
		t.Fatalf("refused events changed the view: %s", inst.HTML())
	}
	// Handler errors and panics restore the assigns.
	if _, err := inst.Event(ctx, subject("alice"), "fail", nil); err == nil || errors.Is(err, live.ErrBadPayload) {
		t.Fatalf("fail: %v", err)
	}
	var pe *live.PanicError
	if _, err := inst.Event(ctx, subject("alice"), "panic", nil); !errors.As(err, &pe) {
		t.Fatalf("panic: %v", err)
	}
	res, err := inst.Event(ctx, subject("alice"), "inc", nil)
	if err != nil || !strings.Contains(inst.HTML(), "<b>1</b>") || res.Version != 2 {
		t.Fatalf("assigns not restored: %v %s", err, inst.HTML())
	}
	// The guard lets an admin through.
	if _, err := inst.Event(ctx, subject("alice", "admin"), "reset", nil); err != nil {
		t.Fatalf("admin reset: %v", err)
	}
	// Rate limit: burst 2, then refused until the fake clock moves.
	for i := range 2 {
		if _, err := inst.Event(ctx, subject("alice"), "slow", nil); err != nil {
			t.Fatalf("slow %d: %v", i, err)
		}
	}
	if _, err := inst.Event(ctx, subject("alice"), "slow", nil); !errors.Is(err, live.ErrRateLimited) {
		t.Fatalf("rate limit: %v", err)
	}
	clk.Advance(time.Second)
	if _, err := inst.Event(ctx, subject("alice"), "slow", nil); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

func TestEscaping(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, live.Options{}, counterView())
	inst, _ := join(t, reg, "alice", "counter", live.Session{"name": `<img src=x onerror=alert(1)>`})
	if h := inst.HTML(); strings.Contains(h, "<img") {
		t.Fatalf("session value unescaped: %s", h)
	}
	res, err := inst.Event(context.Background(), subject("alice"), "say", json.RawMessage(`{"text":"<script>alert(1)</script>"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Patch == nil || strings.Contains(res.Patch.Insert, "<script>") ||
		!strings.Contains(res.Patch.Insert, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("patch not escaped: %+v", res.Patch)
	}
	if strings.Contains(inst.HTML(), "<script>") {
		t.Fatal("HTML not escaped")
	}
}

// TestTrustedHTML shows the escape hatch: a template.HTML assign is
// inserted as it is.
func TestTrustedHTML(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, live.Options{}, live.View{
		Name:     "trusted",
		Template: template.Must(template.New("t").Parse(`<div>{{.body}}</div>`)),
		Mount: func(_ context.Context, s *live.Socket, _ live.Session, _ json.RawMessage) error {
			s.Assign("body", template.HTML(`<em>ours</em>`))
			return nil
		},
	})
	_, html := join(t, reg, "alice", "trusted", nil)
	if html != `<div><em>ours</em></div>` {
		t.Fatalf("got %s", html)
	}
}

func TestStateLimit(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, live.Options{MaxStateBytes: 2048}, counterView())
	inst, _ := join(t, reg, "alice", "counter", nil)
	ctx := context.Background()
	line := `{"text":"` + strings.Repeat("x", 200) + `"}`
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		_, err = inst.Event(ctx, subject("alice"), "say", json.RawMessage(line))
	}
	if !errors.Is(err, live.ErrStateTooLarge) {
		t.Fatalf("got %v, want ErrStateTooLarge", err)
	}
	select {
	case <-inst.Done():
	default:
		t.Fatal("instance not closed")
	}
	if _, err := inst.Event(ctx, subject("alice"), "inc", nil); !errors.Is(err, live.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if err := inst.Update(func(*live.Socket) {}); !errors.Is(err, live.ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
	// A render that is far too large stops early, and a first render over
	// HTTP fails the same way.
	huge := live.View{Name: "huge", Template: template.Must(template.New("h").Parse(`{{range .n}}<p>row</p>{{end}}`)),
		Mount: func(_ context.Context, s *live.Socket, _ live.Session, _ json.RawMessage) error {
			s.Assign("n", make([]struct{}, 1_000_000))
			return nil
		}}
	if err := reg.Register(huge); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := reg.Render(ctx, &buf, "huge", "alice", nil, nil); !errors.Is(err, live.ErrStateTooLarge) || buf.Len() != 0 {
		t.Fatalf("render: %v (%d bytes written)", err, buf.Len())
	}
	tok, _ := reg.SignSession("huge", "alice", nil)
	if _, _, err := reg.Join(ctx, "alice", "huge", tok, nil); !errors.Is(err, live.ErrStateTooLarge) {
		t.Fatalf("join: %v", err)
	}
}

func TestUpdatePushesPatches(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, live.Options{MaxStateBytes: 4096}, counterView())
	var mu sync.Mutex
	var patches []protocol.Patch
	var closedErr error
	inst, html := join(t, reg, "alice", "counter", nil,
		live.WithPatch(func(p protocol.Patch) {
			mu.Lock()
			patches = append(patches, p)
			mu.Unlock()
		}),
		live.WithClosed(func(ref string, err error) { closedErr = err }))
	tr := &tracker{t: t, html: html, version: 1}
	if err := inst.Update(func(s *live.Socket) { s.Assign("count", 41) }); err != nil {
		t.Fatal(err)
	}
	res, err := inst.Event(context.Background(), subject("alice"), "inc", nil)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(patches) != 1 || !strings.Contains(patches[0].Insert, "41") {
		t.Fatalf("patches %+v", patches)
	}
	tr.apply(&patches[0])
	mu.Unlock()
	tr.apply(res.Patch)
	if !strings.Contains(tr.html, "<b>42</b>") || tr.html != inst.HTML() {
		t.Fatalf("client %s", tr.html)
	}
	// An update that outgrows the state limit closes the instance and is
	// reported to WithClosed.
	_ = inst.Update(func(s *live.Socket) { s.Assign("log", []string{strings.Repeat("y", 5000)}) })
	if !errors.Is(closedErr, live.ErrStateTooLarge) {
		t.Fatalf("closed with %v", closedErr)
	}
}

// TestUpdateFromHandlers: views that update each other from their handlers
// (a chat room) neither deadlock nor lose or reorder patches.
func TestUpdateFromHandlers(t *testing.T) {
	t.Parallel()
	type member struct {
		inst *live.Instance
		mu   sync.Mutex
		tr   *tracker
	}
	var roomMu sync.Mutex
	var room []*live.Instance
	broadcast := func(text string) {
		roomMu.Lock()
		insts := append([]*live.Instance(nil), room...)
		roomMu.Unlock()
		for _, in := range insts {
			_ = in.Update(func(s *live.Socket) { s.Assign("log", append(s.Get("log").([]string), text)) })
		}
	}
	v := live.View{
		Name:     "chat",
		Template: counterTmpl,
		Mount: func(ctx context.Context, s *live.Socket, _ live.Session, _ json.RawMessage) error {
			s.Assign("log", []string{})
			if in := s.Instance(); in != nil {
				roomMu.Lock()
				room = append(room, in)
				roomMu.Unlock()
			}
			return nil
		},
		Events: map[string]*live.Handler{"say": live.Event(func(ctx context.Context, s *live.Socket, p sayPayload) error {
			broadcast(s.User() + ": " + p.Text) // includes this very instance
			return nil
		})},
	}
	reg := newRegistry(t, live.Options{MaxStateBytes: 1 << 20}, v)
	const users, msgs = 4, 50
	members := make([]*member, users)
	for u := range users {
		m := &member{}
		var html string
		m.inst, html = join(t, reg, fmt.Sprint("u", u), "chat", nil, live.WithPatch(func(p protocol.Patch) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.tr.apply(&p)
		}))
		m.tr = &tracker{t: t, html: html, version: 1}
		members[u] = m
	}
	var wg sync.WaitGroup
	for u, m := range members {
		wg.Go(func() {
			for i := range msgs {
				res, err := m.inst.Event(context.Background(), subject(fmt.Sprint("u", u)), "say",
					json.RawMessage(fmt.Sprintf(`{"text":"m%d"}`, i)))
				if err != nil {
					t.Error(err)
					return
				}
				if res.Patch != nil {
					t.Error("say changed nothing itself; the update should be pushed")
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock")
	}
	for u, m := range members {
		m.mu.Lock()
		if got := strings.Count(m.tr.html, "<li>"); got != users*msgs || m.tr.html != m.inst.HTML() {
			t.Errorf("member %d: %d lines, in sync %v", u, got, m.tr.html == m.inst.HTML())
		}
		m.mu.Unlock()
	}
}

func TestJoinContextClosesInstance(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, live.Options{}, counterView())
	tok, _ := reg.SignSession("counter", "alice", nil)
	ctx, cancel := context.WithCancel(context.Background())
	inst, _, err := reg.Join(ctx, "alice", "counter", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-inst.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("instance outlived its context")
	}
	waitClosed := func() bool {
		_, err := inst.Event(context.Background(), subject("alice"), "inc", nil)
		return errors.Is(err, live.ErrClosed)
	}
	for deadline := time.Now().Add(5 * time.Second); !waitClosed(); {
		if time.Now().After(deadline) {
			t.Fatal("instance not closed")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSocketSessionIsACopy(t *testing.T) {
	t.Parallel()
	var got live.Session
	reg := newRegistry(t, live.Options{}, live.View{Name: "s", Template: counterTmpl,
		Mount: func(_ context.Context, s *live.Socket, session live.Session, _ json.RawMessage) error {
			session["role"] = "admin" // changes only the copy
			got = s.Session()
			return nil
		}})
	join(t, reg, "alice", "s", live.Session{"role": "user"})
	if got["role"] != "user" {
		t.Fatalf("session changed through Mount's copy: %v", got)
	}
}
