package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/httpapi"
	"github.com/livegate/livegate/internal/poll"
	"github.com/livegate/livegate/internal/wstest"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
)

func TestPublishReachesSubscriber(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	key, k := e.key("publish:room:*")
	sub := e.connect(auth.Identity{User: "alice"})
	sub.Subscribe("room:1")

	r := e.post(key, "/api/publish", `{"channel":"room:1","data":{"text":"hi"}}`)
	expect(t, r, http.StatusOK, "")
	var res httpapi.PublishResponse
	r.json(t, &res)
	if res.Channel != "room:1" || res.Offset != 1 || res.Epoch == "" {
		t.Fatalf("response %s", r.body)
	}
	p := sub.Publication()
	if p.Channel != "room:1" || string(p.Data) != `{"text":"hi"}` || p.Offset != 1 || p.Epoch != res.Epoch {
		t.Fatalf("push %+v", p)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Ratelimit-Limit") == "" {
		t.Fatalf("headers %v", r.header)
	}

	// X-API-Key works as well as Authorization.
	r = e.do(http.MethodPost, "/api/publish", "application/json; charset=utf-8",
		strings.NewReader(`{"channel":"room:1","data":2}`), "X-API-Key", key)
	expect(t, r, http.StatusOK, "")
	if p := sub.Publication(); string(p.Data) != "2" || p.Offset != 2 {
		t.Fatalf("push %+v", p)
	}

	// The use is audited with the key's id and name, never its secret.
	ev, ok := e.events.last(httpapi.TypeAPIRequest)
	if !ok || ev.User != "apikey:"+k.ID || ev.Reason != "ok" || ev.Severity != audit.SeverityInfo ||
		!strings.Contains(ev.Detail, "endpoint=publish") || !strings.Contains(ev.Detail, "key=backend") ||
		!strings.Contains(ev.Detail, "channel=room:1") || ev.IP != "127.0.0.1" {
		t.Fatalf("event %+v", ev)
	}
}

func TestScopeMismatchForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	key, k := e.key("publish:room:*")
	sub := e.connect(auth.Identity{User: "alice"})
	sub.Subscribe("admin:x")

	for _, body := range []string{
		`{"channel":"admin:x","data":1}`,
		`{"channel":"roomx:1","data":1}`,
	} {
		r := e.post(key, "/api/publish", body)
		expect(t, r, http.StatusForbidden, "forbidden")
	}
	ev, _ := e.events.last(httpapi.TypeAPIDenied)
	if ev.Reason != "scope" || ev.User != "apikey:"+k.ID {
		t.Fatalf("event %+v", ev)
	}
	// Other verbs are out of scope too.
	for path, body := range map[string]string{
		"/api/disconnect": `{"user":"alice"}`,
		"/api/revoke":     `{"user":"alice"}`,
		"/api/presence":   `{"channel":"room:1"}`,
		"/api/history":    `{"channel":"room:1"}`,
		"/api/channels":   `{}`,
	} {
		expect(t, e.post(key, path, body), http.StatusForbidden, "forbidden")
	}
	// Nothing reached admin:x: the next push is one an admin key sends.
	admin, _ := e.key("admin")
	expect(t, e.post(admin, "/api/publish", `{"channel":"admin:x","data":"admin"}`), http.StatusOK, "")
	if p := sub.Publication(); string(p.Data) != `"admin"` {
		t.Fatalf("push %+v", p)
	}
}

func TestBroadcast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	key, _ := e.key("publish:room:*")
	a := e.connect(auth.Identity{User: "alice"})
	a.Subscribe("room:1")
	b := e.connect(auth.Identity{User: "bob"})
	b.Subscribe("room:2")

	r := e.post(key, "/api/broadcast", `{"channels":["room:1","room:2"],"data":"hello"}`)
	expect(t, r, http.StatusOK, "")
	var res httpapi.BroadcastResponse
	r.json(t, &res)
	if len(res.Results) != 2 || res.Results[0].Channel != "room:1" || res.Results[1].Offset != 1 || res.Results[0].Error != "" {
		t.Fatalf("response %s", r.body)
	}
	if p := a.Publication(); string(p.Data) != `"hello"` {
		t.Fatalf("a got %+v", p)
	}
	if p := b.Publication(); string(p.Data) != `"hello"` {
		t.Fatalf("b got %+v", p)
	}

	// One channel out of scope: nothing is published anywhere.
	r = e.post(key, "/api/broadcast", `{"channels":["room:1","admin:x"],"data":"leak"}`)
	expect(t, r, http.StatusForbidden, "forbidden")
	expect(t, e.post(key, "/api/publish", `{"channel":"room:1","data":"next"}`), http.StatusOK, "")
	if p := a.Publication(); string(p.Data) != `"next"` {
		t.Fatalf("a got %+v, want the next publication", p)
	}

	// Per-channel gateway errors are reported per channel.
	r = e.post(key, "/api/broadcast", `{"channels":["room:1","room:x#"],"data":1}`)
	expect(t, r, http.StatusBadRequest, "bad_request")
	many := make([]string, httpapi.DefaultMaxBroadcastChannels+1)
	for i := range many {
		many[i] = strconv.Quote("room:" + strconv.Itoa(i))
	}
	r = e.post(key, "/api/broadcast", `{"channels":[`+strings.Join(many, ",")+`],"data":1}`)
	expect(t, r, http.StatusBadRequest, "bad_request")
	expect(t, e.post(key, "/api/broadcast", `{"channels":["room:1","room:1"],"data":1}`), http.StatusBadRequest, "bad_request")
	expect(t, e.post(key, "/api/broadcast", `{"channels":[],"data":1}`), http.StatusBadRequest, "bad_request")
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{api: func(c *httpapi.Config) { c.AuthFailureLimit = ratelimit.PerMinute(1000) }})
	key, k := e.key("admin")
	other, _ := e.key("admin")
	expired, _ := e.key("admin", func(r *apikey.CreateRequest) { r.TTL = time.Hour })
	revoked, rk := e.key("admin")
	if err := e.keys.Revoke(context.Background(), rk.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour + time.Second)
	last := key[len(key)-1]
	flipped := "A"
	if last == 'A' {
		flipped = "B"
	}
	body := `{"channel":"room:1","data":1}`
	tests := []struct {
		name    string
		headers []string
		reason  string
	}{
		{"no key", nil, "missing_key"},
		{"empty bearer", []string{"Authorization", "Bearer "}, "missing_key"},
		{"basic auth", []string{"Authorization", "Basic " + key}, "missing_key"},
		{"garbage", []string{"Authorization", "Bearer nope"}, "invalid_key"},
		{"forged same prefix", []string{"Authorization", "Bearer " + key[:len(key)-1] + flipped}, "invalid_key"},
		{"other key's secret", []string{"Authorization", "Bearer " + key[:12] + other[12:]}, "invalid_key"},
		{"forged x-api-key", []string{"X-API-Key", key[:len(key)-1] + flipped}, "invalid_key"},
		{"two different keys", []string{"Authorization", "Bearer " + key, "X-API-Key", other}, "missing_key"},
		{"two authorization headers", []string{"Authorization", "Bearer " + key, "Authorization", "Bearer " + key}, "missing_key"},
		{"expired", []string{"Authorization", "Bearer " + expired}, "expired_key"},
		{"revoked", []string{"Authorization", "Bearer " + revoked}, "revoked_key"},
	}
	var first []byte
	for _, tt := range tests {
		r := e.do(http.MethodPost, "/api/publish", "application/json", strings.NewReader(body), tt.headers...)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401", tt.name, r.status)
		}
		expect(t, r, http.StatusUnauthorized, "unauthorized")
		if first == nil {
			first = r.body
		} else if string(r.body) != string(first) {
			t.Errorf("%s: body %s differs from %s: refusals must be generic", tt.name, r.body, first)
		}
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", tt.name)
		}
		ev, _ := e.events.last(httpapi.TypeAPIDenied)
		if ev.Reason != tt.reason {
			t.Errorf("%s: audit reason %q, want %q", tt.name, ev.Reason, tt.reason)
		}
	}
	// The forged key's claimed id is recorded, and the revoked key's use
	// is critical.
	ev, _ := e.events.last(httpapi.TypeAPIDenied)
	if ev.Severity != audit.SeverityCritical || ev.User != "apikey:"+rk.ID {
		t.Fatalf("revoked key event %+v", ev)
	}
	found := false
	for _, ev := range e.events.all() {
		if ev.Reason == "invalid_key" && strings.Contains(ev.Detail, "claimed_key="+k.ID) && ev.User == "" {
			found = true
		}
	}
	if !found {
		t.Fatal("no invalid_key event naming the claimed id")
	}
	// The genuine key still works.
	expect(t, e.post(key, "/api/publish", body), http.StatusOK, "")
}

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{api: func(c *httpapi.Config) { c.MaxBodyBytes = 1024 }})
	key, _ := e.key("admin")
	auth := []string{"Authorization", "Bearer " + key}
	big := `{"channel":"room:1","data":"` + strings.Repeat("x", 2000) + `"}`
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"oversize", "POST", "/api/publish", "application/json", big, 413, "too_large"},
		{"unknown field", "POST", "/api/publish", "application/json", `{"channel":"room:1","data":1,"extra":1}`, 400, "bad_request"},
		{"trailing value", "POST", "/api/publish", "application/json", `{"channel":"room:1","data":1} {}`, 400, "bad_request"},
		{"trailing garbage", "POST", "/api/publish", "application/json", `{"channel":"room:1","data":1}x`, 400, "bad_request"},
		{"duplicate key", "POST", "/api/publish", "application/json", `{"channel":"admin:x","channel":"room:1","data":1}`, 400, "bad_request"},
		{"case-folded duplicate", "POST", "/api/publish", "application/json", `{"Channel":"admin:x","channel":"room:1","data":1}`, 400, "bad_request"},
		{"empty body", "POST", "/api/publish", "application/json", ``, 400, "bad_request"},
		{"array", "POST", "/api/publish", "application/json", `[]`, 400, "bad_request"},
		{"invalid json", "POST", "/api/publish", "application/json", `{"channel":`, 400, "bad_request"},
		{"missing data", "POST", "/api/publish", "application/json", `{"channel":"room:1"}`, 400, "bad_request"},
		{"null data", "POST", "/api/publish", "application/json", `{"channel":"room:1","data":null}`, 400, "bad_request"},
		{"missing channel", "POST", "/api/publish", "application/json", `{"data":1}`, 400, "bad_request"},
		{"invalid channel", "POST", "/api/publish", "application/json", `{"channel":"room:@t/x","data":1}`, 400, "bad_request"},
		{"text/plain", "POST", "/api/publish", "text/plain", `{"channel":"room:1","data":1}`, 415, "unsupported_media_type"},
		{"form", "POST", "/api/publish", "application/x-www-form-urlencoded", `channel=room:1`, 415, "unsupported_media_type"},
		{"no content type", "POST", "/api/publish", "", `{"channel":"room:1","data":1}`, 415, "unsupported_media_type"},
		{"GET", "GET", "/api/publish", "", ``, 405, "method_not_allowed"},
		{"PUT", "PUT", "/api/publish", "application/json", `{}`, 405, "method_not_allowed"},
		{"unknown path", "POST", "/api/nope", "application/json", `{}`, 404, "not_found"},
		{"revoke two fields", "POST", "/api/revoke", "application/json", `{"user":"a","session":"b"}`, 400, "bad_request"},
		{"revoke none", "POST", "/api/revoke", "application/json", `{}`, 400, "bad_request"},
		{"disconnect empty", "POST", "/api/disconnect", "application/json", `{}`, 400, "bad_request"},
		{"history negative limit", "POST", "/api/history", "application/json", `{"channel":"room:1","limit":-1}`, 400, "bad_request"},
		{"history huge limit", "POST", "/api/history", "application/json", `{"channel":"room:1","limit":100000}`, 400, "bad_request"},
	}
	for _, tt := range tests {
		r := e.do(tt.method, tt.path, tt.ctype, strings.NewReader(tt.body), auth...)
		if r.status != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, r.status, tt.status, r.body)
			continue
		}
		expect(t, r, tt.status, tt.code)
		if tt.status == 405 && r.header.Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", tt.name, r.header.Get("Allow"))
		}
	}
	if ev, _ := e.events.last(httpapi.TypeAPIDenied); ev.Reason == "" {
		t.Fatal("refusals not audited")
	}
}

func TestGatewayErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: func(c *livegate.Config) { c.MaxOutboundMessage = 1024 }})
	key, _ := e.key("admin")
	tests := []struct {
		name, path, body string
		status           int
		code, reason     string
	}{
		{"unknown namespace", "/api/publish", `{"channel":"nope:1","data":1}`, 404, "not_found", "unknown_namespace"},
		{"too large for the gateway", "/api/publish", `{"channel":"room:1","data":"` + strings.Repeat("x", 2000) + `"}`, 413, "too_large", "too_large"},
		{"tenant missing", "/api/publish", `{"channel":"org:news","data":1}`, 400, "bad_request", "tenant"},
		{"tenant on shared namespace", "/api/publish", `{"channel":"room:1","data":1,"tenant":"acme"}`, 400, "bad_request", "tenant"},
		{"presence off", "/api/presence", `{"channel":"room:1"}`, 400, "bad_request", "presence_off"},
		{"presence unknown namespace", "/api/presence", `{"channel":"nope:1"}`, 404, "not_found", "unknown_namespace"},
		{"history unknown namespace", "/api/history", `{"channel":"nope:1"}`, 404, "not_found", "unknown_namespace"},
		{"presence invalid tenant", "/api/presence", `{"channel":"org:x","tenant":"a/b"}`, 400, "bad_request", "tenant"},
	}
	for _, tt := range tests {
		r := e.post(key, tt.path, tt.body)
		if r.status != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, r.status, tt.status, r.body)
			continue
		}
		expect(t, r, tt.status, tt.code)
		if ev, _ := e.events.last(httpapi.TypeAPIDenied); ev.Reason != tt.reason {
			t.Errorf("%s: reason %q, want %q", tt.name, ev.Reason, tt.reason)
		}
		if strings.Contains(string(r.body), "livegate:") {
			t.Errorf("%s: internal error text in %s", tt.name, r.body)
		}
	}
	// A closed gateway is unavailable.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, e.post(key, "/api/publish", `{"channel":"room:1","data":1}`), http.StatusServiceUnavailable, "unavailable")
}

func TestRateLimitPerKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{api: func(c *httpapi.Config) { c.RateLimit = ratelimit.Bucket(1, 3) }})
	a, ak := e.key("publish:room:*")
	b, _ := e.key("publish:room:*")
	body := `{"channel":"room:1","data":1}`
	for i := range 3 {
		expect(t, e.post(a, "/api/publish", body), http.StatusOK, "")
		_ = i
	}
	r := e.post(a, "/api/publish", body)
	expect(t, r, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	ev, _ := e.events.last(httpapi.TypeAPIDenied)
	if ev.Reason != "rate_limited" || ev.User != "apikey:"+ak.ID {
		t.Fatalf("event %+v", ev)
	}
	// Another key has its own budget.
	expect(t, e.post(b, "/api/publish", body), http.StatusOK, "")
	// The bucket refills with time.
	e.clock.Advance(time.Second)
	expect(t, e.post(a, "/api/publish", body), http.StatusOK, "")
	expect(t, e.post(a, "/api/publish", body), http.StatusTooManyRequests, "rate_limited")
}

func TestAuthFailureLimitPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{api: func(c *httpapi.Config) { c.AuthFailureLimit = ratelimit.PerMinute(3) }})
	key, _ := e.key("publish:room:*")
	forged := key[:len(key)-2] + "AA"
	if forged == key {
		forged = key[:len(key)-2] + "BA"
	}
	body := `{"channel":"room:1","data":1}`
	for range 3 {
		expect(t, e.post(forged, "/api/publish", body), http.StatusUnauthorized, "unauthorized")
	}
	r := e.post(forged, "/api/publish", body)
	expect(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// The IP is blocked, even with a valid key, until the window passes.
	r = e.post(key, "/api/publish", body)
	expect(t, r, http.StatusTooManyRequests, "rate_limited")
	if ev, _ := e.events.last(httpapi.TypeAPIDenied); ev.Reason != "auth_limited" {
		t.Fatalf("event %+v", ev)
	}
	e.clock.Advance(2 * time.Minute)
	expect(t, e.post(key, "/api/publish", body), http.StatusOK, "")
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	key, _ := e.key("disconnect")
	a := e.connect(auth.Identity{User: "alice", Session: "s1"})
	a2 := e.connect(auth.Identity{User: "alice", Session: "s2"})
	b := e.connect(auth.Identity{User: "bob", Session: "s1"})

	r := e.post(key, "/api/disconnect", `{"user":"alice","session":"s1"}`)
	expect(t, r, http.StatusOK, "")
	var res httpapi.DisconnectResponse
	r.json(t, &res)
	if res.Disconnected != 1 {
		t.Fatalf("response %s", r.body)
	}
	a.ExpectClose(protocol.CloseForbidden)
	// Only the matching connection went.
	for _, c := range []*wstest.Conn{a2, b} {
		if f := c.Call("subscribe", map[string]any{"channel": "room:1"}); f.Error != nil {
			t.Fatalf("other connection affected: %+v", f.Error)
		}
	}
	r = e.post(key, "/api/disconnect", `{"user":"alice"}`)
	r.json(t, &res)
	if res.Disconnected != 1 {
		t.Fatalf("response %s", r.body)
	}
	a2.ExpectClose(protocol.CloseForbidden)
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	key, _ := e.key("revoke")
	a := e.connect(auth.Identity{User: "alice"})
	b := e.connect(auth.Identity{User: "bob", Session: "s9"})

	r := e.post(key, "/api/revoke", `{"user":"alice"}`)
	expect(t, r, http.StatusOK, "")
	var res httpapi.RevokeResponse
	r.json(t, &res)
	if res.Closed != 1 {
		t.Fatalf("response %s", r.body)
	}
	a.ExpectClose(protocol.CloseForbidden)
	r = e.post(key, "/api/revoke", `{"session":"s9"}`)
	r.json(t, &res)
	if res.Closed != 1 {
		t.Fatalf("response %s", r.body)
	}
	b.ExpectClose(protocol.CloseForbidden)
	expect(t, e.post(key, "/api/revoke", `{"token":"jti-1"}`), http.StatusOK, "")
	if ev, _ := e.events.last(httpapi.TypeAPIRequest); !strings.Contains(ev.Detail, "endpoint=revoke") || !strings.Contains(ev.Detail, "token=jti-1") {
		t.Fatalf("event %+v", ev)
	}
}

func TestPresence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	key, _ := e.key("presence:lobby:*")
	a := e.connect(auth.Identity{User: "alice"})
	a.Subscribe("lobby:main")
	var res httpapi.PresenceResponse
	poll.Until(t, "alice's presence", func() bool {
		r := e.post(key, "/api/presence", `{"channel":"lobby:main"}`)
		expect(t, r, http.StatusOK, "")
		r.json(t, &res)
		return len(res.Clients) == 1
	})
	if res.Clients[0].User != "alice" || res.Clients[0].ConnID == "" {
		t.Fatalf("presence %+v", res.Clients)
	}
	r := e.post(key, "/api/presence", `{"channel":"lobby:empty"}`)
	expect(t, r, http.StatusOK, "")
	if strings.TrimSpace(string(r.body)) != `{"clients":[]}` {
		t.Fatalf("empty presence %s", r.body)
	}
	expect(t, e.post(key, "/api/presence", `{"channel":"room:1"}`), http.StatusForbidden, "forbidden")
}

func TestHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	pub, _ := e.key("publish:room:*")
	hist, _ := e.key("history:room:*")
	var epoch string
	for i := 1; i <= 3; i++ {
		r := e.post(pub, "/api/publish", fmt.Sprintf(`{"channel":"room:h","data":{"n":%d}}`, i))
		expect(t, r, http.StatusOK, "")
		var res httpapi.PublishResponse
		r.json(t, &res)
		epoch = res.Epoch
	}
	r := e.post(hist, "/api/history", `{"channel":"room:h","since":{"offset":0,"epoch":"`+epoch+`"}}`)
	expect(t, r, http.StatusOK, "")
	var res httpapi.HistoryResponse
	r.json(t, &res)
	if res.Position.Offset != 3 || res.Position.Epoch != epoch || !res.Complete || len(res.Publications) != 3 {
		t.Fatalf("history %s", r.body)
	}
	if string(res.Publications[2].Data) != `{"n":3}` || res.Publications[2].Offset != 3 {
		t.Fatalf("publication %+v", res.Publications[2])
	}
	r = e.post(hist, "/api/history", `{"channel":"room:h","since":{"offset":1,"epoch":"`+epoch+`"},"limit":1}`)
	expect(t, r, http.StatusOK, "")
	r.json(t, &res)
	if len(res.Publications) != 1 || res.Publications[0].Offset != 2 || res.Complete {
		t.Fatalf("limited history %s", r.body)
	}
	// Without since: the position only.
	r = e.post(hist, "/api/history", `{"channel":"room:h"}`)
	r.json(t, &res)
	if res.Position.Offset != 3 || len(res.Publications) != 0 {
		t.Fatalf("position %s", r.body)
	}
	expect(t, e.post(hist, "/api/history", `{"channel":"admin:x"}`), http.StatusForbidden, "forbidden")
	expect(t, e.post(pub, "/api/history", `{"channel":"room:h"}`), http.StatusForbidden, "forbidden")
}

func TestChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	key, _ := e.key("channels")
	a := e.connect(auth.Identity{User: "alice"})
	a.Subscribe("room:1")
	a.Subscribe("room:2")
	b := e.connect(auth.Identity{User: "bob"})
	b.Subscribe("room:1")
	b.Subscribe("lobby:x")
	c := e.connect(auth.Identity{User: "carol", Tenant: "acme"})
	c.Subscribe("org:news")

	r := e.post(key, "/api/channels", `{}`)
	expect(t, r, http.StatusOK, "")
	var res httpapi.ChannelsResponse
	r.json(t, &res)
	want := []httpapi.ChannelInfo{
		{Channel: "lobby:x", Subscribers: 1},
		{Channel: "org:news", Tenant: "acme", Subscribers: 1},
		{Channel: "room:1", Subscribers: 2},
		{Channel: "room:2", Subscribers: 1},
	}
	if fmt.Sprint(res.Channels) != fmt.Sprint(want) {
		t.Fatalf("channels %+v, want %+v", res.Channels, want)
	}
	r = e.post(key, "/api/channels", `{"prefix":"room:"}`)
	r.json(t, &res)
	if len(res.Channels) != 2 || res.Channels[0].Channel != "room:1" {
		t.Fatalf("prefixed %s", r.body)
	}
	r = e.post(key, "/api/channels", `{"tenant":"acme"}`)
	r.json(t, &res)
	if len(res.Channels) != 1 || res.Channels[0].Channel != "org:news" {
		t.Fatalf("tenant %s", r.body)
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	acmeKey, _ := e.key("publish:org:*,presence:org:*,history:org:*,channels,disconnect", func(r *apikey.CreateRequest) { r.Tenant = "acme" })
	globalKey, _ := e.key("publish:org:*")
	acme := e.connect(auth.Identity{User: "alice", Tenant: "acme"})
	acme.Subscribe("org:news")
	globex := e.connect(auth.Identity{User: "bob", Tenant: "globex"})
	globex.Subscribe("org:news")

	// A tenant-bound key publishes into its tenant without naming it.
	expect(t, e.post(acmeKey, "/api/publish", `{"channel":"org:news","data":"for acme"}`), http.StatusOK, "")
	if p := acme.Publication(); string(p.Data) != `"for acme"` {
		t.Fatalf("acme got %+v", p)
	}
	// It cannot reach another tenant.
	expect(t, e.post(acmeKey, "/api/publish", `{"channel":"org:news","data":"x","tenant":"globex"}`), http.StatusForbidden, "forbidden")
	if ev, _ := e.events.last(httpapi.TypeAPIDenied); ev.Reason != "tenant" || ev.Tenant != "globex" {
		t.Fatalf("event %+v", ev)
	}
	expect(t, e.post(acmeKey, "/api/history", `{"channel":"org:news","tenant":"globex"}`), http.StatusForbidden, "forbidden")
	expect(t, e.post(acmeKey, "/api/presence", `{"channel":"org:news","tenant":"globex"}`), http.StatusForbidden, "forbidden")
	// Operations not confined to a tenant are refused to it.
	expect(t, e.post(acmeKey, "/api/disconnect", `{"user":"bob"}`), http.StatusForbidden, "forbidden")
	// Channels lists its own tenant's only.
	r := e.post(acmeKey, "/api/channels", `{"tenant":"globex"}`)
	expect(t, r, http.StatusForbidden, "forbidden")
	r = e.post(acmeKey, "/api/channels", `{}`)
	var chans httpapi.ChannelsResponse
	r.json(t, &chans)
	if len(chans.Channels) != 1 || chans.Channels[0].Tenant != "acme" {
		t.Fatalf("channels %s", r.body)
	}
	// Presence and history are the tenant's.
	var pres httpapi.PresenceResponse
	poll.Until(t, "acme presence", func() bool {
		r := e.post(acmeKey, "/api/presence", `{"channel":"org:news"}`)
		r.json(t, &pres)
		return len(pres.Clients) == 1
	})
	if pres.Clients[0].User != "alice" {
		t.Fatalf("acme presence %+v", pres.Clients)
	}
	r = e.post(acmeKey, "/api/history", `{"channel":"org:news"}`)
	var hist httpapi.HistoryResponse
	r.json(t, &hist)
	if hist.Position.Offset != 1 {
		t.Fatalf("acme history %s", r.body)
	}

	// An unbound key names the tenant; globex's message never reaches acme.
	expect(t, e.post(globalKey, "/api/publish", `{"channel":"org:news","data":"for globex","tenant":"globex"}`), http.StatusOK, "")
	if p := globex.Publication(); string(p.Data) != `"for globex"` {
		t.Fatalf("globex got %+v", p)
	}
	expect(t, e.post(acmeKey, "/api/publish", `{"channel":"org:news","data":"acme again"}`), http.StatusOK, "")
	if p := acme.Publication(); string(p.Data) != `"acme again"` {
		t.Fatalf("acme got %+v, want its own next message", p)
	}
}

func TestSecretNeverLogged(t *testing.T) {
	t.Parallel()
	// Store failures are logged; the key must not be.
	e := newEnv(t, envOptions{})
	key, _ := e.key("admin")
	expect(t, e.post(key, "/api/publish", `{"channel":"room:1","data":1}`), http.StatusOK, "")
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.post(key, "/api/publish", `{"channel":"room:1","data":1}`)
	expect(t, r, http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(e.logs.String(), "httpapi") {
		t.Fatalf("store failure not logged: %s", e.logs.String())
	}
	// The env's cleanup checks logs, events and bodies for every secret.
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := httpapi.New(httpapi.Config{}); err == nil {
		t.Fatal("New without a gateway succeeded")
	}
	e := newEnv(t, envOptions{})
	if _, err := httpapi.New(httpapi.Config{Gateway: e.gw}); err == nil {
		t.Fatal("New without keys succeeded")
	}
	if _, err := httpapi.New(httpapi.Config{Gateway: e.gw, Keys: e.keys, RateLimit: ratelimit.Rule{Strategy: ratelimit.SlidingWindow}}); err == nil {
		t.Fatal("New with an invalid rule succeeded")
	}
	if _, err := httpapi.New(httpapi.Config{Gateway: e.gw, Keys: e.keys, TrustedProxies: []string{"nope"}}); err == nil {
		t.Fatal("New with an invalid proxy succeeded")
	}
}
