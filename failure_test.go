package livegate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/store"
)

// A store that fails (here a real SQLite store that was closed) makes
// the gateway fail closed: the token is not accepted, the client is told
// to retry later (4500), and the reason is audited.
func TestStoreFailureFailsClosed(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), t.TempDir()+"/lg.db")
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	for name, mutate := range map[string]func(*livegate.Config){
		"replay store":     func(c *livegate.Config) { c.ReplayStore = db.ReplayStore() },
		"revocation store": func(c *livegate.Config) { c.Revocations = db.Revocations() },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, mutate)
			c := e.dial(t)
			c.sendCmd(1, "connect", protocol.ConnectParams{Token: e.token(t, "alice")})
			c.expectClose(protocol.CloseInternal)
			if !e.events.has(audit.TypeAuthFailed, strings.ReplaceAll(name, " ", "_")) {
				t.Fatal("no audit event for the store failure")
			}
		})
	}
}

func TestRateWarningsExpire(t *testing.T) {
	t.Parallel()
	// A second ahead: tokens are minted on the real clock with their
	// issue time in whole seconds, which must not be after the gateway's.
	clock := newFakeClock(time.Now().Add(time.Second))
	e := newEnv(t, func(c *livegate.Config) {
		c.Now = clock.Now
		c.CommandRate = 0.0001
		c.CommandBurst = 1
		c.ExpiryJitter = time.Hour
		c.MaxTokenLifetime = 24 * time.Hour
	})
	tok, _, _ := e.signer.Sign(auth.Identity{User: "alice"}, auth.KindConnect, 10*time.Hour)
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	c.reply(1)
	c.sendCmd(2, "unsubscribe", protocol.UnsubscribeParams{Channel: "room:x"}) // the one token
	c.reply(2)
	limited := func(id uint64) {
		t.Helper()
		c.sendCmd(id, "unsubscribe", protocol.UnsubscribeParams{Channel: "room:x"})
		if r := c.reply(id); r.Error == nil || r.Error.Code != protocol.CodeRateLimited {
			t.Fatalf("command %d: %+v", id, r)
		}
	}
	for round := range 3 {
		// Three warnings, then a quiet spell longer than the memory of
		// warnings: the count starts again instead of closing 4429.
		for i := range 3 {
			limited(uint64(10*round + 3 + i))
		}
		clock.Advance(11 * time.Second)
	}
	for i := range 3 {
		limited(uint64(100 + i))
	}
	c.sendCmd(200, "unsubscribe", protocol.UnsubscribeParams{Channel: "room:x"})
	c.expectClose(protocol.CloseRateLimited)
}

func TestRevokeHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	secret := []byte("admin-secret-for-tests-0123456789abcdef")
	if _, err := e.gw.RevokeHandler([]byte("short")); err == nil {
		t.Fatal("short admin secret accepted")
	}
	h, err := e.gw.RevokeHandler(secret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	post := func(auth, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	victim := e.connectAs(t, auth.Identity{User: "mallory", Session: "m1"})
	for name, tt := range map[string]struct {
		auth, body string
		want       int
	}{
		"no credentials": {"", `{"user":"mallory"}`, 401},
		"wrong secret":   {"Bearer " + string(secret) + "x", `{"user":"mallory"}`, 401},
		"basic auth":     {"Basic " + string(secret), `{"user":"mallory"}`, 401},
		"two targets":    {"Bearer " + string(secret), `{"user":"mallory","session":"m1"}`, 400},
		"unknown field":  {"Bearer " + string(secret), `{"user":"mallory","all":true}`, 400},
		"empty":          {"Bearer " + string(secret), `{}`, 400},
		"oversize":       {"Bearer " + string(secret), `{"user":"` + strings.Repeat("a", 8<<10) + `"}`, 400},
	} {
		if code, _ := post(tt.auth, tt.body); code != tt.want {
			t.Errorf("%s: %d, want %d", name, code, tt.want)
		}
	}
	if !e.events.has(audit.TypeAdminDenied, "bad_credentials") {
		t.Fatal("no admin_denied event")
	}
	code, body := post("Bearer "+string(secret), `{"session":"m1"}`)
	var res livegate.RevokeResponse
	_ = json.Unmarshal([]byte(body), &res)
	if code != 200 || res.Closed != 1 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	victim.expectClose(protocol.CloseForbidden)
}

func TestTokenHandlerSignsWithKeySet(t *testing.T) {
	t.Parallel()
	key := []byte("keyset-hmac-secret-0123456789abcdef!")
	e := newEnv(t, func(c *livegate.Config) {
		c.TokenHMACSecret, c.TokenAlgorithm = nil, ""
		c.TokenKeys = []auth.Key{{ID: "k1", Algorithm: "HS256", Secret: key}}
		c.TokenSigningKeyID = "k1"
	})
	h := e.gw.TokenHandler(func(*http.Request) (auth.Identity, error) { return auth.Identity{User: "alice"}, nil })
	rec := httptest.NewRecorder()
	tok, _ := e.gw.CSRFToken(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	req := httptest.NewRequest(http.MethodPost, "http://example.com/token", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("X-CSRF-Token", tok)
	req.AddCookie(rec.Result().Cookies()[0])
	out := httptest.NewRecorder()
	h.ServeHTTP(out, req)
	var tr livegate.TokenResponse
	_ = json.Unmarshal(out.Body.Bytes(), &tr)
	if out.Code != 200 || tr.Token == "" {
		t.Fatalf("token endpoint: %d %s", out.Code, out.Body)
	}
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: tr.Token})
	if r := c.reply(1); r.Error != nil {
		t.Fatalf("issued token refused: %+v", r.Error)
	}
	if _, err := livegate.New(livegate.Config{TokenKeys: []auth.Key{{ID: "k1", Algorithm: "HS256", Secret: key}}, TokenSigningKeyID: "nope"}); err == nil {
		t.Fatal("unknown signing key id accepted")
	}
}

func TestNewRejectsUnsatisfiableConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]livegate.Config{
		"token-only publish": {TokenHMACSecret: testSecret, Namespaces: []policy.NamespaceConfig{
			{Name: "x", Subscribe: policy.Authenticated, Publish: policy.Access{Mode: policy.ModeToken}}}},
		"negative jitter":    {TokenHMACSecret: testSecret, ExpiryJitter: -time.Second},
		"ttl over lifetime":  {TokenHMACSecret: testSecret, TokenTTL: 2 * time.Hour},
		"bad origin pattern": {TokenHMACSecret: testSecret, AllowedOrigins: []string{"*"}},
		"bad proxy":          {TokenHMACSecret: testSecret, TrustedProxies: []string{"10.0.0.0/33"}},
		"bad rule": {TokenHMACSecret: testSecret, Namespaces: []policy.NamespaceConfig{
			{Name: "x", Subscribe: policy.Access{Mode: policy.ModeAuthenticated, Rule: "subject.user +"}}}},
		"unknown role": {TokenHMACSecret: testSecret, Roles: []policy.Role{{Name: "a", Inherits: []string{"ghost"}}}},
	} {
		if _, err := livegate.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestHandlerRateLimitHitsOnlyThatHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ok := livegate.HandlerFunc[struct{}](func(context.Context, *livegate.Request, struct{}) (any, error) { return "ok", nil })
	if err := e.gw.Handle("limited", ok, livegate.RateLimit(0.001, 2)); err != nil {
		t.Fatal(err)
	}
	if err := e.gw.Handle("free", ok); err != nil {
		t.Fatal(err)
	}
	if err := e.gw.Handle("bad", ok, livegate.RateLimit(5, 0)); err == nil {
		t.Fatal("burst 0 accepted")
	}
	c := e.connect(t, "alice")
	call := func(id uint64, name string) *protocol.Error {
		c.sendCmd(id, "event", protocol.EventParams{Name: name, Payload: json.RawMessage(`{}`)})
		return c.reply(id).Error
	}
	for i := range 2 {
		if err := call(uint64(10+i), "limited"); err != nil {
			t.Fatalf("call %d within burst: %+v", i, err)
		}
	}
	if err := call(12, "limited"); err == nil || err.Code != protocol.CodeRateLimited {
		t.Fatalf("over the handler limit: %+v", err)
	}
	for i := range 5 {
		if err := call(uint64(20+i), "free"); err != nil {
			t.Fatalf("other handler limited: %+v", err)
		}
	}
	// Each connection has its own bucket.
	c2 := e.connect(t, "bob")
	c2.sendCmd(1, "event", protocol.EventParams{Name: "limited", Payload: json.RawMessage(`{}`)})
	if r := c2.reply(1); r.Error != nil {
		t.Fatalf("other connection limited: %+v", r.Error)
	}
	// Repeated over-limit calls count as warnings: the connection closes.
	for i := range 3 {
		c.sendCmd(uint64(30+i), "event", protocol.EventParams{Name: "limited", Payload: json.RawMessage(`{}`)})
	}
	c.expectClose(protocol.CloseRateLimited)
}
