package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/proxy"
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
	// LIVEGATE_REDIS_ADDR (set by scripts/test for the Redis tests) would
	// put every instance in cluster mode: the environment wins over the
	// file. An empty value leaves Redis off.
	for _, k := range []string{envSecret, envAudience, envAdminSecret, "LIVEGATE_REDIS_ADDR"} {
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

// createAPIKey runs `livegate apikey create` on the store at db and
// returns the key it prints.
func createAPIKey(t *testing.T, db, scopes string) string {
	t.Helper()
	var out syncBuffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"apikey", "create", "--db", db, "--name", "backend", "--scopes", scopes})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("apikey create: %v\n%s", err, out.String())
	}
	key, _, _ := strings.Cut(out.String(), "\n")
	if !strings.HasPrefix(key, "lg_") {
		t.Fatalf("apikey create printed %q", out.String())
	}
	return key
}

// apiPublish posts {"channel", "data"} to /api/publish with key and
// returns the status.
func apiPublish(t *testing.T, addr, key, channel, data string) int {
	t.Helper()
	body := `{"channel":` + strconv.Quote(channel) + `,"data":` + data + `}`
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/publish", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// awaitPush reads c until a publication on channel arrives and returns
// its data; replies and other pushes are skipped. It fails the test after
// d.
func awaitPush(t *testing.T, c *stConn, channel string, d time.Duration) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			t.Fatalf("no publication on %s: %v", channel, err)
		}
		var f protocol.ServerFrame
		if json.Unmarshal(data, &f) == nil && f.Push != nil && f.Push.Channel == channel && f.Push.IsPublication() {
			return f.Push.Data
		}
	}
}

// noPush asserts that no publication on channel arrives on c within d.
// It closes c's reading side when d passes, so it is a connection's last
// check.
func noPush(t *testing.T, c *stConn, channel string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		var f protocol.ServerFrame
		if json.Unmarshal(data, &f) == nil && f.Push != nil && f.Push.Channel == channel && f.Push.IsPublication() {
			t.Fatalf("unexpected publication on %s: %s", channel, f.Push.Data)
		}
	}
}

// TestServeHTTPAPI: with api.enabled, a key made by `livegate apikey
// create` publishes through POST /api/publish to a WebSocket client;
// a wrong, missing or revoked-scope key is refused and publishes nothing.
func TestServeHTTPAPI(t *testing.T) {
	fx := newServeFixture(t)
	fx.write(t, "api:\n  enabled: true\nnamespaces:\n  - name: room\n    subscribe: {mode: authenticated}\n  - name: news\n    subscribe: {mode: authenticated}\n")
	key := createAPIKey(t, filepath.Join(fx.dir, "livegate.db"), "publish:room:*")
	addr, _, _, _ := startServe(t, fx.config)

	c := wsConnect(t, addr, fx.token(t, "alice"))
	defer c.ws.CloseNow()
	for _, ch := range []string{"room:lobby", "news:today"} {
		if got := subscribe(c, ch); got != "" {
			t.Fatalf("subscribe %s: %s", ch, got)
		}
	}
	if s := apiPublish(t, addr, key, "room:lobby", `{"text":"from the api"}`); s != http.StatusOK {
		t.Fatalf("publish with the key: %d", s)
	}
	if got := awaitPush(t, c, "room:lobby", 10*time.Second); string(got) != `{"text":"from the api"}` {
		t.Fatalf("pushed %s", got)
	}
	// A tampered key, no key, and a key outside its scope.
	wrong := key[:len(key)-1] + "A"
	if strings.HasSuffix(key, "A") {
		wrong = key[:len(key)-1] + "B"
	}
	for _, tc := range []struct {
		name, key, channel string
		want               int
	}{
		{"wrong key", wrong, "room:lobby", http.StatusUnauthorized},
		{"unknown key id", "lg_zzzzzzzz" + key[11:], "room:lobby", http.StatusUnauthorized},
		{"no key", "", "room:lobby", http.StatusUnauthorized},
		{"out of scope", key, "news:today", http.StatusForbidden},
	} {
		if s := apiPublish(t, addr, tc.key, tc.channel, `{"text":"refused"}`); s != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, s, tc.want)
		}
	}
	noPush(t, c, "room:lobby", 300*time.Millisecond)
}

// serveRedisAddr returns the Redis for cluster tests: LIVEGATE_REDIS_ADDR,
// else a private redis-server when one is installed; the test is skipped
// without either (failed when LIVEGATE_REQUIRE_REDIS=1).
func serveRedisAddr(t *testing.T) string {
	t.Helper()
	if addr := os.Getenv("LIVEGATE_REDIS_ADDR"); addr != "" {
		return addr
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("LIVEGATE_REQUIRE_REDIS") == "1" {
			t.Fatal("no Redis: set LIVEGATE_REDIS_ADDR or install redis-server")
		}
		t.Skip("no Redis: set LIVEGATE_REDIS_ADDR or install redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s: %v", addr, err)
		}
	}
}

// TestServeRedisTwoNodes: two `livegate serve` processes on one Redis; a
// publication through node A's HTTP API reaches a client of node B, and a
// token used on one node is refused on the other (single-use ids shared).
func TestServeRedisTwoNodes(t *testing.T) {
	redisAddr := serveRedisAddr(t)
	fx := newServeFixture(t)
	t.Setenv("LIVEGATE_REDIS_ADDR", redisAddr) // newServeFixture cleared it
	prefix := fmt.Sprintf("lgserve%d:", time.Now().UnixNano())
	node := func(name string, api bool) string {
		y := `listen: 127.0.0.1:0
tokens:
  hmac_secret_file: ` + fx.secret + `
  audience: serve-test
store:
  path: ` + filepath.Join(fx.dir, name+".db") + `
admin:
  listen: 127.0.0.1:0
api:
  enabled: ` + strconv.FormatBool(api) + `
redis:
  addr: ` + redisAddr + `
  key_prefix: "` + prefix + `"
namespaces:
  - name: room
    subscribe: {mode: authenticated}
`
		p := filepath.Join(fx.dir, name+".yaml")
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfgA, cfgB := node("a", true), node("b", false)
	key := createAPIKey(t, filepath.Join(fx.dir, "a.db"), "publish:room:*")
	addrA, _, logsA, _ := startServe(t, cfgA)
	addrB, _, _, _ := startServe(t, cfgB)
	waitLog(t, logsA, `livegate started.*redis=true`)

	tok := fx.token(t, "bob")
	c := wsConnect(t, addrB, tok)
	defer c.ws.CloseNow()
	if got := subscribe(c, "room:lobby"); got != "" {
		t.Fatalf("subscribe on B: %s", got)
	}
	// Node B may subscribe to Redis after the reply: publish until the
	// first publication arrives, then check that a later one does too.
	pushes := make(chan string, 64)
	go func() {
		defer close(pushes)
		for {
			_, data, err := c.ws.Read(context.Background())
			if err != nil {
				return
			}
			var f protocol.ServerFrame
			if json.Unmarshal(data, &f) == nil && f.Push != nil && f.Push.Channel == "room:lobby" {
				pushes <- string(f.Push.Data)
			}
		}
	}()
	await := func(want string) {
		t.Helper()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		timeout := time.After(15 * time.Second)
		for {
			if want == `{"n":"warm-up"}` {
				if s := apiPublish(t, addrA, key, "room:lobby", want); s != http.StatusOK {
					t.Fatalf("publish on A: %d", s)
				}
			}
			select {
			case got, ok := <-pushes:
				if !ok {
					t.Fatal("node B closed the connection")
				}
				if got == want {
					return
				}
			case <-tick.C:
			case <-timeout:
				t.Fatalf("%s from node A never reached node B", want)
			}
		}
	}
	await(`{"n":"warm-up"}`)
	if s := apiPublish(t, addrA, key, "room:lobby", `{"n":"across nodes"}`); s != http.StatusOK {
		t.Fatalf("publish on A: %d", s)
	}
	await(`{"n":"across nodes"}`)
	// A token already used on B is refused on A: its id is in Redis.
	ws, _, err := websocket.Dial(context.Background(), "ws://"+addrA+"/ws", &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	replay := &stConn{ws: ws, id: 1}
	defer replay.ws.CloseNow()
	if o := replay.call(context.Background(), protocol.MethodConnect, protocol.ConnectParams{Token: tok}); o.ok() {
		t.Fatal("a token used on node B connected again on node A")
	}
}

const serveProxySecret = "serve-proxy-secret-0123456789abcdef-0123"

// proxyBackend is an application behind the gateway: every request is
// verified with proxy.Verifier; connect names the token's user and
// subscribes room:lobby (mallory is denied), subscribe refuses room:staff,
// event "say" publishes {"user", "text"} to room:lobby.
type proxyBackend struct {
	srv *httptest.Server

	mu          sync.Mutex
	verified    map[string]int // path → requests that passed verification
	refused     int
	disconnects []string // users
}

func newProxyBackend(t *testing.T) *proxyBackend {
	t.Helper()
	v, err := proxy.NewVerifier(proxy.VerifierConfig{Secrets: [][]byte{[]byte(serveProxySecret)}})
	if err != nil {
		t.Fatal(err)
	}
	b := &proxyBackend{verified: map[string]int{}}
	answer := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err == nil {
			err = v.Verify(r, raw)
		}
		b.mu.Lock()
		if err != nil {
			b.refused++
			b.mu.Unlock()
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		b.verified[r.URL.Path]++
		b.mu.Unlock()
		var body struct {
			Identity *struct {
				Sub string `json:"sub"`
			} `json:"identity"`
			Channel string `json:"channel"`
			Event   string `json:"event"`
			Payload struct {
				Text string `json:"text"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(raw, &body); err != nil || body.Identity == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/app/livegate/connect":
			if body.Identity.Sub == "mallory" {
				answer(w, map[string]any{"deny": true})
				return
			}
			answer(w, map[string]any{"user": body.Identity.Sub, "channels": []string{"room:lobby"}})
		case "/app/livegate/subscribe":
			answer(w, map[string]any{"allow": body.Channel != "room:staff"})
		case "/app/livegate/event":
			if body.Event != "say" || body.Payload.Text == "" {
				answer(w, map[string]any{"error": "bad_request"})
				return
			}
			answer(w, map[string]any{"reply": map[string]bool{"ok": true}, "publish": []any{
				map[string]any{"channel": "room:lobby", "data": map[string]string{"user": body.Identity.Sub, "text": body.Payload.Text}},
			}})
		case "/app/livegate/disconnect":
			b.mu.Lock()
			b.disconnects = append(b.disconnects, body.Identity.Sub)
			b.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *proxyBackend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.verified[path]
}

// connectOutcome dials node addr and sends connect with token; it returns
// the reply, or the close code when the server closed instead.
func connectOutcome(t *testing.T, addr, token string) (stOutcome, int) {
	t.Helper()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	c := &stConn{ws: ws, id: 1}
	defer c.ws.CloseNow()
	o := c.call(ctx, protocol.MethodConnect, protocol.ConnectParams{Token: token})
	if o.frame != nil {
		if o.ok() {
			return o, 0
		}
		code, _ := c.awaitClose(ctx, 10*time.Second)
		return o, code
	}
	return o, o.close
}

// TestServeProxyMode: `livegate serve` with a proxy section in front of a
// backend that verifies every signed request with proxy.Verifier. The
// backend names the user and subscribes the lobby at connect, decides
// subscriptions, turns the event "say" into a publication and hears
// disconnects; an event outside proxy.events never reaches it; a denied
// connect closes 4403; an unsigned request to the backend is refused; with
// the backend down, connects close 4500 and events answer unavailable.
func TestServeProxyMode(t *testing.T) {
	fx := newServeFixture(t)
	backend := newProxyBackend(t)
	secretFile := filepath.Join(fx.dir, "proxy.key")
	if err := os.WriteFile(secretFile, []byte(serveProxySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fx.write(t, `namespaces:
  - name: room
    subscribe: {mode: authenticated}
proxy:
  url: `+backend.srv.URL+`/app/livegate
  secret_file: `+secretFile+`
  timeout: 2s
  connect: true
  subscribe: true
  disconnect: true
  events: [say]
  circuit_breaker:
    failures: 100
`)
	addr, _, logs, _ := startServe(t, fx.config)
	waitLog(t, logs, `livegate started.*proxy=true`)

	alice := wsConnect(t, addr, fx.token(t, "alice"))
	defer alice.ws.CloseNow()
	bob := wsConnect(t, addr, fx.token(t, "bob"))
	defer bob.ws.CloseNow()
	if n := backend.count("/app/livegate/connect"); n != 2 {
		t.Fatalf("backend connects: %d", n)
	}
	// The backend decides subscriptions.
	if got := subscribe(alice, "room:staff"); got != "forbidden" {
		t.Fatalf("room:staff: %q, want forbidden", got)
	}
	if got := subscribe(alice, "room:other"); got != "" {
		t.Fatalf("room:other: %s", got)
	}
	// "say" goes to the backend, whose publication reaches bob, who was
	// subscribed to the lobby by the backend at connect.
	if o := alice.call(context.Background(), protocol.MethodEvent, protocol.EventParams{Name: "say", Payload: json.RawMessage(`{"text":"hi bob"}`)}); !o.ok() || string(o.f.Result) != `{"ok":true}` {
		t.Fatalf("say: %s", o)
	}
	if got := awaitPush(t, bob, "room:lobby", 10*time.Second); string(got) != `{"text":"hi bob","user":"alice"}` {
		t.Fatalf("bob got %s", got)
	}
	// The backend's own refusal, and an event not listed in proxy.events.
	if o := alice.call(context.Background(), protocol.MethodEvent, protocol.EventParams{Name: "say", Payload: json.RawMessage(`{"text":""}`)}); o.errCode() != "bad_request" {
		t.Fatalf("empty say: %s", o)
	}
	before := backend.count("/app/livegate/event")
	if o := alice.call(context.Background(), protocol.MethodEvent, protocol.EventParams{Name: "shout", Payload: json.RawMessage(`{}`)}); o.errCode() != "not_available" {
		t.Fatalf("shout: %s", o)
	}
	if n := backend.count("/app/livegate/event"); n != before {
		t.Fatalf("an unlisted event reached the backend (%d → %d)", before, n)
	}
	// The backend denies mallory: 4403.
	if o, code := connectOutcome(t, addr, fx.token(t, "mallory")); code != 4403 {
		t.Fatalf("mallory: %s, close %d, want 4403", o, code)
	}
	// Disconnect notifications.
	bob.ws.Close(websocket.StatusNormalClosure, "")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		backend.mu.Lock()
		got := slices.Contains(backend.disconnects, "bob")
		backend.mu.Unlock()
		if got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backend never heard bob's disconnect")
		}
	}
	// A forged request straight to the backend fails its verification.
	resp, err := http.Post(backend.srv.URL+"/app/livegate/connect", "application/json", strings.NewReader(`{"identity":{"sub":"mallory"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	backend.mu.Lock()
	refused := backend.refused
	backend.mu.Unlock()
	if resp.StatusCode != http.StatusUnauthorized || refused != 1 {
		t.Fatalf("unsigned request: %d, refused %d", resp.StatusCode, refused)
	}

	// Backend down: new connects close 4500, events answer unavailable.
	backend.srv.CloseClientConnections()
	backend.srv.Close()
	if o, code := connectOutcome(t, addr, fx.token(t, "carol")); code != 4500 {
		t.Fatalf("backend down: %s, close %d, want 4500", o, code)
	}
	if o := alice.call(context.Background(), protocol.MethodEvent, protocol.EventParams{Name: "say", Payload: json.RawMessage(`{"text":"anyone?"}`)}); o.errCode() != "unavailable" {
		t.Fatalf("say with the backend down: %s", o)
	}
	waitLog(t, logs, `proxy`)
}
