package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/livegate/livegate/ratelimit"
)

// LimitStore is a ratelimit.Store whose limiters, counters and cooldowns
// live in Redis, so a limit holds across every node using it. Get it from
// Engine.LimitStore.
//
// Every decision is one atomic Lua script. Limiters decide at the now the
// caller passes, not at Redis's clock, with the same algorithms and
// results as ratelimit.Memory; Redis's clock only sets when idle records
// are dropped, a little after they stopped restricting anything.
//
// When Redis is unreachable every method returns an error wrapping
// ErrUnavailable, with Allowed false, acquired false or blocked true: the
// gateway refuses (fails closed).
type LimitStore struct{ e *Engine }

var _ ratelimit.Store = (*LimitStore)(nil)

// minWindow is the shortest Window of the window strategies: sub-window
// numbers of shorter windows would exceed what Lua numbers hold exactly.
const minWindow = time.Millisecond

// expirySlack is added to the TTL of every limiter record.
const expirySlack = time.Second

// limitKey returns an unambiguous key for (kind, name, key).
func (s *LimitStore) limitKey(kind, name, key string) string {
	return s.e.key("rl:", kind, ":", strconv.Itoa(len(name)), ":", name, ":", key)
}

// NewLimiter returns a Limiter enforcing rule under name. Rules are
// validated as ratelimit.NewMemory does; SlidingWindow and FixedWindow
// rules must also have a Window of at least a millisecond.
func (s *LimitStore) NewLimiter(name string, rule ratelimit.Rule) (ratelimit.Limiter, error) {
	m, err := ratelimit.NewMemory(rule)
	if err != nil {
		return nil, err
	}
	rule = m.Rule()
	if rule.Strategy != ratelimit.TokenBucket && rule.Window < minWindow {
		return nil, fmt.Errorf("%w: window must be at least %v with a Redis store, got %v", ratelimit.ErrInvalidRule, minWindow, rule.Window)
	}
	l := &Limiter{s: s, name: name, rule: rule}
	switch rule.Strategy {
	case ratelimit.SlidingWindow:
		l.period = (int64(rule.Window) + slidingSlots - 1) / slidingSlots
		l.ttl = durMillis(time.Duration(l.period*slidingRing) + expirySlack)
	case ratelimit.FixedWindow:
		l.period = int64(rule.Window)
		l.ttl = durMillis(rule.Window + expirySlack)
	default:
		l.ttl = durMillis(rule.Window + expirySlack)
	}
	return l, nil
}

// NewCounter returns a Counter under name.
func (s *LimitStore) NewCounter(name string) ratelimit.Counter {
	return &Counter{s: s, name: name}
}

// NewCooldown returns a Cooldown under name.
func (s *LimitStore) NewCooldown(name string) ratelimit.Cooldown {
	return &Cooldown{s: s, name: name}
}

// Limiter is a ratelimit.Limiter backed by Redis. Make it with
// LimitStore.NewLimiter.
type Limiter struct {
	s      *LimitStore
	name   string
	rule   ratelimit.Rule
	period int64 // window (fixed) or sub-window (sliding) length in ns
	ttl    int64 // record TTL in ms
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// Rule returns the rule l enforces, with derived fields filled in.
func (l *Limiter) Rule() ratelimit.Rule { return l.rule }

// Allow counts one event for key at now if the rule allows it and returns
// the key's state, as ratelimit.Memory.Allow does. On error nothing is
// counted and Allowed is false.
func (l *Limiter) Allow(ctx context.Context, key string, now time.Time) (ratelimit.Result, error) {
	fail := ratelimit.Result{Limit: l.rule.Limit}
	ctx, cancel, err := l.s.e.op(ctx)
	if err != nil {
		return fail, err
	}
	defer cancel()
	var res ratelimit.Result
	switch l.rule.Strategy {
	case ratelimit.TokenBucket:
		res, err = l.allowBucket(ctx, key, now)
	case ratelimit.SlidingWindow:
		res, err = l.allowSliding(ctx, key, now)
	default:
		res, err = l.allowFixed(ctx, key, now)
	}
	if err != nil {
		return fail, l.s.e.wrap("allow", err)
	}
	return res, nil
}

// floorDiv returns a/b rounded towards negative infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

var fixedLua = goredis.NewScript(`
local cur, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'i', 'c')
local idx, c = tonumber(st[1]), tonumber(st[2])
if not idx or cur > idx then idx = cur; c = 0 end
local allowed = 0
if c < limit then
  c = c + 1
  allowed = 1
  redis.call('HSET', KEYS[1], 'i', string.format('%d', idx), 'c', c)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {allowed, idx, c}
`)

func (l *Limiter) allowFixed(ctx context.Context, key string, now time.Time) (ratelimit.Result, error) {
	ns := now.UnixNano()
	cur := floorDiv(ns, l.period)
	raw, err := fixedLua.Run(ctx, l.s.e.rdb, []string{l.s.limitKey("fw", l.name, key)}, cur, l.rule.Limit, l.ttl).Int64Slice()
	if err != nil {
		return ratelimit.Result{}, err
	}
	if len(raw) != 3 {
		return ratelimit.Result{}, errMalformed
	}
	cur, count := raw[1], raw[2]
	res := ratelimit.Result{Allowed: raw[0] == 1, Limit: l.rule.Limit, Remaining: l.rule.Limit - int(count)}
	if count > 0 {
		res.Reset = time.Duration((cur+1)*l.period - ns)
	}
	if !res.Allowed {
		res.RetryAfter = res.Reset
	}
	return res, nil
}

// Sliding windows are split in slidingSlots sub-windows; slidingRing
// counters are kept, as in ratelimit.Memory.
const (
	slidingSlots = 10
	slidingRing  = slidingSlots + 1
)

var slidingLua = goredis.NewScript(`
local cur, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'h', 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'c10')
local counts = {}
for i = 0, 10 do counts[i] = tonumber(st[i + 2]) or 0 end
local head = tonumber(st[1]) or cur
if cur > head then
  local n = math.min(cur - head, 11)
  for i = 1, n do counts[(head + i) % 11] = 0 end
  head = cur
end
local total = 0
for i = 0, 10 do total = total + counts[i] end
local allowed = 0
if total < limit then
  counts[head % 11] = counts[head % 11] + 1
  allowed = 1
  local args = {'h', string.format('%d', head)}
  for i = 0, 10 do
    args[#args + 1] = 'c' .. i
    args[#args + 1] = counts[i]
  end
  redis.call('HSET', KEYS[1], unpack(args))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local out = {allowed, head}
for i = 0, 10 do out[#out + 1] = counts[i] end
return out
`)

func ringIndex(i int64) int {
	r := i % slidingRing
	if r < 0 {
		r += slidingRing
	}
	return int(r)
}

func (l *Limiter) allowSliding(ctx context.Context, key string, now time.Time) (ratelimit.Result, error) {
	ns := now.UnixNano()
	cur := floorDiv(ns, l.period)
	raw, err := slidingLua.Run(ctx, l.s.e.rdb, []string{l.s.limitKey("sw", l.name, key)}, cur, l.rule.Limit, l.ttl).Int64Slice()
	if err != nil {
		return ratelimit.Result{}, err
	}
	if len(raw) != 2+slidingRing {
		return ratelimit.Result{}, errMalformed
	}
	cur = raw[1]
	counts := raw[2:]
	var count int64
	for _, c := range counts {
		count += c
	}
	limit := int64(l.rule.Limit)
	res := ratelimit.Result{Allowed: raw[0] == 1, Limit: l.rule.Limit, Remaining: int(limit - count)}
	oldest := cur - slidingSlots
	for i := cur; i >= oldest; i-- {
		if counts[ringIndex(i)] != 0 {
			res.Reset = time.Duration((i+slidingRing)*l.period - ns)
			break
		}
	}
	if !res.Allowed {
		need := count - limit + 1
		var freed int64
		for i := oldest; i <= cur; i++ {
			freed += counts[ringIndex(i)]
			if freed >= need {
				res.RetryAfter = time.Duration((i+slidingRing)*l.period - ns)
				break
			}
		}
	}
	return res, nil
}

// bucketLua is golang.org/x/time/rate's AllowN(t, 1) with t the latest
// time seen for the key, as ratelimit.Memory does. Times are passed as
// (Unix seconds, nanoseconds) so that Lua's doubles hold them exactly;
// the elapsed time becomes seconds the way time.Duration.Seconds does, so
// the token counts are bit-for-bit those of rate.Limiter.
var bucketLua = goredis.NewScript(`
local sec, nsec = tonumber(ARGV[1]), tonumber(ARGV[2])
local rate, burst = tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 'tk', 'ls', 'ln', 'ss', 'sn')
local tsec, tnsec = sec, nsec
local tokens, ls, ln = burst, nil, nil
if st[1] then
  tokens, ls, ln = tonumber(st[1]), tonumber(st[2]), tonumber(st[3])
  local ss, sn = tonumber(st[4]), tonumber(st[5])
  if ss > sec or (ss == sec and sn > nsec) then tsec, tnsec = ss, sn end
end
local function advance()
  if not ls then return burst end
  local es, en = tsec - ls, tnsec - ln
  if en < 0 then es = es - 1; en = en + 1000000000 end
  if es < 0 then return math.min(tokens, burst) end
  local tk = tokens + (es + en / 1e9) * rate
  if tk > burst then tk = burst end
  return tk
end
local tk = advance() - 1
local allowed = 0
if tk >= 0 or (-tk / rate) * 1e9 < 1 then
  allowed = 1
  tokens, ls, ln = tk, tsec, tnsec
end
redis.call('HSET', KEYS[1], 'tk', string.format('%.17g', tokens), 'ls', string.format('%d', ls),
  'ln', string.format('%d', ln), 'ss', string.format('%d', tsec), 'sn', string.format('%d', tnsec))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {allowed, string.format('%.17g', tokens), ls, ln, tsec, tnsec}
`)

func (l *Limiter) allowBucket(ctx context.Context, key string, now time.Time) (ratelimit.Result, error) {
	sec, nsec := splitTime(now)
	raw, err := bucketLua.Run(ctx, l.s.e.rdb, []string{l.s.limitKey("tb", l.name, key)},
		sec, nsec, strconv.FormatFloat(l.rule.Rate, 'g', -1, 64), l.rule.Burst, l.ttl).Slice()
	if err != nil {
		return ratelimit.Result{}, err
	}
	if len(raw) != 6 {
		return ratelimit.Result{}, errMalformed
	}
	var ints [5]int64
	for i, j := range []int{0, 2, 3, 4, 5} {
		v, ok := raw[j].(int64)
		if !ok {
			return ratelimit.Result{}, errMalformed
		}
		ints[i] = v
	}
	limTokens, err := strconv.ParseFloat(fmt.Sprint(raw[1]), 64)
	if err != nil {
		return ratelimit.Result{}, errMalformed
	}
	last := time.Unix(ints[1], ints[2])
	t := time.Unix(ints[3], ints[4])
	b := bucket{rate: l.rule.Rate, burst: float64(l.rule.Burst), tokens: limTokens, last: last}

	res := ratelimit.Result{Allowed: ints[0] == 1, Limit: l.rule.Burst}
	tokens := b.tokensAt(t)
	if tokens > 0 {
		res.Remaining = int(tokens)
	}
	if w := b.tokenWait(t, b.burst-tokens, b.burst); w > 0 {
		res.Reset = w + t.Sub(now)
	}
	if !res.Allowed {
		res.RetryAfter = b.retryWait(t, tokens) + t.Sub(now)
	}
	return res, nil
}

// splitTime returns t as Unix seconds and nanoseconds in [0, 1e9).
func splitTime(t time.Time) (int64, int64) {
	return t.Unix(), int64(t.Nanosecond())
}

// bucket is the state of a rate.Limiter: tokens at last.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// tokensAt is rate.Limiter.TokensAt.
func (b bucket) tokensAt(t time.Time) float64 {
	last := b.last
	if t.Before(last) {
		last = t
	}
	tk := b.tokens + t.Sub(last).Seconds()*b.rate
	if tk > b.burst {
		tk = b.burst
	}
	return tk
}

// tokenWait is ratelimit.Memory's: how long from t until the bucket holds
// want tokens, lacking missing of them at t.
func (b bucket) tokenWait(t time.Time, missing, want float64) time.Duration {
	if missing <= 0 {
		return 0
	}
	d := ceilDuration(missing / b.rate)
	for i := 0; i < 4 && b.tokensAt(t.Add(d)) < want; i++ {
		d++
	}
	return d
}

// retryWait is ratelimit.Memory's: the shortest wait from t after which
// one event is allowed, given tokens < 1 at t.
func (b bucket) retryWait(t time.Time, tokens float64) time.Duration {
	allows := func(d time.Duration) bool {
		tok := b.tokensAt(t.Add(d))
		return tok >= 1 || time.Duration((1-tok)/b.rate*float64(time.Second)) == 0
	}
	d := max(ceilDuration((1-tokens)/b.rate)-1, 1)
	for i := 0; i < 4 && d > 1 && allows(d-1); i++ {
		d--
	}
	for i := 0; i < 4 && !allows(d); i++ {
		d++
	}
	return d
}

// ceilDuration converts seconds to a Duration, rounding up to the next
// nanosecond and saturating at the largest Duration.
func ceilDuration(seconds float64) time.Duration {
	ns := math.Ceil(seconds * float64(time.Second))
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	if ns <= 0 {
		return 0
	}
	return time.Duration(ns)
}

// Counter is a ratelimit.Counter backed by Redis: one hash per key with a
// count per Engine instance. An instance's counts are dropped by the next
// Acquire of the key once its liveness key expired (Options.NodeTTL
// after it stopped refreshing it), so the slots of a node that died come
// back within NodeTTL. Make it with LimitStore.NewCounter.
//
// The Acquire script reads liveness keys it does not declare, so it needs
// a single Redis (or a Redis Cluster with the Counter's keys and liveness
// keys in one slot), not a sharded cluster.
type Counter struct {
	s    *LimitStore
	name string
}

var _ ratelimit.Counter = (*Counter)(nil)

var acquireLua = goredis.NewScript(`
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local holder, n = fields[i], tonumber(fields[i + 1])
  if holder ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. holder) == 0 then
    redis.call('HDEL', KEYS[1], holder)
  else
    total = total + n
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
`)

var releaseLua = goredis.NewScript(`
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if not n or n < 1 then return 0 end
if n == 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
end
return 1
`)

// Acquire implements ratelimit.Counter. A max below 1 admits nobody.
func (c *Counter) Acquire(ctx context.Context, key string, max int) (bool, error) {
	ctx, cancel, err := c.s.e.op(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	if max < 1 {
		return false, nil
	}
	ok, err := acquireLua.Run(ctx, c.s.e.rdb, []string{c.s.limitKey("cnt", c.name, key)},
		c.s.e.holder, max, c.s.e.key("node:")).Int()
	if err != nil {
		return false, c.s.e.wrap("acquire", err)
	}
	return ok == 1, nil
}

// Release implements ratelimit.Counter. It returns ratelimit.ErrNotAcquired
// when this Engine holds no slot of key (also when its slots were dropped
// because its liveness key had expired). Like ratelimit.MemoryCounter it
// does not stop for a done ctx: a slot must be given back even while
// shutting down.
func (c *Counter) Release(ctx context.Context, key string) error {
	ctx, cancel, err := c.s.e.op(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	defer cancel()
	ok, err := releaseLua.Run(ctx, c.s.e.rdb, []string{c.s.limitKey("cnt", c.name, key)}, c.s.e.holder).Int()
	if err != nil {
		return c.s.e.wrap("release", err)
	}
	if ok != 1 {
		return ratelimit.ErrNotAcquired
	}
	return nil
}

// Cooldown is a ratelimit.Cooldown backed by Redis: one key per blocked
// key, expiring at the block's end. Make it with LimitStore.NewCooldown.
type Cooldown struct {
	s    *LimitStore
	name string
}

var _ ratelimit.Cooldown = (*Cooldown)(nil)

// blockLua keeps the later of the stored and the new end; ends are
// 20-digit Unix nanoseconds, so comparing strings compares times.
var blockLua = goredis.NewScript(`
local old = redis.call('GET', KEYS[1])
if old and old >= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return 1
`)

// Block implements ratelimit.Cooldown. A block never shortens a longer
// one. The record expires at until by Redis's clock (plus a second).
func (c *Cooldown) Block(ctx context.Context, key string, until time.Time) error {
	ctx, cancel, err := c.s.e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	ns := max(until.UnixNano(), 0)
	at := ns/int64(time.Millisecond) + 1 + int64(expirySlack/time.Millisecond)
	err = blockLua.Run(ctx, c.s.e.rdb, []string{c.s.limitKey("cd", c.name, key)}, fmt.Sprintf("%020d", ns), at).Err()
	return c.s.e.wrap("block", err)
}

// Blocked implements ratelimit.Cooldown. On error blocked is true, so a
// caller that ignores the error still refuses.
func (c *Cooldown) Blocked(ctx context.Context, key string, now time.Time) (time.Duration, bool, error) {
	ctx, cancel, err := c.s.e.op(ctx)
	if err != nil {
		return 0, true, err
	}
	defer cancel()
	v, err := c.s.e.rdb.Get(ctx, c.s.limitKey("cd", c.name, key)).Result()
	if err == goredis.Nil {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, c.s.e.wrap("blocked", err)
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, true, errMalformed
	}
	until := time.Unix(0, ns)
	if !now.Before(until) {
		return 0, false, nil
	}
	return until.Sub(now), true, nil
}
