package livegate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
)

// upgrade attempts a WebSocket handshake with extra headers and returns
// the HTTP status (101 on success).
func upgrade(t *testing.T, url string, hdr http.Header) int {
	t.Helper()
	ws, resp, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{
		Subprotocols: []string{protocol.Subprotocol}, HTTPHeader: hdr,
	})
	if err == nil {
		_ = ws.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

func TestOriginAllowList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.AllowedOrigins = []string{"https://app.example.com", "https://*.tenants.example.com"}
	})
	tests := []struct {
		origin string
		want   int
	}{
		{"https://app.example.com", 101},
		{"https://app.example.com:443", 101},
		{"https://acme.tenants.example.com", 101},
		{"", 101},                       // non-browser client
		{"http://app.example.com", 403}, // scheme differs
		{"https://app.example.com:8443", 403},
		{"https://evil.example", 403},
		{"https://app.example.com.evil.io", 403},
		{"https://evil-app.example.com", 403},
		{"https://tenants.example.com", 403}, // apex is not a subdomain
		{"https://acme.tenants.example.com.evil.io", 403},
		{"https://evil-tenants.example.com", 403},
		{"null", 403},
		{"https://APP.example.com", 101},
	}
	for _, tt := range tests {
		hdr := http.Header{}
		if tt.origin != "" {
			hdr.Set("Origin", tt.origin)
		}
		if got := upgrade(t, e.url, hdr); got != tt.want {
			t.Errorf("origin %q: status %d, want %d", tt.origin, got, tt.want)
		}
	}
	if !e.events.has(audit.TypeUpgradeRejected, "origin") {
		t.Fatal("no upgrade_rejected event")
	}
}

func TestDefaultOriginIsSameOrigin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	own := "http://" + strings.TrimPrefix(e.srv.URL, "http://")
	for origin, want := range map[string]int{
		own: 101,
		"https://" + e.srv.Listener.Addr().String(): 403,
		"http://localhost.evil.io":                  403,
		own + ".evil.io":                            403,
	} {
		if got := upgrade(t, e.url, http.Header{"Origin": {origin}}); got != want {
			t.Errorf("origin %q: %d, want %d", origin, got, want)
		}
	}
}

func TestHostAllowList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.PublicURL = "https://app.example.com" })
	// The test server's own address is not a configured host: a DNS
	// rebinding page would arrive with such a Host.
	if got := upgrade(t, e.url, nil); got != http.StatusForbidden {
		t.Fatalf("foreign Host: %d", got)
	}
	if !e.events.has(audit.TypeUpgradeRejected, "host") {
		t.Fatal("no host rejection event")
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/ws", nil)
	req.Host = "app.example.com"
	for k, v := range map[string]string{
		"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": protocol.Subprotocol,
		"Origin": "https://app.example.com",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("configured host: %d", resp.StatusCode)
	}
}

func TestSkipOriginCheckNeedsCSRF(t *testing.T) {
	t.Parallel()
	_, err := livegate.New(livegate.Config{TokenHMACSecret: testSecret, InsecureSkipOriginCheck: true})
	if err == nil {
		t.Fatal("InsecureSkipOriginCheck without another CSRF defence accepted")
	}
	key := []byte("csrf-key-for-tests-0123456789abcdef")
	e := newEnv(t, func(c *livegate.Config) { c.InsecureSkipOriginCheck = true; c.CSRFKey = key })
	if got := upgrade(t, e.url, http.Header{"Origin": {"https://anywhere.example"}}); got != http.StatusForbidden {
		t.Fatalf("no csrf token: %d", got)
	}
	rec := httptest.NewRecorder()
	tok, err := e.gw.CSRFToken(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	hdr := http.Header{"Origin": {"https://anywhere.example"}, "Cookie": {cookie.Name + "=" + cookie.Value}}
	if got := upgrade(t, e.url+"?csrf="+tok, hdr); got != 101 {
		t.Fatalf("valid csrf token: %d", got)
	}
	if got := upgrade(t, e.url+"?csrf="+tok+"x", hdr); got != http.StatusForbidden {
		t.Fatalf("tampered csrf token: %d", got)
	}
	if got := upgrade(t, e.url+"?csrf="+tok, http.Header{"Origin": {"https://anywhere.example"}}); got != http.StatusForbidden {
		t.Fatalf("token without cookie: %d", got)
	}
}

func TestClientIPIgnoresSpoofedForwarding(t *testing.T) {
	t.Parallel()
	check := func(trusted []string, wantIP string) {
		e := newEnv(t, func(c *livegate.Config) { c.TrustedProxies = trusted })
		hdr := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"for=198.51.100.7"}, "Origin": {"https://evil.example"}}
		if got := upgrade(t, e.url, hdr); got != http.StatusForbidden {
			t.Fatalf("status %d", got)
		}
		e.events.mu.Lock()
		defer e.events.mu.Unlock()
		for _, ev := range e.events.events {
			if ev.Type == audit.TypeUpgradeRejected {
				if ev.IP != wantIP {
					t.Fatalf("trusted %v: event IP %q, want %q", trusted, ev.IP, wantIP)
				}
				return
			}
		}
		t.Fatal("no event")
	}
	check(nil, "127.0.0.1")                        // untrusted peer: headers ignored
	check([]string{"10.0.0.0/8"}, "127.0.0.1")     // peer not in the trusted list
	check([]string{"127.0.0.1/32"}, "203.0.113.9") // trusted proxy: its header counts
}

func tokenRequest(t *testing.T, url string, hdr map[string]string, cookie *http.Cookie) (int, livegate.TokenResponse) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr livegate.TokenResponse
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	return resp.StatusCode, tr
}

func TestTokenHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/ws", e.gw)
	mux.Handle("/token", e.gw.TokenHandler(func(r *http.Request) (auth.Identity, error) {
		u := r.Header.Get("X-Test-User") // stands in for the app's session
		if u == "" {
			return auth.Identity{}, errors.New("not logged in")
		}
		return auth.Identity{User: u, Session: "sess-" + u}, nil
	}))
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := e.gw.CSRFToken(w, r)
		_, _ = w.Write([]byte(tok))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	own := srv.URL

	resp, err := http.Get(srv.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	var csrfTok strings.Builder
	buf := make([]byte, 256)
	n, _ := resp.Body.Read(buf)
	csrfTok.Write(buf[:n])
	resp.Body.Close()
	cookie := resp.Cookies()[0]
	good := map[string]string{"Origin": own, "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrfTok.String(), "X-Test-User": "alice"}
	with := func(k, v string) headers {
		m := headers{}
		for a, b := range good {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	refused := []struct {
		name   string
		hdr    map[string]string
		cookie *http.Cookie
		want   int
	}{
		{"no csrf token", with("X-CSRF-Token", ""), cookie, 403},
		{"no csrf cookie", good, nil, 403},
		{"wrong csrf token", with("X-CSRF-Token", csrfTok.String()+"x"), cookie, 403},
		{"cross-site", with("Sec-Fetch-Site", "cross-site"), cookie, 403},
		{"foreign origin", with("Origin", "https://evil.example"), cookie, 403},
		{"no origin headers", with("Origin", "").without("Sec-Fetch-Site"), cookie, 403},
		{"not logged in", with("X-Test-User", ""), cookie, 401},
	}
	for _, tt := range refused {
		if code, tr := tokenRequest(t, srv.URL+"/token", tt.hdr, tt.cookie); code != tt.want || tr.Token != "" {
			t.Errorf("%s: %d %q, want %d", tt.name, code, tr.Token, tt.want)
		}
	}
	if !e.events.has(audit.TypeCSRFRejected, "") {
		t.Fatal("no csrf_rejected event")
	}
	if r, _ := http.Get(srv.URL + "/token"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", r.StatusCode)
	}
	code, tr := tokenRequest(t, srv.URL+"/token", good, cookie)
	if code != 200 || tr.Token == "" {
		t.Fatalf("valid request: %d", code)
	}
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	c := e.dialURL(t, wsURL)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: tr.Token})
	var res protocol.ConnectResult
	f := c.reply(1)
	if f.Error != nil {
		t.Fatalf("issued token refused: %+v", f.Error)
	}
	_ = json.Unmarshal(f.Result, &res)
	if res.User != "alice" {
		t.Fatalf("user %q", res.User)
	}
	// Single use: the same token cannot open a second connection.
	c2 := e.dialURL(t, wsURL)
	c2.sendCmd(1, "connect", protocol.ConnectParams{Token: tr.Token})
	c2.expectClose(protocol.CloseUnauthorized)
}

type headers map[string]string

func (h headers) without(k string) map[string]string { delete(h, k); return h }
