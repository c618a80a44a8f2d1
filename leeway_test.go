package livegate_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/protocol"
)

var leewayJTI atomic.Int64

// leewayToken signs a connect token for alice issued at iat and expiring
// at exp, with a fresh id.
func leewayToken(t *testing.T, iat, exp time.Time) string {
	t.Helper()
	return signClaims(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{
		"sub": "alice", "aud": "livegate", "kind": "connect",
		"iat": iat.Unix(), "exp": exp.Unix(), "jti": "leeway-" + strconv.FormatInt(leewayJTI.Add(1), 10),
	})
}

// TestTokenLeeway checks Config.TokenLeeway with a gateway whose clock
// lags the host that mints tokens, and one whose clock runs ahead: without
// a leeway a token issued "in the future" is refused; with one, it is
// accepted, as is a token that expired less than the leeway ago, whose
// connection then counts as expired only at exp plus the leeway. A token
// that expired longer ago than the leeway is still refused.
func TestTokenLeeway(t *testing.T) {
	t.Parallel()
	base := time.Now().Truncate(time.Second)
	newLeewayEnv := func(leeway time.Duration) (*env, *fakeClock) {
		clock := newFakeClock(base)
		return newEnv(t, func(c *livegate.Config) {
			c.Now = clock.Now
			c.TokenLeeway = leeway
			c.ExpiryJitter = time.Hour // no expiry timer during the test
		}), clock
	}
	connect := func(e *env, token string) *rawConn {
		c := e.dial(t)
		c.send(`{"id":1,"method":"connect","params":{"token":"` + token + `"}}`)
		return c
	}
	ahead := leewayToken(t, base.Add(3*time.Second), base.Add(5*time.Minute))

	strict, _ := newLeewayEnv(0)
	connect(strict, ahead).expectClose(protocol.CloseUnauthorized)

	lenient, clock := newLeewayEnv(10 * time.Second)
	if r := connect(lenient, leewayToken(t, base.Add(3*time.Second), base.Add(5*time.Minute))).reply(1); r.Error != nil {
		t.Fatalf("token issued 3 s ahead, leeway 10 s: %+v", r.Error)
	}
	connect(lenient, leewayToken(t, base.Add(-time.Minute), base.Add(-15*time.Second))).expectClose(protocol.CloseUnauthorized)

	// Expired 5 s ago: accepted, and live until exp + 10 s = base + 5 s.
	c := connect(lenient, leewayToken(t, base.Add(-time.Minute), base.Add(-5*time.Second)))
	if r := c.reply(1); r.Error != nil {
		t.Fatalf("token expired 5 s ago, leeway 10 s: %+v", r.Error)
	}
	clock.Advance(4 * time.Second)
	c.sendCmd(2, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: "room:a"})
	if r := c.reply(2); r.Error != nil {
		t.Fatalf("command within the leeway: %+v", r.Error)
	}
	clock.Advance(2 * time.Second)
	c.sendCmd(3, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: "room:b"})
	c.expectClose(protocol.CloseTokenExpired)
}
