package demo_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/internal/demo"
	"github.com/livegate/livegate/internal/wstest"
	"github.com/livegate/livegate/ops"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/store"
)

const demoPassword = "correct horse battery staple 42"

// newDemo starts a demo server with a known demo password and a fast long
// task; cfg's other fields are kept.
func newDemo(t *testing.T, cfg demo.Config) (*demo.Server, *httptest.Server) {
	t.Helper()
	cfg.Secret = secret
	if cfg.DemoPassword == "" {
		cfg.DemoPassword = demoPassword
	}
	if cfg.TaskStep == 0 {
		cfg.TaskStep = 5 * time.Millisecond
	}
	if cfg.TaskWatchWait == 0 {
		cfg.TaskWatchWait = 10 * time.Millisecond
	}
	s, err := demo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	return s, srv
}

// browser is a cookie-keeping HTTP client that sends what a same-origin
// page sends: Origin, Sec-Fetch-Site and the page's CSRF token.
type browser struct {
	t    *testing.T
	srv  *httptest.Server
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, srv: srv, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	b.load("/")
	return b
}

var csrfMetaRe = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// load GETs path and keeps the page's CSRF token; it returns the page.
func (b *browser) load(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfMetaRe.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body)
}

// post sends a same-origin POST; body is JSON unless it is url.Values
// (a form). hdr overrides headers; an empty value removes one.
func (b *browser) post(path string, body any, hdr map[string]string) (*http.Response, map[string]any) {
	b.t.Helper()
	var req *http.Request
	switch v := body.(type) {
	case url.Values:
		req, _ = http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case nil:
		req, _ = http.NewRequest(http.MethodPost, b.srv.URL+path, nil)
		req.Header.Set("X-CSRF-Token", b.csrf)
	default:
		js, _ := json.Marshal(v)
		req, _ = http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(string(js)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	req.Header.Set("Origin", b.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp, out
}

func (b *browser) login(user, password string) (*http.Response, map[string]any) {
	b.t.Helper()
	return b.post("/login", map[string]string{"user": user, "password": password}, nil)
}

// signedIn returns a browser signed in as user with the demo password.
func signedIn(t *testing.T, srv *httptest.Server, user string) *browser {
	t.Helper()
	b := newBrowser(t, srv)
	if resp, body := b.login(user, demoPassword); resp.StatusCode != http.StatusOK || body["user"] != user {
		t.Fatalf("login %s: %d %v", user, resp.StatusCode, body)
	}
	b.load("/")
	return b
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestLoginSessionAndLogout(t *testing.T) {
	t.Parallel()
	_, srv := newDemo(t, demo.Config{})
	b := newBrowser(t, srv)

	if resp, body := b.login("alice", "not the password at all"); resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid" {
		t.Fatalf("wrong password: %d %v", resp.StatusCode, body)
	}
	if resp, body := b.login("nobody", demoPassword); resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid" {
		t.Fatalf("unknown user: %d %v (must look like a wrong password)", resp.StatusCode, body)
	}
	resp, body := b.login("Alice", demoPassword)
	if resp.StatusCode != http.StatusOK || body["user"] != "alice" {
		t.Fatalf("login: %d %v", resp.StatusCode, body)
	}
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == demo.SessionCookie {
			set = c
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteStrictMode || set.Path != "/" || len(set.Value) < 43 {
		t.Fatalf("session cookie %+v", set)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("login Cache-Control %q", cc)
	}
	_, page := b.load("/")
	for _, want := range []string{`<meta name="livegate-user" content="alice">`, `as alice`, `data-lg-view="board"`, `id="task-form"`, `id="signout"`} {
		if !strings.Contains(page, want) {
			t.Errorf("signed-in page lacks %s", want)
		}
	}
	if strings.Contains(page, `id="signin-form"`) {
		t.Error("signed-in page still shows the sign-in form")
	}

	// A second login replaces the session (no fixation).
	old := b.cookie(demo.SessionCookie).Value
	b.login("alice", demoPassword)
	if now := b.cookie(demo.SessionCookie).Value; now == old {
		t.Error("login kept the old session id")
	}
	stale := newBrowser(t, srv)
	stale.c.Jar.SetCookies(mustURL(srv.URL), []*http.Cookie{{Name: demo.SessionCookie, Value: old, Path: "/"}})
	if _, page := stale.load("/"); !strings.Contains(page, `id="signin-form"`) {
		t.Error("the replaced session still works")
	}

	// Logout needs the CSRF token too.
	if resp, _ := b.post("/logout", map[string]string{}, map[string]string{"X-CSRF-Token": ""}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d", resp.StatusCode)
	}
	if resp, body := b.post("/logout", map[string]string{}, nil); resp.StatusCode != http.StatusOK || body["ok"] != true {
		t.Fatalf("logout: %d %v", resp.StatusCode, body)
	}
	if c := b.cookie(demo.SessionCookie); c != nil {
		t.Errorf("session cookie kept after logout: %+v", c)
	}
	if _, page := b.load("/"); !strings.Contains(page, `id="signin-form"`) || strings.Contains(page, "data-lg-view") {
		t.Error("page after logout is not signed out")
	}
}

func TestLoginRefusedWithoutCSRF(t *testing.T) {
	t.Parallel()
	_, srv := newDemo(t, demo.Config{})
	b := newBrowser(t, srv)
	creds := map[string]string{"user": "alice", "password": demoPassword}
	refused := map[string]map[string]string{
		"no token":        {"X-CSRF-Token": ""},
		"forged token":    {"X-CSRF-Token": "forged.token"},
		"cross-site":      {"Sec-Fetch-Site": "cross-site"},
		"foreign origin":  {"Origin": "http://evil.example", "Sec-Fetch-Site": ""},
		"same-site fetch": {"Sec-Fetch-Site": "same-site"},
	}
	for name, h := range refused {
		for _, path := range []string{"/login", "/register", "/ops/start"} {
			if resp, _ := b.post(path, creds, h); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: %d", path, name, resp.StatusCode)
			}
		}
	}
	if c := b.cookie(demo.SessionCookie); c != nil {
		t.Fatal("a refused login set a session")
	}

	// A plain form post (no JavaScript) carries the token in a field and
	// is redirected to the page.
	form := url.Values{"csrf_token": {b.csrf}, "user": {"bob"}, "password": {demoPassword}}
	resp, _ := b.post("/login", form, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("form login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A wrong password in a form gets the page back with the message.
	form = url.Values{"csrf_token": {b.csrf}, "user": {"carol"}, "password": {"wrong wrong wrong"}}
	resp, _ = b.post("/login", form, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("form login with a wrong password: %d", resp.StatusCode)
	}
	if r, _ := b.c.Get(srv.URL + "/login"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /login: %d", r.StatusCode)
	}
}

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	_, srv := newDemo(t, demo.Config{})
	b := newBrowser(t, srv)
	for i := range 3 {
		if resp, _ := b.login("carol", "a wrong guess "+strconv.Itoa(i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	// Locked: even the right password is refused, with how long to wait.
	resp, body := b.login("carol", demoPassword)
	if resp.StatusCode != http.StatusTooManyRequests || body["error"] != "locked" {
		t.Fatalf("locked login: %d %v", resp.StatusCode, body)
	}
	secs, _ := body["retry_after"].(float64)
	if secs < 1 || secs > 5 || resp.Header.Get("Retry-After") != strconv.Itoa(int(secs)) {
		t.Fatalf("retry_after %v, Retry-After %q", body["retry_after"], resp.Header.Get("Retry-After"))
	}
	if msg, _ := body["message"].(string); !regexp.MustCompile(`Try again in \d+ s\.`).MatchString(msg) {
		t.Fatalf("message %q", msg)
	}
	// Other users are not locked.
	if resp, _ := newBrowser(t, srv).login("alice", demoPassword); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice while carol is locked: %d", resp.StatusCode)
	}
}

func TestRegisterEnforcesThePolicy(t *testing.T) {
	t.Parallel()
	_, srv := newDemo(t, demo.Config{})
	b := newBrowser(t, srv)
	weak := map[string]string{
		"short1":                "too short",                   // under 12 characters
		"common":                "password1234",                // on the common list
		"dana.example":          "dana.example and more words", // contains the name
		"repeat":                "abcabcabcabcabc",             // repeated pattern
		"brand":                 "my livegate account pass",    // contains the product
		"bad name!":             "a perfectly fine passphrase",
		"alice":                 "a perfectly fine passphrase", // taken
		strings.Repeat("x", 33): "a perfectly fine passphrase",
	}
	for user, pw := range weak {
		resp, body := b.post("/register", map[string]string{"user": user, "password": pw}, nil)
		if resp.StatusCode/100 != 4 || body["message"] == "" {
			t.Errorf("register %q/%q: %d %v", user, pw, resp.StatusCode, body)
		}
	}
	resp, body := b.post("/register", map[string]string{"user": "Dana", "password": "plum otter quartz lantern"}, nil)
	if resp.StatusCode != http.StatusOK || body["user"] != "dana" {
		t.Fatalf("register: %d %v", resp.StatusCode, body)
	}
	if _, page := b.load("/"); !strings.Contains(page, "as dana") {
		t.Fatal("registration did not sign in")
	}
	if resp, _ := newBrowser(t, srv).login("dana", "plum otter quartz lantern"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login of the new account: %d", resp.StatusCode)
	}
}

var (
	cspNonceRe    = regexp.MustCompile(`'nonce-([A-Za-z0-9+/=]+)'`)
	scriptNonceRe = regexp.MustCompile(`<script type="module" src="/demo.js" nonce="([^"]+)">`)
	linkNonceRe   = regexp.MustCompile(`<link rel="stylesheet" href="/demo.css" nonce="([^"]+)">`)
)

func TestPageCSPNonce(t *testing.T) {
	t.Parallel()
	_, srv := newDemo(t, demo.Config{})
	seen := map[string]bool{}
	for _, user := range []string{"", "alice"} {
		b := newBrowser(t, srv)
		if user != "" {
			b.login(user, demoPassword)
		}
		resp, err := b.c.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		m := cspNonceRe.FindStringSubmatch(csp)
		if m == nil || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("CSP %q", csp)
		}
		nonce := m[1]
		if seen[nonce] {
			t.Fatal("a nonce was reused")
		}
		seen[nonce] = true
		for _, re := range []*regexp.Regexp{scriptNonceRe, linkNonceRe} {
			// html/template writes '+' as &#43;; the browser decodes it.
			if m := re.FindSubmatch(body); m == nil || html.UnescapeString(string(m[1])) != nonce {
				t.Errorf("user %q: %s does not carry the nonce %s", user, re, nonce)
			}
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("page Cache-Control %q", cc)
		}
		for h, want := range map[string]string{
			"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "strict-origin-when-cross-origin", "Cross-Origin-Opener-Policy": "same-origin",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %q", h, got)
			}
		}
	}
	for _, p := range []string{"/livegate.js", "/vendor/purify.es.mjs", "/vendor/idiomorph.esm.js"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

// ---------------------------------------------------------------- WebSocket

var sessionAttrRe = regexp.MustCompile(`data-lg-view="board" data-lg-session="([^"]+)"`)

// token asks /dev/token for a connect token for user from b's page.
func (b *browser) token(user string) string {
	b.t.Helper()
	resp, body := b.post("/dev/token", map[string]string{"user": user}, nil)
	tok, _ := body["token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		b.t.Fatalf("token for %s: %d", user, resp.StatusCode)
	}
	return tok
}

// dial opens a WebSocket from b's page (its cookies, its origin) and
// connects as user.
func (b *browser) dial(user string) wsClient {
	b.t.Helper()
	tok := b.token(user)
	h := http.Header{"Origin": {b.srv.URL}}
	u := mustURL(b.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	c := wsClient{wstest.Dial(b.t, wstest.URL(b.srv.URL), h)}
	c.Connect(protocol.ConnectParams{Token: tok})
	return c
}

func errCode(f protocol.ServerFrame) string {
	if f.Error == nil {
		return ""
	}
	return f.Error.Code
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestBoardView(t *testing.T) {
	t.Parallel()
	_, srv := newDemo(t, demo.Config{})
	alice := signedIn(t, srv, "alice")
	_, page := alice.load("/")
	// The first render over HTTP, escaped, with a signed session.
	if !strings.Contains(page, `<output class="count" id="board-count" aria-live="polite">0</output>`) {
		t.Fatalf("board not rendered: %s", page)
	}
	m := sessionAttrRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no view session in the page")
	}
	sess := m[1]

	ws := alice.dial("alice")
	join := map[string]any{"view": "board", "session": sess}
	if f := ws.call(2, "join", join); errCode(f) != protocol.CodeForbidden {
		t.Fatalf("join without CSRF token: %+v", f)
	}
	join["csrf"] = "forged.token"
	if f := ws.call(3, "join", join); errCode(f) != protocol.CodeForbidden {
		t.Fatalf("join with a forged CSRF token: %+v", f)
	}
	join["csrf"] = alice.csrf
	f := ws.call(4, "join", join)
	if f.Error != nil {
		t.Fatalf("join: %+v", f.Error)
	}
	var joined protocol.JoinResult
	_ = json.Unmarshal(f.Result, &joined)
	if !strings.Contains(joined.HTML, `id="board-count"`) {
		t.Fatalf("join result %s", f.Result)
	}
	event := func(id int, name string, payload any, csrf string) protocol.ServerFrame {
		return ws.call(id, "view", map[string]any{"ref": joined.Ref, "name": name, "payload": payload, "csrf": csrf})
	}
	if f := event(5, "inc", map[string]any{}, ""); errCode(f) != protocol.CodeForbidden {
		t.Fatalf("event without CSRF token: %+v", f)
	}
	f = event(6, "inc", map[string]any{}, alice.csrf)
	if f.Error != nil || !strings.Contains(string(f.Result), `"patch"`) || len(f.Result) > 400 {
		t.Fatalf("inc: %+v %s", f.Error, f.Result)
	}
	for i, bad := range []any{
		map[string]any{"text": ""}, map[string]any{"text": strings.Repeat("x", 201)},
		map[string]any{"text": "hi", "user": "bob"}, map[string]any{"__proto__": "x"},
	} {
		if f := event(10+i, "post", bad, alice.csrf); errCode(f) != protocol.CodeBadRequest {
			t.Errorf("post %v: %+v", bad, f)
		}
	}
	if f := event(20, "reset", nil, alice.csrf); errCode(f) != protocol.CodeNotAvailable {
		t.Errorf("unregistered event: %+v", f)
	}
	f = event(21, "post", map[string]any{"text": `<img src=x onerror=alert(1)>`}, alice.csrf)
	var posted protocol.ViewResult
	_ = json.Unmarshal(f.Result, &posted)
	if f.Error != nil || posted.Patch == nil || !strings.Contains(posted.Patch.Insert, `&lt;img src=x onerror=alert(1)&gt;`) ||
		strings.Contains(posted.Patch.Insert, "<img") {
		t.Fatalf("post: %+v %s", f.Error, f.Result)
	}
	// A new page shows the shared state, escaped.
	bob := signedIn(t, srv, "bob")
	_, page = bob.load("/")
	if !strings.Contains(page, `id="board-count" aria-live="polite">1</output>`) ||
		!strings.Contains(page, `&lt;img src=x onerror=alert(1)&gt;`) || strings.Contains(page, `<img`) {
		t.Fatalf("bob's board: %s", page)
	}

	// The session token is bound to alice: bob cannot join with it.
	bws := bob.dial("bob")
	if f := bws.call(2, "join", map[string]any{"view": "board", "session": sess, "csrf": bob.csrf}); errCode(f) != protocol.CodeForbidden {
		t.Fatalf("bob joins with alice's session: %+v", f)
	}
	// A bare-name token for "alice" (no login session) may join with a
	// session token lifted from her page, but her events need the member
	// group.
	mallory := newBrowser(t, srv)
	mws := mallory.dial("alice")
	f = mws.call(2, "join", map[string]any{"view": "board", "session": sess, "csrf": mallory.csrf})
	if f.Error != nil {
		t.Fatalf("bare-name join: %+v", f.Error)
	}
	_ = json.Unmarshal(f.Result, &joined)
	if f := mws.call(3, "view", map[string]any{"ref": joined.Ref, "name": "inc", "payload": map[string]any{}, "csrf": mallory.csrf}); errCode(f) != protocol.CodeNotAvailable {
		t.Fatalf("bare-name event: %+v", f)
	}

	// After logout the page's view session no longer joins.
	alice.post("/logout", map[string]string{}, nil)
	other := newBrowser(t, srv)
	ows := other.dial("alice")
	if f := ows.call(2, "join", map[string]any{"view": "board", "session": sess, "csrf": other.csrf}); errCode(f) != protocol.CodeForbidden {
		t.Fatalf("join after logout: %+v", f)
	}
}

func TestBoardSessionEndpoint(t *testing.T) {
	t.Parallel()
	_, srv := newDemo(t, demo.Config{})
	if r, err := http.Get(srv.URL + "/board/session"); err != nil || r.StatusCode != http.StatusForbidden {
		t.Fatalf("signed out: %v %v", err, r)
	}
	alice := signedIn(t, srv, "alice")
	resp, err := alice.c.Get(srv.URL + "/board/session")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Session string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body.Session, "lv1.") {
		t.Fatalf("%d %+v", resp.StatusCode, body)
	}
}

// ---------------------------------------------------------------- operations

var opStateRe = regexp.MustCompile(`id="task" class="op" data-op="([0-9a-f-]{36})" data-lg-op-seq="\d+" data-lg-op-state="(\w+)"`)

// start starts a long task from b's page.
func (b *browser) start(params demo.TaskParams) string {
	b.t.Helper()
	resp, body := b.post("/ops/start", params, nil)
	id, _ := body["op"].(string)
	if resp.StatusCode != http.StatusOK || len(id) != 36 || body["channel"] != "op:"+id {
		b.t.Fatalf("start: %d %v", resp.StatusCode, body)
	}
	return id
}

// opState reloads the operation's page and returns its state.
func (b *browser) opState(id string) (string, string) {
	b.t.Helper()
	code, page := b.load("/ops/" + id)
	if code != http.StatusOK {
		b.t.Fatalf("GET /ops/%s: %d", id, code)
	}
	m := opStateRe.FindStringSubmatch(page)
	if m == nil || m[1] != id {
		b.t.Fatalf("operation %s not on its page", id)
	}
	return m[2], page
}

func (b *browser) waitOp(id, state string) string {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, page := b.opState(id)
		if got == state {
			return page
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("operation %s: state %s, want %s", id, got, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTaskRunsAndPersists(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), store.MemoryPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, srv := newDemo(t, demo.Config{Operations: db.Operations()})
	alice := signedIn(t, srv, "alice")
	label := `<script>alert("label")</script>`
	id := alice.start(demo.TaskParams{Label: label})
	page := alice.waitOp(id, "done")
	for _, want := range []string{
		`<span id="task-pct" class="pct">100 %</span>`,
		`value="100"`,
		`&lt;img src=x onerror=alert(1)&gt;`,
		`Processed 20 chunks of “&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;”`,
		`20 / 20 chunks`,
		`id="task-cancel" type="button" class="secondary" disabled`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("finished task page lacks %s", want)
		}
	}
	if strings.Contains(page, "<img") || strings.Contains(page, `<script>alert`) {
		t.Fatal("markup from a report reached the page unescaped")
	}
	// GET / shows the newest operation.
	if _, page := alice.load("/"); !strings.Contains(page, `data-op="`+id+`"`) {
		t.Fatal("the page does not show the newest operation")
	}
	// The store has it: another server on the same store would render it.
	rec, err := db.Operations().Get(context.Background(), id)
	if err != nil || rec.State != ops.StateDone || rec.User != "alice" || rec.Percent != 100 {
		t.Fatalf("stored: %+v %v", rec, err)
	}

	// A failing task reports its error, escaped, and ends failed.
	id = alice.start(demo.TaskParams{Label: "<b>bold</b>", Fail: true})
	page = alice.waitOp(id, "failed")
	if !strings.Contains(page, `Could not process “&lt;b&gt;bold&lt;/b&gt;”: a simulated failure at step 10.`) {
		t.Fatalf("failed task page: %s", page)
	}
}

func TestTaskOwnershipAndCSRF(t *testing.T) {
	t.Parallel()
	// Steps long enough for the task to be running throughout.
	_, srv := newDemo(t, demo.Config{TaskStep: 200 * time.Millisecond})
	alice := signedIn(t, srv, "alice")
	bob := signedIn(t, srv, "bob")
	id := alice.start(demo.TaskParams{Label: "alice's"})

	// Bob: his session and CSRF token, alice's operation.
	for _, action := range []string{"cancel", "restart"} {
		if resp, body := bob.post("/ops/"+action+"/"+id, nil, nil); resp.StatusCode != http.StatusForbidden || body["error"] != "forbidden" {
			t.Errorf("bob %s: %d %v", action, resp.StatusCode, body)
		}
		// Alice without the CSRF header, with a forged one, cross-site.
		for name, h := range map[string]map[string]string{
			"no token":   {"X-CSRF-Token": ""},
			"forged":     {"X-CSRF-Token": "forged.token"},
			"cross-site": {"Sec-Fetch-Site": "cross-site"},
		} {
			if resp, _ := alice.post("/ops/"+action+"/"+id, nil, h); resp.StatusCode != http.StatusForbidden {
				t.Errorf("alice %s, %s: %d", action, name, resp.StatusCode)
			}
		}
		if r, _ := alice.c.Get(srv.URL + "/ops/" + action + "/" + id); r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d", action, r.StatusCode)
		}
	}
	if code, _ := bob.load("/ops/" + id); code != http.StatusNotFound {
		t.Errorf("bob views alice's operation: %d", code)
	}
	signedOut := newBrowser(t, srv)
	if resp, _ := signedOut.post("/ops/start", demo.TaskParams{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("start signed out: %d", resp.StatusCode)
	}
	if resp, _ := signedOut.post("/ops/cancel/"+id, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cancel signed out: %d", resp.StatusCode)
	}
	if st, _ := alice.opState(id); st != "running" {
		t.Fatalf("after refused requests the task is %s", st)
	}

	// The channel: only alice's member connection may join it.
	ch := map[string]any{"channel": "op:" + id}
	if f := bob.dial("bob").call(2, "subscribe", ch); errCode(f) != protocol.CodeForbidden {
		t.Errorf("bob subscribes: %+v", f)
	}
	if f := bob.dial("alice").call(2, "subscribe", ch); errCode(f) != protocol.CodeForbidden {
		t.Errorf("a bare-name token for alice subscribes: %+v", f)
	}
	aws := alice.dial("alice")
	if f := aws.call(2, "subscribe", ch); f.Error != nil {
		t.Fatalf("alice subscribes: %+v", f.Error)
	}
	if f := aws.call(3, "publish", map[string]any{"channel": "op:" + id, "data": map[string]any{"type": "result"}}); errCode(f) != protocol.CodeForbidden {
		t.Errorf("client publish into op: %+v", f)
	}
	// Reports arrive as pushes.
	got := false
	for deadline := time.Now().Add(5 * time.Second); !got && time.Now().Before(deadline); {
		if f := aws.Frame(); f.Push != nil && f.Push.Channel == "op:"+id {
			got = true
		}
	}
	if !got {
		t.Fatal("no report pushed to alice")
	}

	// Restart by alice: a new operation, the old one cancelled.
	resp, body := alice.post("/ops/restart/"+id, nil, nil)
	newID, _ := body["op"].(string)
	if resp.StatusCode != http.StatusOK || len(newID) != 36 || newID == id || body["restarted_from"] != id {
		t.Fatalf("restart: %d %v", resp.StatusCode, body)
	}
	alice.waitOp(id, "cancelled")
	if resp, body := alice.post("/ops/cancel/"+id, nil, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("cancel of a finished task: %d %v", resp.StatusCode, body)
	}
	if resp, body := alice.post("/ops/cancel/"+newID, nil, nil); resp.StatusCode != http.StatusOK || body["ok"] != true {
		t.Fatalf("cancel: %d %v", resp.StatusCode, body)
	}
	page := alice.waitOp(newID, "cancelled")
	if !strings.Contains(page, "alice&#39;s") {
		t.Error("the restarted task lost its label")
	}
}

func TestShutdownStopsRunningTasks(t *testing.T) {
	t.Parallel()
	s, err := demo.New(demo.Config{Secret: secret, DemoPassword: demoPassword, TaskStep: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	alice := signedIn(t, srv, "alice")
	alice.start(demo.TaskParams{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a running task: %v", err)
	}
	resp, body := alice.post("/ops/start", demo.TaskParams{}, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || body["error"] != "unavailable" {
		t.Fatalf("start after shutdown: %d %v", resp.StatusCode, body)
	}
}
