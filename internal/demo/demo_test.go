package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/internal/demo"
	"github.com/livegate/livegate/internal/wstest"
	"github.com/livegate/livegate/protocol"
)

var secret = []byte("demo-secret-0123456789abcdef-0123456789")

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	s, err := demo.New(demo.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		srv.Close()
	})
	return srv
}

var metaRe = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// page loads the demo page like a browser and returns its CSRF token and
// cookie.
func page(t *testing.T, srv *httptest.Server) (string, *http.Cookie) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := metaRe.FindSubmatch(body)
	if m == nil || len(resp.Cookies()) != 1 {
		t.Fatalf("page without CSRF token or cookie: %s", body)
	}
	return string(m[1]), resp.Cookies()[0]
}

// devToken asks for a token the way the demo page does (same origin, CSRF
// token and cookie); hdr overrides headers, an empty value removes one.
func devToken(t *testing.T, srv *httptest.Server, user string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	csrfTok, cookie := page(t, srv)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dev/token", strings.NewReader(`{"user":"`+user+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("X-CSRF-Token", csrfTok)
	req.AddCookie(cookie)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp, body.Token
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	resp, tok := devToken(t, srv, "alice", nil)
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("same-origin: %d %q", resp.StatusCode, tok)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	refused := map[string]map[string]string{
		"cross-site fetch": {"Sec-Fetch-Site": "cross-site"},
		"same-site fetch":  {"Sec-Fetch-Site": "same-site"},
		"foreign origin":   {"Origin": "http://evil.example"},
		"lookalike origin": {"Origin": "http://" + host + ".evil.example"},
		"no csrf token":    {"X-CSRF-Token": ""},
		"wrong csrf token": {"X-CSRF-Token": "forged.token"},
		"no origin at all": {"Origin": "", "Sec-Fetch-Site": ""},
	}
	for name, h := range refused {
		if resp, tok := devToken(t, srv, "alice", h); resp.StatusCode != http.StatusForbidden || tok != "" {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	for _, user := range []string{"", "a b", "<script>", strings.Repeat("x", 33), `al\"ice`, strings.Repeat("a", 2048)} {
		if resp, tok := devToken(t, srv, user, nil); resp.StatusCode != http.StatusUnauthorized || tok != "" {
			t.Errorf("user %q: %d", user, resp.StatusCode)
		}
	}
	if resp, _ := devToken(t, srv, "alice", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("form post: %d", resp.StatusCode)
	}
	if r, err := http.Get(srv.URL + "/dev/token"); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET token: %v %v", err, r)
	}
}

func TestPagesCarrySecurityHeaders(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, path := range []string{"/", "/demo.js", "/demo.css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s CSP %q", path, csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s headers %v", path, resp.Header)
		}
	}
	resp, err := http.Get(srv.URL + "/livegate.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("client content type %q", ct)
	}
}

// wsClient is a protocol client whose commands carry the ids the test
// gives.
type wsClient struct{ *wstest.Conn }

func dialAs(t *testing.T, srv *httptest.Server, user string) wsClient {
	t.Helper()
	_, tok := devToken(t, srv, user, nil)
	c := wsClient{wstest.Dial(t, wstest.URL(srv.URL), nil)}
	c.Connect(protocol.ConnectParams{Token: tok})
	return c
}

// call sends command id and returns its reply, skipping pushes.
func (c wsClient) call(id int, method string, params any) protocol.ServerFrame {
	c.Command(uint64(id), method, params)
	return c.Reply(uint64(id))
}

func TestSayContract(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	alice, bob := dialAs(t, srv, "alice"), dialAs(t, srv, "bob")
	for _, c := range []wsClient{alice, bob} {
		c.Send(`{"id":2,"method":"subscribe","params":{"channel":"room:lobby"}}`)
		if f := c.Frame(); f.Error != nil {
			t.Fatalf("subscribe: %+v", f.Error)
		}
	}
	alice.Send(`{"id":3,"method":"event","params":{"name":"say","payload":{"room":"lobby","text":"hello <b>bob</b>"}}}`)
	var reply, push *protocol.ServerFrame
	for reply == nil || push == nil {
		f := alice.Frame()
		if f.Push != nil {
			push = &f
		} else {
			reply = &f
		}
	}
	if reply.ID != 3 || reply.Error != nil || string(reply.Result) != `{"ok":true}` {
		t.Fatalf("say reply: %+v %s", reply.Error, reply.Result)
	}
	f := bob.Frame()
	if f.Push == nil || f.Push.Channel != "room:lobby" || string(f.Push.Data) != `{"user":"alice","text":"hello \u003cb\u003ebob\u003c/b\u003e"}` {
		t.Fatalf("bob got %+v", f.Push)
	}

	tooLong := `{"room":"lobby","text":"` + strings.Repeat("x", 501) + `"}`
	refused := []string{
		`{"room":"lobby","text":"hi","user":"bob"}`, // unknown field (spoofing the author)
		`{"room":"lobby"}`,                          // missing text
		`{"text":"hi"}`,                             // missing room
		`{"room":"lobby","text":""}`,                // empty text
		tooLong,                                     // too long
		`{"room":"lob by","text":"hi"}`,             // bad room
		`{"room":"lobby","text":7}`,                 // wrong type
	}
	for i, p := range refused {
		bob.Send(`{"id":9,"method":"event","params":{"name":"say","payload":` + p + `}}`)
		if f := bob.Frame(); f.Error == nil || f.Error.Code != protocol.CodeBadRequest {
			t.Errorf("payload %d accepted: %+v", i, f)
		}
	}
	bob.Send(`{"id":10,"method":"publish","params":{"channel":"room:lobby","data":{"user":"alice","text":"forged"}}}`)
	if f := bob.Frame(); f.Error == nil || f.Error.Code != protocol.CodeForbidden {
		t.Fatalf("client publish into room: %+v", f)
	}
}
