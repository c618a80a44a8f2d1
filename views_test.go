package livegate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

type viewInc struct {
	By int `json:"by"`
}

func (p viewInc) Validate() error {
	if p.By < 0 || p.By > 100 {
		return errors.New("by out of range")
	}
	return nil
}

type viewSay struct {
	Text string `json:"text"`
}

var viewTmpl = template.Must(template.New("room").Parse(`<section class="room"><h2>{{.name}}</h2>` +
	`<p>Count: <b>{{.count}}</b></p><button lg-click="inc">+1</button>` +
	`<ol>{{range .log}}<li>{{.}}</li>{{end}}</ol>` +
	`<form lg-submit="say"><input name="text"><button>Send</button></form></section>`))

// viewEnv is a gateway serving live views, with a CSRF cookie and token
// as a page would have them.
type viewEnv struct {
	*env
	reg    *live.Registry
	csrf   string
	cookie *http.Cookie

	mu    sync.Mutex
	insts map[string][]*live.Instance // by user, from Mount
}

func newViewEnv(t *testing.T, opts live.Options) *viewEnv {
	t.Helper()
	reg, err := live.NewRegistry(testSecret, opts)
	if err != nil {
		t.Fatal(err)
	}
	ve := &viewEnv{reg: reg, insts: make(map[string][]*live.Instance)}
	room := live.View{
		Name:     "room",
		Template: viewTmpl,
		Mount: func(ctx context.Context, s *live.Socket, session live.Session, params json.RawMessage) error {
			s.Assign("name", session["name"])
			s.Assign("count", 0)
			s.Assign("log", []string{})
			if in := s.Instance(); in != nil {
				ve.mu.Lock()
				ve.insts[s.User()] = append(ve.insts[s.User()], in)
				ve.mu.Unlock()
			}
			return nil
		},
		Events: map[string]*live.Handler{
			"inc": live.Event(func(_ context.Context, s *live.Socket, p viewInc) error {
				by := p.By
				if by == 0 {
					by = 1
				}
				s.Assign("count", s.Get("count").(int)+by)
				return nil
			}),
			"say": live.Event(func(_ context.Context, s *live.Socket, p viewSay) error {
				s.Assign("log", append(s.Get("log").([]string), p.Text))
				return nil
			}),
			"wipe": live.Event(func(_ context.Context, s *live.Socket, _ struct{}) error {
				s.Assign("log", []string{})
				return nil
			}, live.Require(policy.Access{Groups: []string{"admin"}})),
			"poke": live.Event(func(_ context.Context, s *live.Socket, _ struct{}) error {
				return nil
			}, live.RateLimit(0.001, 1)),
		},
	}
	other := room
	other.Name = "other"
	for _, v := range []live.View{room, other} {
		if err := reg.Register(v); err != nil {
			t.Fatal(err)
		}
	}
	ve.env = newEnv(t, func(c *livegate.Config) {
		c.Views = reg
		// These tests send bursts of commands; the command limit has tests
		// of its own.
		c.CommandRate, c.CommandBurst = 10000, 1000
	})
	rec := httptest.NewRecorder()
	ve.csrf, err = ve.gw.CSRFToken(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	ve.cookie = rec.Result().Cookies()[0]
	return ve
}

// dialPage opens a connection as a page would: with the CSRF cookie.
func (ve *viewEnv) dialPage(t *testing.T, user string, withCookie bool) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hdr := http.Header{}
	if withCookie {
		hdr.Set("Cookie", ve.cookie.Name+"="+ve.cookie.Value)
	}
	ws, _, err := websocket.Dial(ctx, ve.url, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}, HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	c := &rawConn{t: t, ws: ws}
	c.send(`{"id":1,"method":"connect","params":{"token":"` + ve.token(t, user) + `"}}`)
	if r := c.reply(1); r.Error != nil {
		t.Fatalf("connect: %+v", r.Error)
	}
	return c
}

func (ve *viewEnv) session(t *testing.T, view, user string, s live.Session) string {
	t.Helper()
	tok, err := ve.reg.SignSession(view, user, s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (ve *viewEnv) instance(t *testing.T, user string) *live.Instance {
	t.Helper()
	ve.mu.Lock()
	defer ve.mu.Unlock()
	l := ve.insts[user]
	if len(l) == 0 {
		t.Fatalf("no instance for %s", user)
	}
	return l[len(l)-1]
}

// page is a client-side live view: the HTML it holds and its version.
type page struct {
	ref     string
	html    string
	version uint64
}

func (p *page) apply(t *testing.T, pt *protocol.Patch) {
	t.Helper()
	if pt == nil {
		return
	}
	if pt.Ref != p.ref || pt.Version != p.version+1 {
		t.Fatalf("patch %+v for page %s at version %d", pt, p.ref, p.version)
	}
	h, err := live.Apply(p.html, *pt)
	if err != nil {
		t.Fatal(err)
	}
	p.html, p.version = h, pt.Version
}

func (c *rawConn) join(id uint64, params protocol.JoinParams) protocol.ServerFrame {
	c.t.Helper()
	c.sendCmd(id, protocol.MethodJoin, params)
	return c.reply(id)
}

func (c *rawConn) joinOK(id uint64, params protocol.JoinParams) *page {
	c.t.Helper()
	r := c.join(id, params)
	if r.Error != nil {
		c.t.Fatalf("join: %+v", r.Error)
	}
	var res protocol.JoinResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		c.t.Fatal(err)
	}
	if res.Ref == "" || res.Version != 1 {
		c.t.Fatalf("join result %+v", res)
	}
	return &page{ref: res.Ref, html: res.HTML, version: res.Version}
}

// viewEvent sends a view event and returns the raw reply.
func (c *rawConn) viewEvent(id uint64, ref, name, payload, csrf string) string {
	c.t.Helper()
	p := protocol.ViewParams{Ref: ref, Name: name, CSRF: csrf}
	if payload != "" {
		p.Payload = json.RawMessage(payload)
	}
	c.sendCmd(id, protocol.MethodView, p)
	return c.rawReply()
}

func viewResult(t *testing.T, raw string) (protocol.ViewResult, int) {
	t.Helper()
	var f protocol.ServerFrame
	if err := json.Unmarshal([]byte(raw), &f); err != nil || f.Error != nil || f.Result == nil {
		t.Fatalf("view reply %s", raw)
	}
	var res protocol.ViewResult
	if err := json.Unmarshal(f.Result, &res); err != nil {
		t.Fatal(err)
	}
	return res, len(raw)
}

func errorFrame(id uint64, code string) string {
	return string(protocol.AppendErrorReply(nil, id, protocol.NewError(code)))
}

func TestViewJoinAndEvents(t *testing.T) {
	t.Parallel()
	ve := newViewEnv(t, live.Options{})
	c := ve.dialPage(t, "alice", true)
	pg := c.joinOK(2, protocol.JoinParams{View: "room", Session: ve.session(t, "room", "alice", live.Session{"name": "Alice's room"}), CSRF: ve.csrf})
	if !strings.Contains(pg.html, "<h2>Alice&#39;s room</h2>") || !strings.Contains(pg.html, "<b>0</b>") {
		t.Fatalf("join html: %s", pg.html)
	}
	id := uint64(3)
	for i := range 20 {
		res, _ := viewResult(t, c.viewEvent(id, pg.ref, "say", fmt.Sprintf(`{"text":"line %d of the chat log"}`, i), ve.csrf))
		pg.apply(t, res.Patch)
		id++
	}
	for i := 1; i <= 10; i++ {
		res, wire := viewResult(t, c.viewEvent(id, pg.ref, "inc", `{}`, ve.csrf))
		id++
		if res.Patch == nil || res.Version != pg.version+1 {
			t.Fatalf("inc %d: %+v", i, res)
		}
		pg.apply(t, res.Patch)
		full := len(protocol.AppendReply(nil, id, protocol.AppendJoinResult(nil, protocol.JoinResult{Ref: pg.ref, Version: res.Version, HTML: pg.html})))
		if wire*5 > full {
			t.Fatalf("patch frame of %d bytes vs %d for the full HTML", wire, full)
		}
		if !strings.Contains(pg.html, fmt.Sprintf("<b>%d</b>", i)) {
			t.Fatalf("after inc %d: %s", i, pg.html)
		}
	}
	if pg.html != ve.instance(t, "alice").HTML() {
		t.Fatal("client and server HTML differ")
	}
	// An event that changes nothing: no patch, same version.
	res, _ := viewResult(t, c.viewEvent(id, pg.ref, "inc", `{"by":0}`, ve.csrf))
	pg.apply(t, res.Patch)
	// Leave, then the ref is gone.
	c.sendCmd(50, protocol.MethodLeave, protocol.LeaveParams{Ref: pg.ref})
	if r := c.reply(50); r.Error != nil || string(r.Result) != "{}" {
		t.Fatalf("leave: %+v", r)
	}
	if got := c.viewEvent(51, pg.ref, "inc", `{}`, ve.csrf); got != errorFrame(51, protocol.CodeBadRequest) {
		t.Fatalf("event after leave: %s", got)
	}
	select {
	case <-ve.instance(t, "alice").Done():
	case <-time.After(5 * time.Second):
		t.Fatal("leave did not close the instance")
	}
}

func TestViewJoinRefused(t *testing.T) {
	t.Parallel()
	ve := newViewEnv(t, live.Options{})
	good := ve.session(t, "room", "alice", nil)
	rec := httptest.NewRecorder()
	otherCSRF, _ := ve.gw.CSRFToken(rec, httptest.NewRequest(http.MethodGet, "/", nil)) // valid, another browser's
	tests := []struct {
		name       string
		cookie     bool
		params     protocol.JoinParams
		code       string
		event      string
		reason     string
		allowEmpty bool
	}{
		{"no csrf", true, protocol.JoinParams{View: "room", Session: good}, protocol.CodeForbidden, audit.TypeCSRFRejected, "join_no_token", false},
		{"forged csrf", true, protocol.JoinParams{View: "room", Session: good, CSRF: "AAAA.BBBB"}, protocol.CodeForbidden, audit.TypeCSRFRejected, "join_bad_token", false},
		{"tampered csrf", true, protocol.JoinParams{View: "room", Session: good, CSRF: ve.csrf[:len(ve.csrf)-1] + "x"}, protocol.CodeForbidden, audit.TypeCSRFRejected, "join_bad_token", false},
		{"another browser's csrf", true, protocol.JoinParams{View: "room", Session: good, CSRF: otherCSRF}, protocol.CodeForbidden, audit.TypeCSRFRejected, "join_bad_token", false},
		{"csrf without cookie", false, protocol.JoinParams{View: "room", Session: good, CSRF: ve.csrf}, protocol.CodeForbidden, audit.TypeCSRFRejected, "join_no_token", false},
		{"another user's session", true, protocol.JoinParams{View: "room", Session: ve.session(t, "room", "bob", nil), CSRF: ve.csrf}, protocol.CodeForbidden, audit.TypeViewDenied, "session_other_user", false},
		{"tampered session", true, protocol.JoinParams{View: "room", Session: good[:len(good)-3] + "abc", CSRF: ve.csrf}, protocol.CodeForbidden, audit.TypeViewDenied, "session_signature", false},
		{"another view's session", true, protocol.JoinParams{View: "room", Session: ve.session(t, "other", "alice", nil), CSRF: ve.csrf}, protocol.CodeForbidden, audit.TypeViewDenied, "session_other_view", false},
		{"no session", true, protocol.JoinParams{View: "room", CSRF: ve.csrf}, protocol.CodeForbidden, audit.TypeViewDenied, "session_malformed", false},
		{"unknown view", true, protocol.JoinParams{View: "admin", Session: ve.session(t, "admin", "alice", nil), CSRF: ve.csrf}, protocol.CodeForbidden, audit.TypeViewDenied, "unknown_view", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ve.dialPage(t, "alice", tt.cookie)
			id := uint64(10 + i)
			c.sendCmd(id, protocol.MethodJoin, tt.params)
			if got := c.rawReply(); got != errorFrame(id, tt.code) {
				t.Fatalf("got %s, want %s", got, errorFrame(id, tt.code))
			}
			if !ve.events.has(tt.event, tt.reason) {
				t.Fatalf("no %s/%s security event", tt.event, tt.reason)
			}
		})
	}
	// The same session token and CSRF token work for alice.
	c := ve.dialPage(t, "alice", true)
	c.joinOK(99, protocol.JoinParams{View: "room", Session: good, CSRF: ve.csrf})
}

func TestViewEventRefusals(t *testing.T) {
	t.Parallel()
	ve := newViewEnv(t, live.Options{})
	c := ve.dialPage(t, "alice", true)
	pg := c.joinOK(2, protocol.JoinParams{View: "room", Session: ve.session(t, "room", "alice", nil), CSRF: ve.csrf})

	// Unknown, malformed and guarded view events answer exactly what an
	// unknown gateway event does.
	c.sendCmd(3, protocol.MethodEvent, protocol.EventParams{Name: "drop_tables", Payload: json.RawMessage(`{}`)})
	unknownGateway := c.rawReply()
	if unknownGateway != errorFrame(3, protocol.CodeNotAvailable) {
		t.Fatalf("gateway unknown: %s", unknownGateway)
	}
	for _, name := range []string{"drop_tables", "wipe", "Inc", "__proto__", strings.Repeat("a", 65)} {
		if got := c.viewEvent(3, pg.ref, name, `{}`, ve.csrf); got != unknownGateway {
			t.Fatalf("view event %q: %s, want %s", name, got, unknownGateway)
		}
	}
	if !ve.events.has(audit.TypeViewDenied, "forbidden_event") || !ve.events.has(audit.TypeViewDenied, "unknown_event") {
		t.Fatal("missing view_denied events")
	}

	// Without a valid CSRF token an event is refused, not run.
	for i, tok := range []string{"", "AAAA.BBBB", ve.csrf + "x"} {
		id := uint64(20 + i)
		if got := c.viewEvent(id, pg.ref, "inc", `{}`, tok); got != errorFrame(id, protocol.CodeForbidden) {
			t.Fatalf("csrf %q: %s", tok, got)
		}
	}
	if !ve.events.has(audit.TypeCSRFRejected, "view_no_token") || !ve.events.has(audit.TypeCSRFRejected, "view_bad_token") {
		t.Fatal("missing csrf events")
	}

	// Payloads with keys the handler's type does not declare are refused
	// and change nothing: no path from a payload to the assigns.
	for i, payload := range []string{
		`{"by":1,"admin":true}`, `{"__proto__":{"count":1000}}`, `{"constructor":{"prototype":{"count":1}}}`,
		`{"count":1000}`, `{"by":"1"}`, `{"by":1000}`,
	} {
		id := uint64(30 + i)
		if got := c.viewEvent(id, pg.ref, "inc", payload, ve.csrf); got != errorFrame(id, protocol.CodeBadRequest) {
			t.Fatalf("payload %s: %s", payload, got)
		}
	}
	if inst := ve.instance(t, "alice"); inst.Version() != 1 || inst.HTML() != pg.html {
		t.Fatal("refused events changed the view")
	}
	res, _ := viewResult(t, c.viewEvent(40, pg.ref, "inc", `{}`, ve.csrf))
	pg.apply(t, res.Patch)
	if !strings.Contains(pg.html, "<b>1</b>") {
		t.Fatalf("count after refused payloads: %s", pg.html)
	}

	// Unknown ref.
	if got := c.viewEvent(41, "v999", "inc", `{}`, ve.csrf); got != errorFrame(41, protocol.CodeBadRequest) {
		t.Fatalf("unknown ref: %s", got)
	}
	// Per-event rate limit: burst 1, then rate_limited (a warning).
	viewResult(t, c.viewEvent(42, pg.ref, "poke", `{}`, ve.csrf))
	if got := c.viewEvent(43, pg.ref, "poke", `{}`, ve.csrf); got != errorFrame(43, protocol.CodeRateLimited) {
		t.Fatalf("rate limit: %s", got)
	}
	// A parameter view does not take closes 4400.
	c.send(`{"id":44,"method":"view","params":{"ref":"` + pg.ref + `","name":"inc","csrf":"x","session":"s"}}`)
	c.expectClose(protocol.CloseMalformed)
}

func TestViewEscaping(t *testing.T) {
	t.Parallel()
	ve := newViewEnv(t, live.Options{})
	c := ve.dialPage(t, "alice", true)
	pg := c.joinOK(2, protocol.JoinParams{View: "room", Session: ve.session(t, "room", "alice", live.Session{"name": `<img src=x onerror=alert(1)>`}), CSRF: ve.csrf})
	if strings.Contains(pg.html, "<img") || !strings.Contains(pg.html, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Fatalf("join html not escaped: %s", pg.html)
	}
	raw := c.viewEvent(3, pg.ref, "say", `{"text":"<script>alert(document.cookie)</script>"}`, ve.csrf)
	res, _ := viewResult(t, raw)
	if res.Patch == nil || strings.Contains(res.Patch.Insert, "<script") ||
		!strings.Contains(res.Patch.Insert, "&lt;script&gt;alert(document.cookie)&lt;/script&gt;") {
		t.Fatalf("patch not escaped: %s", raw)
	}
	pg.apply(t, res.Patch)
	if strings.Contains(pg.html, "<script") {
		t.Fatal("HTML not escaped")
	}
}

func TestViewStateLimit(t *testing.T) {
	t.Parallel()
	ve := newViewEnv(t, live.Options{MaxStateBytes: 4096})
	c := ve.dialPage(t, "alice", true)
	pg := c.joinOK(2, protocol.JoinParams{View: "room", Session: ve.session(t, "room", "alice", nil), CSRF: ve.csrf})
	line := `{"text":"` + strings.Repeat("z", 300) + `"}`
	id := uint64(3)
	for ; ; id++ {
		raw := c.viewEvent(id, pg.ref, "say", line, ve.csrf)
		if raw == errorFrame(id, protocol.CodeLimitExceeded) {
			break
		}
		res, _ := viewResult(t, raw)
		pg.apply(t, res.Patch)
		if id > 20 {
			t.Fatal("state never hit the limit")
		}
	}
	if !ve.events.has(audit.TypeViewDenied, "state_too_large") {
		t.Fatal("no state_too_large event")
	}
	select {
	case <-ve.instance(t, "alice").Done():
	case <-time.After(5 * time.Second):
		t.Fatal("instance not closed")
	}
	if got := c.viewEvent(id+1, pg.ref, "inc", `{}`, ve.csrf); got != errorFrame(id+1, protocol.CodeBadRequest) {
		t.Fatalf("event after close: %s", got)
	}
	// The connection lives on and can join again.
	c.joinOK(id+2, protocol.JoinParams{View: "room", Session: ve.session(t, "room", "alice", nil), CSRF: ve.csrf})
}

func TestViewsPerConnectionLimit(t *testing.T) {
	t.Parallel()
	ve := newViewEnv(t, live.Options{MaxViewsPerConn: 2})
	c := ve.dialPage(t, "alice", true)
	join := protocol.JoinParams{View: "room", Session: ve.session(t, "room", "alice", nil), CSRF: ve.csrf}
	first := c.joinOK(2, join)
	c.joinOK(3, join)
	if r := c.join(4, join); r.Error == nil || r.Error.Code != protocol.CodeLimitExceeded {
		t.Fatalf("third join: %+v", r)
	}
	if !ve.events.has(audit.TypeViewDenied, "view_limit") {
		t.Fatal("no view_limit event")
	}
	c.sendCmd(5, protocol.MethodLeave, protocol.LeaveParams{Ref: first.ref})
	c.reply(5)
	c.joinOK(6, join)
	// Another connection has its own allowance.
	ve.dialPage(t, "alice", true).joinOK(2, join)
}

func TestViewServerUpdate(t *testing.T) {
	t.Parallel()
	ve := newViewEnv(t, live.Options{MaxStateBytes: 8192})
	c := ve.dialPage(t, "alice", true)
	pg := c.joinOK(2, protocol.JoinParams{View: "room", Session: ve.session(t, "room", "alice", nil), CSRF: ve.csrf})
	inst := ve.instance(t, "alice")
	if err := inst.Update(func(s *live.Socket) { s.Assign("log", []string{"<b>from the server</b>"}) }); err != nil {
		t.Fatal(err)
	}
	f := c.frame()
	if f.Patch == nil || f.ID != 0 {
		t.Fatalf("want a patch push, got %+v", f)
	}
	pg.apply(t, f.Patch)
	if !strings.Contains(pg.html, "<li>&lt;b&gt;from the server&lt;/b&gt;</li>") {
		t.Fatalf("after update: %s", pg.html)
	}
	// Updates racing with events: every patch arrives once, in version
	// order, and the client ends with the server's HTML.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			_ = inst.Update(func(s *live.Socket) { s.Assign("log", append(s.Get("log").([]string), fmt.Sprint("u", i))) })
		}
	}()
	for i := range 50 {
		c.sendCmd(uint64(10+i), protocol.MethodView, protocol.ViewParams{Ref: pg.ref, Name: "inc", CSRF: ve.csrf, Payload: json.RawMessage(`{}`)})
	}
	replies := 0
	for replies < 50 {
		f := c.frame()
		switch {
		case f.Patch != nil:
			pg.apply(t, f.Patch)
		case f.Error != nil:
			t.Fatalf("error %+v", f.Error)
		default:
			var res protocol.ViewResult
			if err := json.Unmarshal(f.Result, &res); err != nil {
				t.Fatal(err)
			}
			pg.apply(t, res.Patch)
			replies++
		}
	}
	<-done
	for pg.html != inst.HTML() {
		f := c.frame()
		if f.Patch == nil {
			t.Fatalf("want patch, got %+v", f)
		}
		pg.apply(t, f.Patch)
	}
	// An update past the state limit closes the view and tells the client.
	_ = inst.Update(func(s *live.Socket) { s.Assign("log", []string{strings.Repeat("x", 9000)}) })
	f = c.frame()
	if f.ViewClosed == nil || f.ViewClosed.Ref != pg.ref || f.ViewClosed.Code != protocol.CodeLimitExceeded {
		t.Fatalf("want view_closed, got %+v", f)
	}
	if got := c.viewEvent(200, pg.ref, "inc", `{}`, ve.csrf); got != errorFrame(200, protocol.CodeBadRequest) {
		t.Fatalf("event after close: %s", got)
	}
}

func TestViewsClosedWithConnection(t *testing.T) {
	t.Parallel()
	ve := newViewEnv(t, live.Options{})
	c := ve.dialPage(t, "alice", true)
	c.joinOK(2, protocol.JoinParams{View: "room", Session: ve.session(t, "room", "alice", nil), CSRF: ve.csrf})
	inst := ve.instance(t, "alice")
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	select {
	case <-inst.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("instance outlived its connection")
	}
}

func TestViewsOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(t, "alice")
	c.sendCmd(2, protocol.MethodJoin, protocol.JoinParams{View: "room", Session: "x", CSRF: "y"})
	if got := c.rawReply(); got != errorFrame(2, protocol.CodeNotAvailable) {
		t.Fatalf("join: %s", got)
	}
	c.sendCmd(3, protocol.MethodView, protocol.ViewParams{Ref: "v1", Name: "inc", CSRF: "y"})
	if got := c.rawReply(); got != errorFrame(3, protocol.CodeNotAvailable) {
		t.Fatalf("view: %s", got)
	}
}
