package ratelimit

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// Result is the outcome of one [Limiter.Allow] call, with what the
// RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset and Retry-After
// headers need (see [SetHeaders]).
type Result struct {
	// Allowed reports whether the event may happen. When it is true the
	// event has been counted.
	Allowed bool
	// Limit is the rule's Limit (Burst for a token bucket).
	Limit int
	// Remaining is the number of further events allowed right now, after
	// this one if it was allowed.
	Remaining int
	// Reset is how long until the key's window or bucket is full again,
	// that is until Remaining would be Limit; zero if it already is.
	Reset time.Duration
	// RetryAfter is, when Allowed is false, how long until the next event
	// would be allowed if no other event happens meanwhile; always
	// positive then. It is zero when Allowed is true.
	RetryAfter time.Duration
}

// Limiter decides per key whether one event may happen at now.
//
// Implementations are safe for concurrent use. An error means the decision
// could not be made (context done, store unreachable); the Result then has
// Allowed false, and callers should refuse the event.
type Limiter interface {
	// Allow counts one event for key at now if the rule allows it, and
	// reports the key's state either way.
	Allow(ctx context.Context, key string, now time.Time) (Result, error)
}

// Memory is an in-process [Limiter] enforcing one [Rule] per key. Records
// live in 64 shards keyed with [hash/maphash], each behind its own mutex.
//
// A record is created by the first Allow for a key and stays until
// [Memory.Sweep] finds it idle, so the owner must call Sweep periodically;
// the gateway's sweeper does. Allow for a key that already has a record does
// not allocate.
//
// Memory is safe for concurrent use.
type Memory struct {
	rule    Rule
	limit   uint32
	period  int64 // window (fixed) or sub-window (sliding) length in ns
	buckets *table[bucketState]
	sliding *table[slidingState]
	fixed   *table[fixedState]
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an empty in-memory limiter for rule, or an error
// wrapping [ErrInvalidRule] if the rule cannot be enforced.
func NewMemory(rule Rule) (*Memory, error) {
	rule, err := rule.normalize()
	if err != nil {
		return nil, err
	}
	m := &Memory{rule: rule, limit: uint32(rule.Limit)} // #nosec G115 -- normalize keeps Limit in [1, MaxInt32]
	switch rule.Strategy {
	case TokenBucket:
		m.buckets = newTable[bucketState]()
	case SlidingWindow:
		// Rounding the sub-window up makes the tracked span at least
		// Window, so that no event in the last Window is ever missed.
		m.period = (int64(rule.Window) + slidingSlots - 1) / slidingSlots
		m.sliding = newTable[slidingState]()
	case FixedWindow:
		m.period = int64(rule.Window)
		m.fixed = newTable[fixedState]()
	}
	return m, nil
}

// Rule returns the rule m enforces, with derived fields filled in (Limit and
// Window for a token bucket).
func (m *Memory) Rule() Rule { return m.rule }

// Allow counts one event for key at now if the rule allows it and returns
// the key's state. The only error is a done context, wrapped, in which case
// nothing is counted and Allowed is false.
func (m *Memory) Allow(ctx context.Context, key string, now time.Time) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{Limit: m.rule.Limit}, ctxErr(err)
	}
	switch m.rule.Strategy {
	case TokenBucket:
		return m.allowBucket(key, now), nil
	case SlidingWindow:
		return m.allowSliding(key, now), nil
	default:
		return m.allowFixed(key, now), nil
	}
}

// Sweep removes the records that no longer restrict their key at now (a
// full bucket, a window with no counted event) and returns how many it
// removed. Removing them changes no future decision. It locks one shard at a
// time, so Allow calls proceed meanwhile.
func (m *Memory) Sweep(now time.Time) int {
	switch m.rule.Strategy {
	case TokenBucket:
		burst := float64(m.rule.Burst)
		return m.buckets.sweep(func(b bucketState) bool { return b.idle(now, burst) })
	case SlidingWindow:
		cur := floorDiv(now.UnixNano(), m.period)
		return m.sliding.sweep(func(s slidingState) bool { return s.idle(cur) })
	default:
		cur := floorDiv(now.UnixNano(), m.period)
		return m.fixed.sweep(func(s fixedState) bool { return s.idle(cur) })
	}
}

// Len returns the number of keys with a record.
func (m *Memory) Len() int {
	switch m.rule.Strategy {
	case TokenBucket:
		return m.buckets.len()
	case SlidingWindow:
		return m.sliding.len()
	default:
		return m.fixed.len()
	}
}

// bucketState is a token bucket record. last is the latest time seen for
// the key: rate.Limiter treats an earlier time as a new starting point for
// refilling, which would credit the same interval twice, so earlier times
// are raised to last before they reach it.
type bucketState struct {
	lim  *rate.Limiter
	last time.Time
}

func (b bucketState) idle(now time.Time, burst float64) bool {
	if now.Before(b.last) {
		now = b.last
	}
	return b.lim.TokensAt(now) >= burst
}

func (m *Memory) allowBucket(key string, now time.Time) Result {
	s := m.buckets.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if !ok {
		b = bucketState{lim: rate.NewLimiter(rate.Limit(m.rule.Rate), m.rule.Burst), last: now}
		s.m[ownKey(key)] = b
	} else if now.After(b.last) {
		b.last = now
		s.m[key] = b
	}
	t := b.last // now, unless now is earlier than a time already seen

	res := Result{Limit: m.rule.Burst}
	res.Allowed = b.lim.AllowN(t, 1)
	tokens := b.lim.TokensAt(t)
	if tokens > 0 {
		res.Remaining = int(tokens)
	}
	if w := m.tokenWait(b.lim, t, float64(m.rule.Burst)-tokens, float64(m.rule.Burst)); w > 0 {
		res.Reset = w + t.Sub(now)
	}
	if !res.Allowed {
		res.RetryAfter = m.retryWait(b.lim, t, tokens) + t.Sub(now)
	}
	return res
}

// tokenWait returns how long from t until lim holds want tokens, given that
// it lacks missing of them at t: missing/Rate rounded up to the nanosecond,
// then corrected for floating-point error so that lim really holds want
// tokens at t plus the result.
func (m *Memory) tokenWait(lim *rate.Limiter, t time.Time, missing, want float64) time.Duration {
	if missing <= 0 {
		return 0
	}
	d := ceilDuration(missing / m.rule.Rate)
	for i := 0; i < 4 && lim.TokensAt(t.Add(d)) < want; i++ {
		d++
	}
	return d
}

// retryWait returns the shortest wait from t after which lim.AllowN(·, 1)
// succeeds, given that lim holds tokens < 1 at t. rate.Limiter allows an
// event as soon as the wait for its missing fraction of a token truncates to
// zero nanoseconds, slightly before the token is whole, so the wait is found
// with that same test rather than with TokensAt >= 1.
func (m *Memory) retryWait(lim *rate.Limiter, t time.Time, tokens float64) time.Duration {
	allows := func(d time.Duration) bool {
		tok := lim.TokensAt(t.Add(d))
		return tok >= 1 || time.Duration((1-tok)/m.rule.Rate*float64(time.Second)) == 0
	}
	d := max(ceilDuration((1-tokens)/m.rule.Rate)-1, 1)
	for i := 0; i < 4 && d > 1 && allows(d-1); i++ {
		d--
	}
	for i := 0; i < 4 && !allows(d); i++ {
		d++
	}
	return d
}

// slidingSlots is the number of sub-windows per SlidingWindow window.
const slidingSlots = 10

// slidingRing is the number of sub-window counters kept: a window that does
// not start on a sub-window boundary overlaps slidingSlots+1 of them.
const slidingRing = slidingSlots + 1

// slidingState is a SlidingWindow record: the counts of the sub-windows
// head-slidingSlots through head, sub-window i at counts[i%slidingRing].
type slidingState struct {
	head   int64
	counts [slidingRing]uint32
}

func ringIndex(i int64) int {
	r := i % slidingRing
	if r < 0 {
		r += slidingRing
	}
	return int(r)
}

// advance moves head forward to cur, clearing the sub-windows that leave
// the window. It never moves head back.
func (s *slidingState) advance(cur int64) {
	if cur <= s.head {
		return
	}
	n := min(cur-s.head, slidingRing)
	for i := int64(1); i <= n; i++ {
		s.counts[ringIndex(s.head+i)] = 0
	}
	s.head = cur
}

func (s *slidingState) total() uint32 {
	var n uint32
	for _, c := range s.counts {
		n += c
	}
	return n
}

func (s slidingState) idle(cur int64) bool {
	s.advance(cur)
	return s.total() == 0
}

func (m *Memory) allowSliding(key string, now time.Time) Result {
	ns := now.UnixNano()
	cur := floorDiv(ns, m.period)
	s := m.sliding.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[key]
	if !ok {
		st.head = cur
	}
	st.advance(cur)
	cur = st.head // later than now's sub-window if time went backwards

	res := Result{Limit: m.rule.Limit}
	count := st.total()
	if count < m.limit {
		st.counts[ringIndex(cur)]++
		count++
		res.Allowed = true
		if ok {
			s.m[key] = st
		} else {
			s.m[ownKey(key)] = st
		}
	}
	res.Remaining = int(m.limit - count)

	// Sub-window i stops counting at the start of sub-window i+slidingRing.
	oldest := cur - slidingSlots
	for i := cur; i >= oldest; i-- {
		if st.counts[ringIndex(i)] != 0 {
			res.Reset = time.Duration((i+slidingRing)*m.period - ns)
			break
		}
	}
	if !res.Allowed {
		// Drop sub-windows oldest first until one more event fits.
		need := count - m.limit + 1
		var freed uint32
		for i := oldest; i <= cur; i++ {
			freed += st.counts[ringIndex(i)]
			if freed >= need {
				res.RetryAfter = time.Duration((i+slidingRing)*m.period - ns)
				break
			}
		}
	}
	return res
}

// fixedState is a FixedWindow record: count events in window number index.
type fixedState struct {
	index int64
	count uint32
}

func (s fixedState) idle(cur int64) bool {
	return cur > s.index || s.count == 0
}

func (m *Memory) allowFixed(key string, now time.Time) Result {
	ns := now.UnixNano()
	cur := floorDiv(ns, m.period)
	s := m.fixed.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[key]
	switch {
	case !ok || cur > st.index:
		st = fixedState{index: cur}
	default:
		cur = st.index // later than now's window if time went backwards
	}

	res := Result{Limit: m.rule.Limit}
	if st.count < m.limit {
		st.count++
		res.Allowed = true
		if ok {
			s.m[key] = st
		} else {
			s.m[ownKey(key)] = st
		}
	}
	res.Remaining = int(m.limit - st.count)
	if st.count > 0 {
		res.Reset = time.Duration((cur+1)*m.period - ns)
	}
	if !res.Allowed {
		res.RetryAfter = res.Reset
	}
	return res
}

// floorDiv returns a/b rounded towards negative infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
