package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/store"
)

const serveSecret = "serve-test-secret-0123456789abcdef-0123"

// serveFixture is a temporary configuration for `livegate serve`.
type serveFixture struct {
	dir, config, secret string
}

func newServeFixture(t *testing.T) *serveFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &serveFixture{dir: dir, config: filepath.Join(dir, "livegate.yaml"), secret: filepath.Join(dir, "token.key")}
	if err := os.WriteFile(fx.secret, []byte(serveSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{envSecret, envAudience, envAdminSecret} {
		t.Setenv(k, "")
	}
	return fx
}

// write writes the configuration with the given namespaces section.
func (fx *serveFixture) write(t *testing.T, namespaces string) {
	t.Helper()
	y := `listen: 127.0.0.1:0
tokens:
  hmac_secret_file: ` + fx.secret + `
  audience: serve-test
store:
  path: ` + filepath.Join(fx.dir, "livegate.db") + `
admin:
  listen: 127.0.0.1:0
log:
  level: debug
` + namespaces
	if err := os.WriteFile(fx.config, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

// token mints a connect token with the configured key.
func (fx *serveFixture) token(t *testing.T, user string) string {
	t.Helper()
	s, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: []byte(serveSecret), Audience: "serve-test"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Sign(auth.Identity{User: user}, auth.KindConnect, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startServe runs `livegate serve --config` in process, as main does, and
// returns the public and admin addresses, the log, and a stop function
// that waits for a clean exit.
func startServe(t *testing.T, config string) (addr, admin string, logs *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	logs = &syncBuffer{}
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(logs)
	cmd.SetArgs([]string{"serve", "--config", config})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	pub := regexp.MustCompile(`serving on http://(127\.0\.0\.1:\d+)`)
	adm := regexp.MustCompile(`metrics and health on http://(127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(20 * time.Second); admin == ""; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited: %v\n%s\n%s", err, out.String(), logs.String())
		default:
		}
		if m := adm.FindStringSubmatch(out.String()); m != nil {
			admin = m[1]
			addr = pub.FindStringSubmatch(out.String())[1]
		} else if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start:\n%s\n%s", out.String(), logs.String())
		}
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}
	t.Cleanup(stop)
	return addr, admin, logs, stop
}

// wsConnect dials /ws and connects with token.
func wsConnect(t *testing.T, addr, token string) *stConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	c := &stConn{ws: ws, id: 1}
	if o := c.call(context.Background(), protocol.MethodConnect, protocol.ConnectParams{Token: token}); !o.ok() {
		t.Fatalf("connect: %s", o)
	}
	return c
}

// subscribe returns "" when the subscription succeeded, else the error
// code or what happened.
func subscribe(c *stConn, channel string) string {
	o := c.call(context.Background(), protocol.MethodSubscribe, protocol.SubscribeParams{Channel: channel})
	if o.ok() {
		return ""
	}
	if o.f.Error != nil {
		return o.f.Error.Code
	}
	return o.String()
}

// waitLog waits for the log to match re.
func waitLog(t *testing.T, logs *syncBuffer, re string) {
	t.Helper()
	r := regexp.MustCompile(re)
	for deadline := time.Now().Add(15 * time.Second); !r.MatchString(logs.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log never matched %q:\n%s", re, logs.String())
		}
	}
}

// TestServeReloadsOnSIGHUP starts `livegate serve` from a file, connects a
// real WebSocket client with a token minted with the configured key, then
// reloads with SIGHUP: a new namespace becomes available while the
// connection stays up, and a broken file is refused with the old
// configuration kept and the reasons logged.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	fx := newServeFixture(t)
	fx.write(t, "namespaces:\n  - name: room\n    subscribe: {mode: authenticated}\n")
	addr, admin, logs, stop := startServe(t, fx.config)

	c := wsConnect(t, addr, fx.token(t, "alice"))
	defer c.ws.CloseNow()
	if got := subscribe(c, "room:lobby"); got != "" {
		t.Fatalf("subscribe room: %s", got)
	}
	if got := subscribe(c, "news:today"); got == "" {
		t.Fatal("subscribed to a namespace that is not configured")
	}
	// A token signed with another key is refused.
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: []byte("another-secret-0123456789abcdef-0123456"), Audience: "serve-test"})
	ftok, _, _ := forged.Sign(auth.Identity{User: "mallory"}, auth.KindConnect, time.Minute)
	bad := &stConn{ws: ws, id: 1}
	if o := bad.call(ctx, protocol.MethodConnect, protocol.ConnectParams{Token: ftok}); o.ok() {
		t.Fatal("a token signed with another key connected")
	}
	bad.ws.CloseNow()

	// Reload with a new namespace and a changed listen address.
	fx.write(t, "namespaces:\n  - name: room\n    subscribe: {mode: authenticated}\n  - name: news\n    subscribe: {mode: authenticated}\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, `config reloaded`)
	if got := subscribe(c, "news:today"); got != "" {
		t.Fatalf("subscribe news after reload: %s", got)
	}
	if got := subscribe(c, "room:other"); got != "" {
		t.Fatalf("the connection did not survive the reload: %s", got)
	}

	// A broken file (typo) is refused; the running configuration stays.
	if err := os.WriteFile(fx.config, []byte("listen: 127.0.0.1:0\ntokens:\n  hmac_secret_file: "+fx.secret+
		"\nnamespaces:\n  - name: room\n    subscrbe: {mode: authenticated}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, `config reload failed.*namespaces\[0\]\.subscrbe: unknown key`)
	if got := subscribe(c, "news:again"); got != "" {
		t.Fatalf("the old configuration was not kept: %s", got)
	}
	if got := subscribe(c, "room:again"); got != "" {
		t.Fatalf("the old configuration was not kept: %s", got)
	}
	// Health on both listeners; metrics only on the admin one.
	for _, u := range []string{"http://" + addr + "/healthz", "http://" + addr + "/readyz", "http://" + admin + "/readyz", "http://" + admin + "/metrics"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", u, resp.StatusCode)
		}
	}
	for _, p := range []string{"/metrics", "/", "/dev/token", "/api/publish"} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s on the public listener: %d", p, resp.StatusCode)
		}
	}
	c.ws.Close(websocket.StatusNormalClosure, "")
	stop()

	// Both reloads are in the audit trail.
	db, err := store.Open(context.Background(), filepath.Join(fx.dir, "livegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Audit().Query(context.Background(), store.AuditFilter{Types: []string{eventConfigReloaded, eventConfigReloadFailed}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range recs {
		types = append(types, r.Type)
		if r.Type == eventConfigReloadFailed && !strings.Contains(r.Detail, "subscrbe") {
			t.Errorf("reload failure detail %q", r.Detail)
		}
	}
	if strings.Join(types, ",") != eventConfigReloaded+","+eventConfigReloadFailed {
		t.Fatalf("audit events %v", types)
	}
}

func TestServeReportsSettingsNeedingRestart(t *testing.T) {
	fx := newServeFixture(t)
	fx.write(t, "namespaces:\n  - name: room\n    subscribe: {mode: authenticated}\n")
	_, _, logs, _ := startServe(t, fx.config)
	y, _ := os.ReadFile(fx.config)
	changed := strings.Replace(string(y), "listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1) + "limits:\n  conns_per_ip: 3\n"
	if err := os.WriteFile(fx.config, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, `need a restart.*keys=listen`)
	waitLog(t, logs, `config reloaded`)
}

func TestServeRefusesDangerousConfig(t *testing.T) {
	fx := newServeFixture(t)
	y := "listen: 0.0.0.0:8080\ndebug: true\ntokens:\n  hmac_secret_file: " + fx.secret + "\nstore:\n  path: " + filepath.Join(fx.dir, "x.db") + "\n"
	if err := os.WriteFile(fx.config, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"serve", "--config", fx.config})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "debug: refused with listen \"0.0.0.0:8080\"") {
		t.Fatalf("err = %v", err)
	}
	if _, serr := os.Stat(filepath.Join(fx.dir, "x.db")); !errors.Is(serr, os.ErrNotExist) {
		t.Fatal("a refused configuration still opened the store")
	}
}

// TestServeTokenEndpoint: the token endpoint issues a working token for
// the user a trusted proxy names, with the CSRF token from <path>/csrf,
// and refuses requests without the header or without the CSRF token.
func TestServeTokenEndpoint(t *testing.T) {
	fx := newServeFixture(t)
	fx.write(t, "trusted_proxies: [127.0.0.1]\ntoken_endpoint:\n  path: /token\n  user_header: X-User\n"+
		"namespaces:\n  - name: room\n    subscribe: {mode: authenticated}\n")
	addr, _, _, _ := startServe(t, fx.config)
	resp, err := http.Get("http://" + addr + "/token/csrf")
	if err != nil {
		t.Fatal(err)
	}
	var csrf struct {
		Token string `json:"csrf_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&csrf)
	resp.Body.Close()
	if err != nil || csrf.Token == "" || len(resp.Cookies()) == 0 {
		t.Fatalf("csrf: %v %+v", err, csrf)
	}
	post := func(user, token string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/token", nil)
		for _, c := range resp.Cookies() {
			req.AddCookie(c)
		}
		req.Header.Set("Sec-Fetch-Site", "same-origin") // as a browser sends it
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		if user != "" {
			req.Header.Set("X-User", user)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := post("", csrf.Token); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no user header: %d", r.StatusCode)
	}
	if r := post("alice", ""); r.StatusCode != http.StatusForbidden {
		t.Fatalf("no CSRF token: %d", r.StatusCode)
	}
	if r := post("alice", csrf.Token+"x"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF token: %d", r.StatusCode)
	}
	r := post("alice", csrf.Token)
	var tr livegate.TokenResponse
	if err := json.NewDecoder(r.Body).Decode(&tr); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %v", r.StatusCode, err)
	}
	r.Body.Close()
	c := wsConnect(t, addr, tr.Token)
	defer c.ws.CloseNow()
	if got := subscribe(c, "room:x"); got != "" {
		t.Fatalf("subscribe with the issued token: %s", got)
	}
}
