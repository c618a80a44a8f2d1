package livegate_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
)

func TestConnectRejectsBadTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.MaxTokenLifetime = 10 * time.Minute })
	now := time.Now()
	with := func(k string, v any) jwt.MapClaims {
		c := validClaims("alice")
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	good := signClaims(t, jwt.SigningMethodHS256, testSecret, validClaims("alice"))
	parts := strings.Split(good, ".")
	payload, _ := json.Marshal(with("sub", "admin"))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"alg none", signClaims(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims("alice")), auth.ReasonAlgorithm},
		{"wrong key", signClaims(t, jwt.SigningMethodHS256, []byte("another-secret-that-is-32-bytes-long!!"), validClaims("alice")), auth.ReasonSignature},
		{"HS512 with HS256 secret", signClaims(t, jwt.SigningMethodHS512, testSecret, validClaims("alice")), auth.ReasonAlgorithm},
		{"EdDSA when HS256 pinned", signClaims(t, jwt.SigningMethodEdDSA, edKey, validClaims("alice")), auth.ReasonAlgorithm},
		{"expired", signClaims(t, jwt.SigningMethodHS256, testSecret, with("exp", now.Add(-time.Minute).Unix())), auth.ReasonExpired},
		{"no exp", signClaims(t, jwt.SigningMethodHS256, testSecret, with("exp", nil)), auth.ReasonNoExpiry},
		{"wrong aud", signClaims(t, jwt.SigningMethodHS256, testSecret, with("aud", "other")), auth.ReasonAudience},
		{"no aud", signClaims(t, jwt.SigningMethodHS256, testSecret, with("aud", nil)), auth.ReasonAudience},
		{"kind subscribe", signClaims(t, jwt.SigningMethodHS256, testSecret, with("kind", "subscribe")), auth.ReasonKind},
		{"no kind", signClaims(t, jwt.SigningMethodHS256, testSecret, with("kind", nil)), auth.ReasonKind},
		{"nbf in future", signClaims(t, jwt.SigningMethodHS256, testSecret, with("nbf", now.Add(time.Minute).Unix())), auth.ReasonNotYetValid},
		{"tampered payload", tampered, auth.ReasonSignature},
		{"lifetime over max", signClaims(t, jwt.SigningMethodHS256, testSecret, with("exp", now.Add(time.Hour).Unix())), auth.ReasonLifetime},
		{"empty sub", signClaims(t, jwt.SigningMethodHS256, testSecret, with("sub", "")), auth.ReasonSubject},
		{"garbage", "not.a.jwt", auth.ReasonMalformed},
		{"empty", "", auth.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := e.dial(t)
			c.sendCmd(1, "connect", protocol.ConnectParams{Token: tt.token})
			c.expectClose(protocol.CloseUnauthorized)
			waitFor(t, "auth_failed event "+tt.reason, func() bool { return e.events.has(audit.TypeAuthFailed, tt.reason) })
		})
	}
	// The valid token still works, so the refusals above are the checks.
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: good})
	if r := c.reply(1); r.Error != nil {
		t.Fatalf("valid token refused: %+v", r.Error)
	}
}

func TestTokenIsSingleUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.token(t, "alice")
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	if r := c.reply(1); r.Error != nil {
		t.Fatal(r.Error)
	}
	c2 := e.dial(t)
	c2.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	c2.expectClose(protocol.CloseUnauthorized)
	waitFor(t, "replay event", func() bool { return e.events.has(audit.TypeTokenReplayed, "") })
}

func TestTokenInURLNeverAuthenticates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.ConnectTimeout = 300 * time.Millisecond })
	c := e.dialURL(t, e.url+"?token="+e.token(t, "alice")+"&access_token="+e.token(t, "alice"))
	// Without a connect frame the URL token must not count: deadline close.
	c.expectClose(protocol.CloseConnectTimeout)
	c2 := e.dialURL(t, e.url+"?token="+e.token(t, "bob"))
	c2.send(`{"id":1,"method":"connect","params":{}}`)
	c2.expectClose(protocol.CloseUnauthorized)
}

func TestConnectDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.ConnectTimeout = 200 * time.Millisecond })
	c := e.dial(t)
	c.expectClose(protocol.CloseConnectTimeout)
	waitFor(t, "timeout event", func() bool { return e.events.has(audit.TypeConnectTimeout, "") })
}

func TestFirstFrameMustBeConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	c.sendCmd(1, "subscribe", protocol.SubscribeParams{Channel: "room:a"})
	c.expectClose(protocol.CloseUnauthorized)
}

func TestMalformedFramesClose4400(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	other := e.connect(t, "bob")
	other.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:m"})
	other.reply(2)
	frames := []string{
		`{"id":2,"method":"subscribe","params":{"channel":"room:a"`,
		`not json`,
		`{"id":2,"method":"subscribe","params":{"channel":"room:a"},"admin":true}`,
		`{"id":2,"method":"subscribe","params":{"channel":"room:a","sudo":1}}`,
		`{"method":"subscribe","params":{"channel":"room:a"}}`,
		`{"id":2,"method":"shutdown"}`,
		`[]`,
		`{"id":2,"method":"connect","params":{"token":"x"}}`,
	}
	for i, f := range frames {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c := e.connect(t, "alice")
			c.send(f)
			c.expectClose(protocol.CloseMalformed)
		})
	}
	t.Run("binary", func(t *testing.T) {
		c := e.connect(t, "alice")
		_ = c.ws.Write(context.Background(), websocket.MessageBinary, []byte(`{"id":2}`))
		c.expectClose(protocol.CloseMalformed)
	})
	// The other connection is unaffected.
	if _, err := e.gw.Publish(context.Background(), "room:m", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if p := other.push(); p.Channel != "room:m" {
		t.Fatalf("push: %+v", p)
	}
}

func TestOversizeFrameCloses1009(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(t, "alice")
	pad := strings.Repeat("x", livegate.DefaultMaxInboundFrame+1-len(`{"id":2,"method":"event","params":{"name":"say","payload":""}}`))
	frame := `{"id":2,"method":"event","params":{"name":"say","payload":"` + pad + `"}}`
	if len(frame) != livegate.DefaultMaxInboundFrame+1 {
		t.Fatalf("frame is %d bytes", len(frame))
	}
	c.send(frame)
	c.expectClose(protocol.CloseTooBig)

	// Exactly at the limit is accepted (answered, not closed).
	c2 := e.connect(t, "alice")
	c2.send(frame[:len(frame)-len(`x"}}`)] + `"}}`)
	if r := c2.reply(2); r.Error == nil || r.Error.Code != protocol.CodeNotAvailable {
		t.Fatalf("frame at limit: %+v", r)
	}
}

type sayPayload struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

func (p sayPayload) Validate() error {
	if p.Room == "" || p.Text == "" || len([]rune(p.Text)) > 500 {
		return errors.New("invalid")
	}
	return nil
}

func registerSay(t testing.TB, gw *livegate.Gateway) {
	t.Helper()
	err := gw.Handle("say", livegate.HandlerFunc[sayPayload](func(ctx context.Context, r *livegate.Request, p sayPayload) (any, error) {
		if _, err := gw.Publish(ctx, "room:"+p.Room, map[string]string{"user": r.Identity.User, "text": p.Text}); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
}

func TestGuardedEventNamesAnswerLikeUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.CommandRate = -1 })
	registerSay(t, e.gw)
	c := e.connect(t, "alice")
	c.sendCmd(7, "event", protocol.EventParams{Name: "nosuchevent", Payload: json.RawMessage(`{}`)})
	want := c.rawReply()
	if !strings.Contains(want, `"not_available"`) {
		t.Fatalf("unknown event reply: %s", want)
	}
	names := []string{"__class__", "_private", "Increment", "a-b", "constructor", "__proto__",
		strings.Repeat("a", 65), "sa\x00y", "say ", " say", "SAY", ""}
	for _, n := range names {
		c.sendCmd(7, "event", protocol.EventParams{Name: n, Payload: json.RawMessage(`{}`)})
		if got := c.rawReply(); got != want {
			t.Errorf("name %q: got %s, want %s", n, got, want)
		}
	}
	// The registered name does run: the guard is not refusing everything.
	c.sendCmd(8, "event", protocol.EventParams{Name: "say", Payload: json.RawMessage(`{"room":"a","text":"hi"}`)})
	if r := c.reply(8); r.Error != nil || string(r.Result) != `{"ok":true}` {
		t.Fatalf("say: %+v %s", r.Error, r.Result)
	}
	if !e.events.has(audit.TypeEventDenied, "") {
		t.Fatal("no event_denied security event")
	}
}

func TestHandlerPayloadValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.CommandRate = -1 })
	registerSay(t, e.gw)
	c := e.connect(t, "alice")
	payloads := map[string]string{
		"unknown field":   `{"room":"a","text":"hi","admin":true}`,
		"wrong type":      `{"room":"a","text":5}`,
		"missing text":    `{"room":"a"}`,
		"missing room":    `{"text":"hi"}`,
		"over-long text":  `{"room":"a","text":"` + strings.Repeat("é", 501) + `"}`,
		"not an object":   `[1]`,
		"case-folded key": `{"ROOM":"a","text":"hi"}`,
		"proto key":       `{"room":"a","text":"hi","__proto__":{"admin":true}}`,
		"null":            `null`,
		"duplicate trick": `{"room":"a","text":"hi"} {"x":1}`,
	}
	for name, p := range payloads {
		c.send(`{"id":3,"method":"event","params":{"name":"say","payload":` + p + `}}`)
		if name == "duplicate trick" {
			// Trailing data inside params breaks the frame itself.
			c.expectClose(protocol.CloseMalformed)
			c = e.connect(t, "alice")
			continue
		}
		r := c.reply(3)
		if r.Error == nil || r.Error.Code != protocol.CodeBadRequest || r.Error.Detail != "" {
			t.Errorf("%s: got %+v", name, r)
		}
	}
	c.send(`{"id":4,"method":"event","params":{"name":"say","payload":{"room":"a","text":"` + strings.Repeat("é", 500) + `"}}}`)
	if r := c.reply(4); r.Error != nil {
		t.Fatalf("500 chars refused: %+v", r.Error)
	}
}

func TestHandlerPanicIsGenericAndContained(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	err := e.gw.Handle("boom", livegate.HandlerFunc[struct{}](func(context.Context, *livegate.Request, struct{}) (any, error) {
		panic("secret internal state: db password")
	}))
	if err != nil {
		t.Fatal(err)
	}
	_ = e.gw.Handle("fail", livegate.HandlerFunc[struct{}](func(context.Context, *livegate.Request, struct{}) (any, error) {
		return nil, errors.New("sql: connection refused at 10.0.0.7")
	}))
	c := e.connect(t, "alice")
	c.send(`{"id":2,"method":"event","params":{"name":"boom","payload":{}}}`)
	raw := c.rawReply()
	if raw != `{"id":2,"error":{"code":"internal","message":"internal error"}}` {
		t.Fatalf("panic reply: %s", raw)
	}
	c.send(`{"id":3,"method":"event","params":{"name":"fail","payload":{}}}`)
	if raw := c.rawReply(); strings.Contains(raw, "10.0.0.7") || !strings.Contains(raw, `"internal"`) {
		t.Fatalf("error reply leaks: %s", raw)
	}
	// The connection and the process are still alive.
	c.sendCmd(4, "subscribe", protocol.SubscribeParams{Channel: "room:a"})
	if r := c.reply(4); r.Error != nil {
		t.Fatal(r.Error)
	}
	if !e.events.has(audit.TypeHandlerPanic, "") {
		t.Fatal("no handler_panic event")
	}
}

func TestDebugModeAddsDetail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.Debug = true })
	_ = e.gw.Handle("fail", livegate.HandlerFunc[struct{}](func(context.Context, *livegate.Request, struct{}) (any, error) {
		return nil, errors.New("boom detail")
	}))
	c := e.connect(t, "alice")
	c.send(`{"id":3,"method":"event","params":{"name":"fail","payload":{}}}`)
	if r := c.reply(3); r.Error == nil || !strings.Contains(r.Error.Detail, "boom detail") {
		t.Fatalf("debug detail missing: %+v", r.Error)
	}
}

func TestClientPublishPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(t, "alice")
	c.sendCmd(2, "publish", protocol.PublishParams{Channel: "room:a", Data: json.RawMessage(`{"x":1}`)})
	if r := c.reply(2); r.Error == nil || r.Error.Code != protocol.CodeForbidden {
		t.Fatalf("publish into room: %+v", r)
	}
	c.sendCmd(3, "subscribe", protocol.SubscribeParams{Channel: "chat:a"})
	c.reply(3)
	c.sendCmd(4, "publish", protocol.PublishParams{Channel: "chat:a", Data: json.RawMessage(`{"x":1}`)})
	f1, f2 := c.frame(), c.frame()
	if f1.Push == nil {
		f1, f2 = f2, f1
	}
	if f1.Push == nil || f2.ID != 4 || f2.Error != nil {
		t.Fatalf("publish into chat: %+v %+v", f1, f2)
	}
	big := `"` + strings.Repeat("x", 60<<10) + `"`
	e2 := newEnv(t, func(c *livegate.Config) { c.MaxOutboundMessage = 32 << 10 })
	c2 := e2.connect(t, "alice")
	c2.sendCmd(5, "publish", protocol.PublishParams{Channel: "chat:a", Data: json.RawMessage(big)})
	if r := c2.reply(5); r.Error == nil || r.Error.Code != protocol.CodeTooLarge {
		t.Fatalf("oversize publish: %+v", r)
	}
}

func TestChannelNamesRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.CommandRate = -1 })
	c := e.connect(t, "alice")
	bad := []string{
		"room:" + strings.Repeat("x", 124), // 129 bytes
		"room:a b", "room:<script>alert(1)</script>", "room:a\u202eb", "", "room:", ":a", "nons",
		"secret:a", "room:dm#bob,carol", "room:a\x00",
	}
	var want string
	for i, ch := range bad {
		c.sendCmd(9, "subscribe", protocol.SubscribeParams{Channel: ch})
		got := c.rawReply()
		if i == 0 {
			want = got
			if !strings.Contains(want, `"forbidden"`) {
				t.Fatalf("reply: %s", want)
			}
		}
		if got != want {
			t.Errorf("channel %q: %s, want %s", ch, got, want)
		}
	}
	for _, ch := range []string{"room:" + strings.Repeat("x", 123), "room:dm#alice,bob"} {
		c.sendCmd(10, "subscribe", protocol.SubscribeParams{Channel: ch})
		if r := c.reply(10); r.Error != nil {
			t.Errorf("channel %q refused: %+v", ch, r.Error)
		}
	}
	if _, err := e.gw.Publish(context.Background(), "room:a b", 1); !errors.Is(err, livegate.ErrInvalidChannel) {
		t.Errorf("Publish invalid channel: %v", err)
	}
	if _, err := e.gw.Publish(context.Background(), "nope:a", 1); !errors.Is(err, livegate.ErrUnknownNamespace) {
		t.Errorf("Publish unknown namespace: %v", err)
	}
}

func TestChannelLimitAndDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.MaxChannelsPerConn = 3; c.CommandRate = -1 })
	c := e.connect(t, "alice")
	for i := range 3 {
		c.sendCmd(uint64(10+i), "subscribe", protocol.SubscribeParams{Channel: fmt.Sprintf("room:%d", i)})
		if r := c.reply(uint64(10 + i)); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
	c.sendCmd(20, "subscribe", protocol.SubscribeParams{Channel: "room:0"})
	if r := c.reply(20); r.Error == nil || r.Error.Code != protocol.CodeBadRequest {
		t.Fatalf("duplicate: %+v", r)
	}
	c.sendCmd(21, "subscribe", protocol.SubscribeParams{Channel: "room:x"})
	if r := c.reply(21); r.Error == nil || r.Error.Code != protocol.CodeLimitExceeded {
		t.Fatalf("limit: %+v", r)
	}
	c.sendCmd(22, "unsubscribe", protocol.UnsubscribeParams{Channel: "room:0"})
	c.reply(22)
	c.sendCmd(23, "subscribe", protocol.SubscribeParams{Channel: "room:x"})
	if r := c.reply(23); r.Error != nil {
		t.Fatalf("after unsubscribe: %+v", r)
	}
	c.sendCmd(24, "unsubscribe", protocol.UnsubscribeParams{Channel: "room:0"})
	if r := c.reply(24); r.Error == nil {
		t.Fatal("unsubscribe twice accepted")
	}
}

func TestSayReachesEverySubscriber(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	registerSay(t, e.gw)
	var subs []*rawConn
	for i := range 5 {
		c := e.connect(t, fmt.Sprintf("u%d", i))
		c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:lobby"})
		c.reply(2)
		subs = append(subs, c)
	}
	outsider := e.connect(t, "outsider")
	outsider.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:other"})
	outsider.reply(2)

	sender := subs[0]
	sender.sendCmd(3, "event", protocol.EventParams{Name: "say", Payload: json.RawMessage(`{"room":"lobby","text":"<b>hi</b>"}`)})
	for i, c := range subs {
		var p *protocol.Push
		for p == nil {
			f := c.frame()
			if f.Push != nil {
				p = f.Push
			} else if f.ID != 3 || f.Error != nil {
				t.Fatalf("sub %d: unexpected %+v", i, f)
			}
		}
		var m map[string]string
		_ = json.Unmarshal(p.Data, &m)
		if p.Channel != "room:lobby" || m["user"] != "u0" || m["text"] != "<b>hi</b>" || p.Offset != 1 {
			t.Fatalf("sub %d got %+v %s", i, p, p.Data)
		}
	}
	if _, err := e.gw.Publish(context.Background(), "room:other", "marker"); err != nil {
		t.Fatal(err)
	}
	if p := outsider.push(); p.Channel != "room:other" {
		t.Fatalf("outsider received %+v", p)
	}
}

func TestRecoveryDeliversExactlyMissed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	c := e.connect(t, "alice")
	c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:r"})
	var sub protocol.SubscribeResult
	_ = json.Unmarshal(c.reply(2).Result, &sub)
	if sub.Epoch == "" {
		t.Fatal("no epoch")
	}
	for i := 1; i <= 3; i++ {
		_, _ = e.gw.Publish(ctx, "room:r", i)
		if p := c.push(); p.Offset != uint64(i) {
			t.Fatalf("push %d: %+v", i, p)
		}
	}
	last := protocol.StreamPosition{Offset: 3, Epoch: sub.Epoch}
	_ = c.ws.CloseNow()
	for i := 4; i <= 7; i++ {
		_, _ = e.gw.Publish(ctx, "room:r", i)
	}
	c2 := e.connect(t, "alice")
	c2.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:r", Since: &last})
	var res protocol.SubscribeResult
	if err := json.Unmarshal(c2.reply(2).Result, &res); err != nil {
		t.Fatal(err)
	}
	if res.Recovered == nil || !*res.Recovered || len(res.Publications) != 4 {
		t.Fatalf("recovery: %+v", res)
	}
	for i, p := range res.Publications {
		if p.Offset != uint64(4+i) || string(p.Data) != fmt.Sprint(4+i) {
			t.Fatalf("publication %d: %+v", i, p)
		}
	}
	_, _ = e.gw.Publish(ctx, "room:r", 8)
	if p := c2.push(); p.Offset != 8 {
		t.Fatalf("live after recovery: %+v", p)
	}

	// Window exceeded: told explicitly, no silent gap.
	c3 := e.connect(t, "alice")
	c3.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "small:r"})
	var s3 protocol.SubscribeResult
	_ = json.Unmarshal(c3.reply(2).Result, &s3)
	for i := 1; i <= 5; i++ {
		_, _ = e.gw.Publish(ctx, "small:r", i)
	}
	c4 := e.connect(t, "alice")
	c4.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "small:r", Since: &protocol.StreamPosition{Offset: 0, Epoch: s3.Epoch}})
	var s4 protocol.SubscribeResult
	_ = json.Unmarshal(c4.reply(2).Result, &s4)
	if s4.Recovered == nil || *s4.Recovered {
		t.Fatalf("window exceeded but recovered: %+v", s4)
	}
	// Wrong epoch: not recovered either.
	c4.sendCmd(3, "subscribe", protocol.SubscribeParams{Channel: "room:r", Since: &protocol.StreamPosition{Offset: 3, Epoch: "forged"}})
	var s5 protocol.SubscribeResult
	_ = json.Unmarshal(c4.reply(3).Result, &s5)
	if s5.Recovered == nil || *s5.Recovered || len(s5.Publications) != 0 {
		t.Fatalf("foreign epoch recovered: %+v", s5)
	}
}

func TestRecoveryUnderConcurrentPublishing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	c := e.connect(t, "alice")
	c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:c"})
	var sub protocol.SubscribeResult
	_ = json.Unmarshal(c.reply(2).Result, &sub)
	_ = c.ws.CloseNow()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 60; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = e.gw.Publish(ctx, "room:c", i)
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(10 * time.Millisecond)
	c2 := e.connect(t, "alice")
	c2.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:c", Since: &protocol.StreamPosition{Epoch: sub.Epoch}})
	var res protocol.SubscribeResult
	_ = json.Unmarshal(c2.reply(2).Result, &res)
	wg.Wait()
	close(stop)
	if res.Recovered == nil || !*res.Recovered {
		t.Fatalf("not recovered: %+v", res)
	}
	next := uint64(1)
	for _, p := range res.Publications {
		if p.Offset != next {
			t.Fatalf("recovered offset %d, want %d", p.Offset, next)
		}
		next++
	}
	for next <= 60 {
		p := c2.push()
		if p.Offset != next {
			t.Fatalf("push offset %d, want %d (gap or duplicate)", p.Offset, next)
		}
		next++
	}
}

func TestSlowConsumerClosedOthersReceive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.SendQueueMessages = 16 })
	ctx := context.Background()
	slow := e.connect(t, "slow")
	slow.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:f"})
	slow.reply(2)
	fast := e.connect(t, "fast")
	fast.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:f"})
	fast.reply(2)
	received := make(chan uint64, 4096)
	go func() {
		for {
			b, err := fast.read()
			if err != nil {
				close(received)
				return
			}
			var f protocol.ServerFrame
			_ = json.Unmarshal(b, &f)
			if f.Push != nil {
				received <- f.Push.Offset
			}
		}
	}()
	// The slow client never reads; big messages fill its socket buffers and
	// then its bounded queue. The fast client gets each message before the
	// next is published, so only the slow one falls behind.
	payload := strings.Repeat("x", 64<<10)
	const n = 400
	for want := uint64(1); want <= n; want++ {
		if _, err := e.gw.Publish(ctx, "room:f", payload); err != nil {
			t.Fatal(err)
		}
		select {
		case got, ok := <-received:
			if !ok || got != want {
				t.Fatalf("fast client: got %d (open %v), want %d", got, ok, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fast client stalled at %d", want)
		}
	}
	waitFor(t, "slow consumer event", func() bool { return e.events.has(audit.TypeSlowConsumer, "") })
	// Reading what it was sent, the slow client ends at a 4503 close.
	slow.expectClose(protocol.CloseSlowConsumer)
}

func TestShutdownSends1001(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c1 := e.connect(t, "alice")
	c2 := e.connect(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.gw.Shutdown(ctx) }()
	c1.expectClose(protocol.CloseGoingAway)
	c2.expectClose(protocol.CloseGoingAway)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := e.gw.Connections(); n != 0 {
		t.Fatalf("%d connections after shutdown", n)
	}
	resp, err := http.Get(e.srv.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after shutdown: %d", resp.StatusCode)
	}
	if _, err := e.gw.Publish(ctx, "room:a", 1); !errors.Is(err, livegate.ErrClosed) {
		t.Fatalf("publish after shutdown: %v", err)
	}
}

func TestUpgradeRequirements(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	// No subprotocol.
	_, resp, err := websocket.Dial(ctx, e.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no subprotocol: %v %v", err, resp)
	}
	// Foreign origin.
	_, resp, err = websocket.Dial(ctx, e.url, &websocket.DialOptions{
		Subprotocols: []string{protocol.Subprotocol},
		HTTPHeader:   http.Header{"Origin": {"https://evil.example"}},
	})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v", err, resp)
	}
	if !e.events.has(audit.TypeUpgradeRejected, "origin") {
		t.Fatal("no upgrade_rejected event")
	}
	// Same origin passes.
	host := strings.TrimPrefix(e.srv.URL, "http://")
	ws, _, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{
		Subprotocols: []string{protocol.Subprotocol},
		HTTPHeader:   http.Header{"Origin": {"http://" + host}},
	})
	if err != nil {
		t.Fatalf("same origin: %v", err)
	}
	_ = ws.CloseNow()
	// Plain GET.
	r, err := http.Get(e.srv.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d", r.StatusCode)
	}
}

func TestCommandRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.CommandRate = 1; c.CommandBurst = 5 })
	c := e.connect(t, "alice")
	limited := 0
	for i := 0; i < 20; i++ {
		c.sendCmd(uint64(100+i), "unsubscribe", protocol.UnsubscribeParams{Channel: "room:none"})
	}
	for {
		b, err := c.read()
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusCode(protocol.CloseRateLimited) {
				t.Fatalf("close: %v", err)
			}
			break
		}
		if strings.Contains(string(b), `"rate_limited"`) {
			limited++
		}
	}
	if limited != livegate.DefaultMaxRateWarnings {
		t.Fatalf("%d rate_limited warnings, want %d", limited, livegate.DefaultMaxRateWarnings)
	}
	if !e.events.has(audit.TypeRateLimitKick, "") {
		t.Fatal("no kick event")
	}
}

func TestRateLimitedCommandDoesNotRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.CommandRate = 0.001; c.CommandBurst = 1 })
	watcher := e.connect(t, "watcher")
	watcher.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "chat:x"})
	watcher.reply(2)
	c := e.connect(t, "alice")
	// The one token in the bucket goes to this publish.
	c.sendCmd(2, "publish", protocol.PublishParams{Channel: "chat:x", Data: json.RawMessage(`"first"`)})
	if r := c.reply(2); r.Error != nil {
		t.Fatal(r.Error)
	}
	// Over the limit: answered rate_limited and NOT published.
	c.sendCmd(3, "publish", protocol.PublishParams{Channel: "chat:x", Data: json.RawMessage(`"second"`)})
	if r := c.reply(3); r.Error == nil || r.Error.Code != protocol.CodeRateLimited {
		t.Fatalf("want rate_limited, got %+v", r)
	}
	if p := watcher.push(); string(p.Data) != `"first"` {
		t.Fatalf("first push %s", p.Data)
	}
	if _, err := e.gw.Publish(context.Background(), "chat:x", "marker"); err != nil {
		t.Fatal(err)
	}
	if p := watcher.push(); string(p.Data) != `"marker"` {
		t.Fatalf("rate-limited publish went through: %s", p.Data)
	}
}

func TestTokenExpiryAndRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.ExpiryJitter = time.Millisecond })
	short := func(user string, ttl time.Duration) (string, time.Time) {
		tok, id, err := e.signer.Sign(auth.Identity{User: user}, auth.KindConnect, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok, id.ExpiresAt
	}
	// Token times have second resolution: a few seconds of life keep the
	// connect clear of the expiry on a slow machine.
	// Without refresh the connection dies at expiry with 4409.
	tok, _ := short("alice", 3*time.Second)
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	if r := c.reply(1); r.Error != nil {
		t.Fatal(r.Error)
	}
	c.expectClose(protocol.CloseTokenExpired)

	// An invalid refresh is refused; one for the same user extends.
	tok, exp := short("bob", 3*time.Second)
	c2 := e.dial(t)
	c2.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	if r := c2.reply(1); r.Error != nil {
		t.Fatal(r.Error)
	}
	c2.sendCmd(2, "refresh", protocol.RefreshParams{Token: "garbage"})
	if r := c2.reply(2); r.Error == nil || r.Error.Code != protocol.CodeUnauthorized {
		t.Fatalf("invalid refresh: %+v", r)
	}
	fresh, _ := short("bob", time.Minute)
	c2.sendCmd(3, "refresh", protocol.RefreshParams{Token: fresh})
	if r := c2.reply(3); r.Error != nil {
		t.Fatalf("refresh: %+v", r.Error)
	}
	time.Sleep(time.Until(exp) + 500*time.Millisecond)
	c2.sendCmd(4, "subscribe", protocol.SubscribeParams{Channel: "room:alive"})
	if r := c2.reply(4); r.Error != nil {
		t.Fatalf("after refresh: %+v", r.Error)
	}
}

func TestHandleRejectsBadNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	h := livegate.HandlerFunc[struct{}](func(context.Context, *livegate.Request, struct{}) (any, error) { return nil, nil })
	for _, n := range []string{"__proto__", "Bad", "", "a-b"} {
		if err := e.gw.Handle(n, h); !errors.Is(err, livegate.ErrInvalidEventName) {
			t.Errorf("Handle(%q) = %v", n, err)
		}
	}
	if err := e.gw.Handle("ok", h); err != nil {
		t.Fatal(err)
	}
	if err := e.gw.Handle("ok", h); !errors.Is(err, livegate.ErrDuplicateHandler) {
		t.Errorf("duplicate: %v", err)
	}
}

func TestNewRejectsWeakConfig(t *testing.T) {
	t.Parallel()
	if _, err := livegate.New(livegate.Config{TokenHMACSecret: []byte("short")}); err == nil {
		t.Fatal("short secret accepted")
	}
	if _, err := livegate.New(livegate.Config{}); err == nil {
		t.Fatal("no key accepted")
	}
	if _, err := livegate.New(livegate.Config{TokenHMACSecret: testSecret, TokenAlgorithm: "none"}); err == nil {
		t.Fatal("alg none accepted")
	}
}

func TestIdlePeerIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.PingInterval = 100 * time.Millisecond
		c.PongTimeout = 100 * time.Millisecond
	})
	// A client that never reads never answers pings.
	e.connect(t, "alice")
	waitFor(t, "idle connection dropped", func() bool { return e.gw.Connections() == 0 })

	// One that reads answers pings and stays.
	alive := e.connect(t, "bob")
	go func() {
		for {
			if _, _, err := alive.ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	time.Sleep(600 * time.Millisecond)
	if n := e.gw.Connections(); n != 1 {
		t.Fatalf("reading client dropped: %d connections", n)
	}
}

func TestAbruptDisconnectsReleaseEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const n = 200
	for i := range n {
		c := e.connect(t, fmt.Sprintf("u%d", i))
		c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:shared"})
		c.reply(2)
		_ = c.ws.CloseNow() // no close handshake
	}
	waitFor(t, "connections released", func() bool { return e.gw.Connections() == 0 })
	// The channel has no local subscribers left: a publish reaches nobody
	// and a fresh subscriber gets exactly one push.
	c := e.connect(t, "last")
	c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:shared"})
	c.reply(2)
	if _, err := e.gw.Publish(context.Background(), "room:shared", 1); err != nil {
		t.Fatal(err)
	}
	if p := c.push(); p.Offset != 1 {
		t.Fatalf("push %+v", p)
	}
}
