package livegate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
)

func TestHostileJSONClosedBeforeDecoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	registerSay(t, e.gw)
	event := func(payload string) string {
		return `{"id":2,"method":"event","params":{"name":"say","payload":` + payload + `}}`
	}
	keys := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i) + `":1`)
		}
		b.WriteString("}")
		return b.String()
	}
	frames := map[string]string{
		"deep nesting":          event(strings.Repeat("[", 30000) + strings.Repeat("]", 30000)),
		"key flood":             event(keys(3000)),
		"giant array":           event("[" + strings.Repeat("0,", 20000) + "0]"),
		"token storm":           event("[" + strings.Repeat("[0,0],", 5000) + "0]"),
		"duplicate id":          `{"id":2,"id":3,"method":"event","params":{"name":"say","payload":{}}}`,
		"case-folded duplicate": `{"id":2,"method":"event","METHOD":"connect","params":{"name":"say"}}`,
		"duplicate param":       `{"id":2,"method":"event","params":{"name":"nosuch","name":"say","payload":{}}}`,
		"invalid utf-8":         event(`{"room":"a","text":"` + "\xff\xfe" + `"}`),
	}
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			if len(f) > livegate.DefaultMaxInboundFrame {
				t.Fatalf("test frame is %d bytes, over the frame limit", len(f))
			}
			c := e.connect(t, "alice")
			c.send(f)
			c.expectClose(protocol.CloseMalformed)
		})
	}
	if !e.events.has(audit.TypeProtocolError, "json_limits") {
		t.Fatal("no json_limits event")
	}
	// A payload at ordinary depth still works.
	c := e.connect(t, "alice")
	c.send(event(`{"room":"a","text":"fine"}`))
	if r := c.reply(2); r.Error != nil {
		t.Fatalf("ordinary payload refused: %+v", r.Error)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestDecompressionBombCloses1009(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.EnableCompression = true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{
		Subprotocols:    []string{protocol.Subprotocol},
		CompressionMode: websocket.CompressionNoContextTakeover,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	c := &rawConn{t: t, ws: ws}
	c.send(`{"id":1,"method":"connect","params":{"token":"` + e.token(t, "alice") + `"}}`)
	c.reply(1)
	// 8 MiB of spaces compress to a few KiB on the wire; decompressed they
	// are far over the 64 KiB inbound limit.
	bomb := `{"id":2,"method":"unsubscribe","params":{"channel":"room:a"}}` + strings.Repeat(" ", 8<<20)
	_ = ws.Write(ctx, websocket.MessageText, []byte(bomb))
	c.expectClose(protocol.CloseTooBig)
	waitFor(t, "frame_too_big event", func() bool { return e.events.has(audit.TypeFrameTooBig, "") })
}

// dialStatus attempts an upgrade and returns the HTTP status (101 when it
// succeeded) and the response headers; a connection that succeeded is
// returned open.
func dialStatus(t *testing.T, url string, hdr http.Header) (int, http.Header, *rawConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}, HTTPHeader: hdr})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode, resp.Header, nil
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return http.StatusSwitchingProtocols, resp.Header, &rawConn{t: t, ws: ws}
}

func TestAttemptsPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Limits = noLimits()
		c.Limits.AttemptsPerIP = ratelimit.PerMinute(livegate.DefaultAttemptsPerMinute)
	})
	for i := range livegate.DefaultAttemptsPerMinute {
		code, _, c := dialStatus(t, e.url, nil)
		if code != 101 {
			t.Fatalf("attempt %d: %d", i+1, code)
		}
		_ = c.ws.CloseNow()
	}
	code, h, _ := dialStatus(t, e.url, nil)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || h.Get("RateLimit-Limit") != "20" {
		t.Fatalf("21st attempt: %d %v", code, h)
	}
	// A forged X-Forwarded-For from an untrusted peer does not buy a fresh
	// budget.
	code, _, _ = dialStatus(t, e.url, http.Header{"X-Forwarded-For": {"198.51.100.1"}})
	if code != http.StatusTooManyRequests {
		t.Fatalf("spoofed XFF dodged the limit: %d", code)
	}
	if !e.events.has(audit.TypeUpgradeRejected, "attempts_ip") {
		t.Fatal("no attempts_ip event")
	}
}

func TestConcurrentConnectionsPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Limits = noLimits()
		c.Limits.ConnsPerIP = livegate.DefaultConnsPerIP
	})
	var open []*rawConn
	for range livegate.DefaultConnsPerIP {
		code, _, c := dialStatus(t, e.url, nil)
		if code != 101 {
			t.Fatalf("connection %d: %d", len(open)+1, code)
		}
		open = append(open, c)
	}
	if code, h, _ := dialStatus(t, e.url, nil); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("11th concurrent connection: %d", code)
	}
	_ = open[0].ws.CloseNow()
	waitFor(t, "slot released", func() bool {
		code, _, c := dialStatus(t, e.url, nil)
		if c != nil {
			open[0] = c
		}
		return code == 101
	})
}

func TestAbruptDisconnectsReleaseSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Limits = noLimits()
		c.Limits.ConnsPerIP = 5
		c.Limits.ConnsPerUser = 5
	})
	// A thousand connections, five at a time, each dropped without a close
	// handshake, some before and some after connect.
	for i := range 1000 / 5 {
		var batch []*rawConn
		for j := range 5 {
			var c *rawConn
			waitFor(t, "a free slot", func() bool {
				var code int
				code, _, c = dialStatus(t, e.url, nil)
				return code == 101
			})
			if (i+j)%2 == 0 {
				c.sendCmd(1, "connect", protocol.ConnectParams{Token: e.token(t, "alice")})
				c.reply(1)
			}
			batch = append(batch, c)
		}
		for _, c := range batch {
			_ = c.ws.CloseNow()
		}
	}
	waitFor(t, "all connections gone", func() bool { return e.gw.Connections() == 0 })
	waitFor(t, "slot counters at zero", func() bool { return e.gw.Stats().ConnSlotKeys == 0 })
	// Every slot came back: the full quota is available again, per IP and
	// per user.
	for i := range 5 {
		code, _, c := dialStatus(t, e.url, nil)
		if code != 101 {
			t.Fatalf("connection %d after the churn: %d", i, code)
		}
		c.sendCmd(1, "connect", protocol.ConnectParams{Token: e.token(t, "alice")})
		if r := c.reply(1); r.Error != nil {
			t.Fatalf("user slot leaked: %+v", r.Error)
		}
	}
}

func TestPerUserLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Limits = noLimits()
		c.Limits.ConnsPerUser = 2
		c.Limits.AttemptsPerUser = ratelimit.PerMinute(4)
	})
	a1, a2 := e.connect(t, "alice"), e.connect(t, "alice")
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: e.token(t, "alice")})
	c.expectClose(protocol.CloseRateLimited) // third concurrent
	e.connect(t, "bob")                      // other users unaffected
	_ = a1.ws.CloseNow()
	_ = a2
	waitFor(t, "alice's slot released", func() bool { return e.gw.Connections() == 2 })
	// Fourth attempt for alice is still within 4/minute; the fifth is not.
	e.connect(t, "alice")
	c = e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: e.token(t, "alice")})
	c.expectClose(protocol.CloseRateLimited)
	if !e.events.has(audit.TypeRateLimitKick, "attempts_user") || !e.events.has(audit.TypeRateLimitKick, "conns_user") {
		t.Fatal("missing per-user events")
	}
}

func TestCooldownAfterRateLimitClose(t *testing.T) {
	t.Parallel()
	// A second ahead: tokens are minted on the real clock with their
	// issue time in whole seconds, which must not be after the gateway's.
	clock := newFakeClock(time.Now().Add(time.Second))
	e := newEnv(t, func(c *livegate.Config) {
		c.Now = clock.Now
		c.Limits = noLimits()
		c.Limits.Cooldown = livegate.DefaultCooldown
		c.CommandRate, c.CommandBurst = 0.0001, 1
		c.ExpiryJitter = time.Hour
	})
	c := e.connect(t, "alice")
	for i := range 5 {
		c.sendCmd(uint64(10+i), "unsubscribe", protocol.UnsubscribeParams{Channel: "room:x"})
	}
	c.expectClose(protocol.CloseRateLimited)
	waitFor(t, "cooldown in force", func() bool {
		code, h, _ := dialStatus(t, e.url, nil)
		return code == http.StatusTooManyRequests && h.Get("Retry-After") == "5"
	})
	clock.Advance(livegate.DefaultCooldown + time.Second)
	if code, _, _ := dialStatus(t, e.url, nil); code != 101 {
		t.Fatalf("after the cooldown: %d", code)
	}
}

func TestTokenIssuanceLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Limits = noLimits()
		c.Limits.TokensPerUser = ratelimit.PerMinute(3)
	})
	h := e.gw.TokenHandler(func(r *http.Request) (auth.Identity, error) {
		return auth.Identity{User: r.Header.Get("X-User")}, nil
	})
	rec := httptest.NewRecorder()
	tok, _ := e.gw.CSRFToken(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	cookie := rec.Result().Cookies()[0]
	issue := func(user string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "http://example.com/token", nil)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("X-CSRF-Token", tok)
		req.Header.Set("X-User", user)
		req.AddCookie(cookie)
		out := httptest.NewRecorder()
		h.ServeHTTP(out, req)
		return out
	}
	for i := range 3 {
		if out := issue("alice"); out.Code != 200 {
			t.Fatalf("token %d: %d", i, out.Code)
		}
	}
	out := issue("alice")
	if out.Code != http.StatusTooManyRequests || out.Header().Get("Retry-After") == "" || out.Header().Get("RateLimit-Remaining") != "0" {
		t.Fatalf("4th token: %d %v", out.Code, out.Header())
	}
	if out := issue("bob"); out.Code != 200 {
		t.Fatalf("other user limited: %d", out.Code)
	}
}

func TestOverloadRefusesUpgrades(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.MaxConnections = 2 })
	e.connect(t, "a")
	e.connect(t, "b")
	code, h, _ := dialStatus(t, e.url, nil)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("over MaxConnections: %d", code)
	}
}

func TestMaxConnLifetime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.MaxConnLifetime = 300 * time.Millisecond })
	c := e.connect(t, "alice")
	c.expectClose(protocol.CloseGoingAway)
}

func TestHandlerRateLimitPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ok := livegate.HandlerFunc[struct{}](func(context.Context, *livegate.Request, struct{}) (any, error) { return "ok", nil })
	if err := e.gw.Handle("costly", ok, livegate.RateLimitPerUser(ratelimit.PerMinute(2))); err != nil {
		t.Fatal(err)
	}
	call := func(c *rawConn) *protocol.Error {
		c.send(`{"id":5,"method":"event","params":{"name":"costly","payload":{}}}`)
		return c.reply(5).Error
	}
	a1, a2, b := e.connect(t, "alice"), e.connect(t, "alice"), e.connect(t, "bob")
	if call(a1) != nil || call(a2) != nil {
		t.Fatal("calls within the per-user limit refused")
	}
	// A third call from a fresh connection of the same user is refused:
	// the limit follows the user, not the socket.
	if err := call(e.connect(t, "alice")); err == nil || err.Code != protocol.CodeRateLimited {
		t.Fatalf("third call for alice: %+v", err)
	}
	if err := call(b); err != nil {
		t.Fatalf("bob limited by alice's calls: %+v", err)
	}
}
