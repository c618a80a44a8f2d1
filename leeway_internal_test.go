package livegate

import (
	"strings"
	"testing"
	"time"
)

// TestTokenLeewayConfig checks the bound of TokenLeeway and that
// revocations outlast every token the leeway still accepts.
func TestTokenLeewayConfig(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	for _, bad := range []time.Duration{-time.Second, MaxTokenLeeway + time.Second} {
		c := Config{TokenHMACSecret: secret, TokenLeeway: bad}
		c.setDefaults()
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), "TokenLeeway") {
			t.Errorf("TokenLeeway %v: %v, want refused", bad, err)
		}
	}
	now := time.Unix(1767225600, 0)
	g, err := New(Config{TokenHMACSecret: secret, TokenLeeway: 30 * time.Second, ExpiryJitter: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got, want := g.revocationUntil().Sub(now), DefaultMaxTokenLifetime+time.Minute+30*time.Second; got != want {
		t.Fatalf("revocations kept %v, want %v (lifetime + jitter + leeway)", got, want)
	}
}
