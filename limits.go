package livegate

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
)

// Limits are the abuse limits of a Gateway. The zero value of every field
// is the default documented on it; a negative number turns that limit off.
type Limits struct {
	// AttemptsPerIP limits connection attempts (upgrades) per client IP;
	// default 20 a minute (sliding window). Over it the upgrade gets HTTP
	// 429 with Retry-After before any WebSocket exists.
	AttemptsPerIP ratelimit.Rule
	// AttemptsPerUser limits connects per user; default 20 a minute. The
	// user is only known from the connect frame: over it the connection is
	// closed 4429.
	AttemptsPerUser ratelimit.Rule
	// ConnsPerIP caps concurrent connections per client IP; default 10.
	// Over it the upgrade gets HTTP 429.
	ConnsPerIP int
	// ConnsPerUser caps concurrent connections per user; default 0: no cap.
	// Over it the connect is closed 4429.
	ConnsPerUser int
	// Cooldown refuses an IP whose connection was closed 4429 for this
	// long (HTTP 429 with Retry-After); default 5s.
	Cooldown time.Duration
	// TokensPerUser and TokensPerIP limit token issuance by TokenHandler;
	// defaults 10 and 30 a minute. Over them it answers 429.
	TokensPerUser ratelimit.Rule
	TokensPerIP   ratelimit.Rule
}

// Default limits.
const (
	DefaultAttemptsPerMinute = 20
	DefaultConnsPerIP        = 10
	DefaultCooldown          = 5 * time.Second
	DefaultTokensPerUser     = 10
	DefaultTokensPerIP       = 30
)

func (l *Limits) setDefaults() {
	rule := func(r *ratelimit.Rule, perMinute int) {
		if *r == (ratelimit.Rule{}) {
			*r = ratelimit.PerMinute(perMinute)
		}
	}
	rule(&l.AttemptsPerIP, DefaultAttemptsPerMinute)
	rule(&l.AttemptsPerUser, DefaultAttemptsPerMinute)
	rule(&l.TokensPerUser, DefaultTokensPerUser)
	rule(&l.TokensPerIP, DefaultTokensPerIP)
	if l.ConnsPerIP == 0 {
		l.ConnsPerIP = DefaultConnsPerIP
	}
	if l.Cooldown == 0 {
		l.Cooldown = DefaultCooldown
	}
}

// limiters are the gateway's live limit state.
type limiters struct {
	// nil when the limit is turned off
	attemptsIP, attemptsUser ratelimit.Limiter
	tokensUser, tokensIP     ratelimit.Limiter
	conns                    *ratelimit.MemoryCounter
	cooldown                 *ratelimit.MemoryCooldown
}

func newLimiters(l Limits) (*limiters, error) {
	out := &limiters{conns: ratelimit.NewMemoryCounter(), cooldown: ratelimit.NewMemoryCooldown()}
	for _, x := range []struct {
		name string
		rule ratelimit.Rule
		dst  *ratelimit.Limiter
	}{
		{"AttemptsPerIP", l.AttemptsPerIP, &out.attemptsIP},
		{"AttemptsPerUser", l.AttemptsPerUser, &out.attemptsUser},
		{"TokensPerUser", l.TokensPerUser, &out.tokensUser},
		{"TokensPerIP", l.TokensPerIP, &out.tokensIP},
	} {
		if disabled(x.rule) {
			continue
		}
		m, err := ratelimit.NewMemory(x.rule)
		if err != nil {
			return nil, fmt.Errorf("livegate: config Limits.%s: %w", x.name, err)
		}
		*x.dst = m
	}
	return out, nil
}

// disabled reports a rule turned off with a negative limit or rate.
func disabled(r ratelimit.Rule) bool { return r.Limit < 0 || r.Rate < 0 }

// sweep drops idle limiter records; it returns how many.
func (l *limiters) sweep(now time.Time) int {
	n := l.cooldown.Sweep(now)
	for _, m := range []ratelimit.Limiter{l.attemptsIP, l.attemptsUser, l.tokensUser, l.tokensIP} {
		if s, ok := m.(interface{ Sweep(time.Time) int }); ok {
			n += s.Sweep(now)
		}
	}
	return n
}

// allow checks one limiter (nil: no limit), failing closed on errors.
func allow(ctx context.Context, m ratelimit.Limiter, key string, now time.Time) ratelimit.Result {
	if m == nil {
		return ratelimit.Result{Allowed: true}
	}
	r, err := m.Allow(ctx, key, now)
	if err != nil {
		return ratelimit.Result{RetryAfter: time.Second}
	}
	return r
}

// admit applies the pre-upgrade limits to a request from ip: cooldown,
// attempts per IP, concurrent connections per IP. On success it holds one
// connection slot for ip, which release gives back.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, ip string) (reason string, ok bool) {
	now := g.cfg.Now()
	ctx := r.Context()
	if wait, blocked, err := g.limits.cooldown.Blocked(ctx, ip, now); blocked || err != nil {
		w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(wait), 10))
		return "cooldown", false
	}
	if res := allow(ctx, g.limits.attemptsIP, "ip:"+ip, now); !res.Allowed {
		ratelimit.SetHeaders(w.Header(), res)
		return "attempts_ip", false
	}
	if max := g.cfg.Limits.ConnsPerIP; max > 0 {
		if got, err := g.limits.conns.Acquire(ctx, "ip:"+ip, max); !got || err != nil {
			w.Header().Set("Retry-After", "5")
			return "conns_ip", false
		}
	}
	return "", true
}

// releaseIP gives back the connection slot admit took.
func (g *Gateway) releaseIP(ip string) {
	if g.cfg.Limits.ConnsPerIP > 0 {
		_ = g.limits.conns.Release(context.Background(), "ip:"+ip)
	}
}

// admitUser applies the per-user limits at connect. On success with a
// per-user cap it holds a slot, released when the connection ends.
func (c *conn) admitUser(user string) bool {
	g := c.g
	key := "u:" + c.identity().Tenant + "/" + user
	if res := allow(c.ctx, g.limits.attemptsUser, key, g.cfg.Now()); !res.Allowed {
		c.event(audit.TypeRateLimitKick, audit.SeverityWarning, "attempts_user", "")
		g.cfg.Metrics.RateLimited("attempts_user")
		c.refuse = "attempts_user"
		c.close(protocol.CloseRateLimited)
		return false
	}
	if max := g.cfg.Limits.ConnsPerUser; max > 0 {
		if got, err := g.limits.conns.Acquire(c.ctx, key, max); !got || err != nil {
			c.event(audit.TypeRateLimitKick, audit.SeverityWarning, "conns_user", "")
			g.cfg.Metrics.RateLimited("conns_user")
			c.refuse = "conns_user"
			c.close(protocol.CloseRateLimited)
			return false
		}
		c.userSlot = key
	}
	return true
}

// allowTokenIssue limits token issuance per user and per IP.
func (g *Gateway) allowTokenIssue(ctx context.Context, h http.Header, tenant, user, ip string) bool {
	now := g.cfg.Now()
	for _, x := range []struct {
		m   ratelimit.Limiter
		key string
	}{{g.limits.tokensUser, "u:" + tenant + "/" + user}, {g.limits.tokensIP, "ip:" + ip}} {
		if res := allow(ctx, x.m, x.key, now); !res.Allowed {
			ratelimit.SetHeaders(h, res)
			return false
		}
	}
	return true
}

func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
