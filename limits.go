package livegate

import (
	"context"
	"errors"
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
	// Store makes the limiters, counters and cooldowns above; default
	// ratelimit.MemoryStore{}, which keeps them in this process. A shared
	// store makes the limits hold across nodes. When it fails, admission
	// fails closed: upgrades get 503 with Retry-After, connects close 4500.
	Store ratelimit.Store
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
	if l.Store == nil {
		l.Store = ratelimit.MemoryStore{}
	}
}

// limiters are the gateway's live limit state. SetLimits replaces the
// whole value; the connection counter and cooldown are kept across
// replacements, so slots held under the old limits are released to the
// same counter.
type limiters struct {
	cfg   Limits
	store ratelimit.Store
	// nil when the limit is turned off
	attemptsIP, attemptsUser ratelimit.Limiter
	tokensUser, tokensIP     ratelimit.Limiter
	conns                    ratelimit.Counter
	cooldown                 ratelimit.Cooldown
}

// newLimiters builds the limiters of l; prev, when not nil, lends its
// counter and cooldown.
func newLimiters(l Limits, prev *limiters) (*limiters, error) {
	out := &limiters{cfg: l, store: l.Store}
	if prev != nil {
		out.conns, out.cooldown = prev.conns, prev.cooldown
	} else {
		out.conns, out.cooldown = l.Store.NewCounter("conns"), l.Store.NewCooldown("cooldown")
	}
	for _, x := range []struct {
		name, key string
		rule      ratelimit.Rule
		dst       *ratelimit.Limiter
	}{
		{"AttemptsPerIP", "attempts_ip", l.AttemptsPerIP, &out.attemptsIP},
		{"AttemptsPerUser", "attempts_user", l.AttemptsPerUser, &out.attemptsUser},
		{"TokensPerUser", "tokens_user", l.TokensPerUser, &out.tokensUser},
		{"TokensPerIP", "tokens_ip", l.TokensPerIP, &out.tokensIP},
	} {
		if disabled(x.rule) {
			continue
		}
		m, err := l.Store.NewLimiter(x.key, x.rule)
		if err != nil {
			return nil, fmt.Errorf("livegate: config Limits.%s: %w", x.name, err)
		}
		*x.dst = m
	}
	return out, nil
}

// disabled reports a rule turned off with a negative limit or rate.
func disabled(r ratelimit.Rule) bool { return r.Limit < 0 || r.Rate < 0 }

// sweep drops idle records of the limit values that keep them in memory
// (those with a Sweep method); it returns how many.
func (l *limiters) sweep(now time.Time) int {
	n := 0
	for _, m := range []any{l.cooldown, l.conns, l.attemptsIP, l.attemptsUser, l.tokensUser, l.tokensIP} {
		n += sweepValue(m, now)
	}
	return n
}

// sweepValue calls v's Sweep method, whichever of the two usual forms it has.
func sweepValue(v any, now time.Time) int {
	switch s := v.(type) {
	case interface{ Sweep(time.Time) int }:
		return s.Sweep(now)
	case interface{ Sweep() int }:
		return s.Sweep()
	}
	return 0
}

// SetLimits replaces the gateway's limits without a restart. Open
// connections stay; every check from now on uses the new limits (the
// counts of rate limits start afresh). Limits.Store cannot change: a nil
// Store keeps the current one, a different one is refused. Invalid limits
// are refused and the current ones stay in force.
func (g *Gateway) SetLimits(l Limits) error {
	g.limitsMu.Lock()
	defer g.limitsMu.Unlock()
	cur := g.limits.Load()
	if l.Store == nil {
		l.Store = cur.store
	} else if !sameStore(l.Store, cur.store) {
		return errors.New("livegate: SetLimits cannot change Limits.Store")
	}
	l.setDefaults()
	next, err := newLimiters(l, cur)
	if err != nil {
		return err
	}
	g.limits.Store(next)
	return nil
}

func sameStore(a, b ratelimit.Store) (same bool) {
	defer func() {
		if recover() != nil { // incomparable dynamic types
			same = false
		}
	}()
	return a == b
}

// allow checks one limiter (nil: no limit), failing closed on errors.
func allow(ctx context.Context, m ratelimit.Limiter, key string, now time.Time) ratelimit.Result {
	r, _ := allowErr(ctx, m, key, now)
	return r
}

// allowErr is allow that also returns the store's error, so callers can
// tell a store failure (unavailable) from a limit hit.
func allowErr(ctx context.Context, m ratelimit.Limiter, key string, now time.Time) (ratelimit.Result, error) {
	if m == nil {
		return ratelimit.Result{Allowed: true}, nil
	}
	r, err := m.Allow(ctx, key, now)
	if err != nil {
		return ratelimit.Result{RetryAfter: time.Second}, err
	}
	return r, nil
}

// admission is why admit refused an upgrade.
type admission struct {
	reason string
	// status is 429 for a limit hit, 503 when a limit store failed.
	status int
}

// storeRetryAfter is the Retry-After sent when a limit store fails.
const storeRetryAfter = "5"

// admit applies the pre-upgrade limits to a request from ip: cooldown,
// attempts per IP, concurrent connections per IP. On success it reports
// whether it holds one connection slot for ip, which releaseIP gives back.
// A failing limit store refuses (fail closed) with 503.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, ip string) (refused *admission, slot bool) {
	now := g.cfg.Now()
	ctx := r.Context()
	l := g.limits.Load()
	storeFailed := func(reason string, err error) (*admission, bool) {
		g.cfg.Logger.ErrorContext(ctx, "limit store", "limit", reason, "err", err)
		w.Header().Set("Retry-After", storeRetryAfter)
		return &admission{reason: reason + "_store", status: http.StatusServiceUnavailable}, false
	}
	wait, blocked, err := l.cooldown.Blocked(ctx, ip, now)
	if err != nil {
		return storeFailed("cooldown", err)
	}
	if blocked {
		w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(wait), 10))
		return &admission{reason: "cooldown", status: http.StatusTooManyRequests}, false
	}
	res, err := allowErr(ctx, l.attemptsIP, "ip:"+ip, now)
	if err != nil {
		return storeFailed("attempts_ip", err)
	}
	if !res.Allowed {
		ratelimit.SetHeaders(w.Header(), res)
		return &admission{reason: "attempts_ip", status: http.StatusTooManyRequests}, false
	}
	if max := l.cfg.ConnsPerIP; max > 0 {
		got, err := l.conns.Acquire(ctx, "ip:"+ip, max)
		if err != nil {
			return storeFailed("conns_ip", err)
		}
		if !got {
			w.Header().Set("Retry-After", "5")
			return &admission{reason: "conns_ip", status: http.StatusTooManyRequests}, false
		}
		return nil, true
	}
	return nil, false
}

// releaseIP gives back the connection slot admit took.
func (g *Gateway) releaseIP(ip string) {
	_ = g.limits.Load().conns.Release(context.Background(), "ip:"+ip)
}

// admitUser applies the per-user limits at connect. On success with a
// per-user cap it holds a slot, released when the connection ends. A
// failing limit store closes the connection 4500 (fail closed).
func (c *conn) admitUser(user string) bool {
	g := c.g
	l := g.limits.Load()
	key := "u:" + c.identity().Tenant + "/" + user
	storeFailed := func(reason string, err error) bool {
		g.cfg.Logger.Error("limit store", "limit", reason, "err", err)
		c.event(audit.TypeAuthFailed, audit.SeverityCritical, reason+"_store", "")
		c.refuse = "store"
		c.close(protocol.CloseInternal)
		return false
	}
	res, err := allowErr(c.ctx, l.attemptsUser, key, g.cfg.Now())
	if err != nil {
		return storeFailed("attempts_user", err)
	}
	if !res.Allowed {
		c.event(audit.TypeRateLimitKick, audit.SeverityWarning, "attempts_user", "")
		g.cfg.Metrics.RateLimited("attempts_user")
		c.refuse = "attempts_user"
		c.close(protocol.CloseRateLimited)
		return false
	}
	if max := l.cfg.ConnsPerUser; max > 0 {
		got, err := l.conns.Acquire(c.ctx, key, max)
		if err != nil {
			return storeFailed("conns_user", err)
		}
		if !got {
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
// It returns 0 when issuance may go ahead, else the HTTP status to answer:
// 429 over a limit, 503 when the limit store failed.
func (g *Gateway) allowTokenIssue(ctx context.Context, h http.Header, tenant, user, ip string) int {
	now := g.cfg.Now()
	l := g.limits.Load()
	for _, x := range []struct {
		m   ratelimit.Limiter
		key string
	}{{l.tokensUser, "u:" + tenant + "/" + user}, {l.tokensIP, "ip:" + ip}} {
		res, err := allowErr(ctx, x.m, x.key, now)
		if err != nil {
			g.cfg.Logger.ErrorContext(ctx, "limit store", "limit", "token_issue", "err", err)
			h.Set("Retry-After", storeRetryAfter)
			return http.StatusServiceUnavailable
		}
		if !res.Allowed {
			ratelimit.SetHeaders(h, res)
			return http.StatusTooManyRequests
		}
	}
	return 0
}

func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
