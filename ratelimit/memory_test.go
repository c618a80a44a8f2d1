package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate/ratelimit"
)

// epoch is the fake clock's origin: a whole hour in Unix time, so window
// boundaries aligned to the Unix epoch fall on whole offsets from it.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// at returns the fake time d after epoch.
func at(d time.Duration) time.Time { return epoch.Add(d) }

func newMemory(t testing.TB, r ratelimit.Rule) *ratelimit.Memory {
	t.Helper()
	m, err := ratelimit.NewMemory(r)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func allow(t testing.TB, l ratelimit.Limiter, key string, now time.Time) ratelimit.Result {
	t.Helper()
	res, err := l.Allow(context.Background(), key, now)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func fixed(n int, w time.Duration) ratelimit.Rule {
	return ratelimit.Rule{Strategy: ratelimit.FixedWindow, Limit: n, Window: w}
}

// step is one Allow call and the Result it must return.
type step struct {
	at   time.Duration
	key  string // "k" when empty
	want ratelimit.Result
}

func runSteps(t *testing.T, rule ratelimit.Rule, steps []step) {
	t.Helper()
	m := newMemory(t, rule)
	for i, s := range steps {
		key := s.key
		if key == "" {
			key = "k"
		}
		if got := allow(t, m, key, at(s.at)); got != s.want {
			t.Errorf("step %d (Allow %q at +%v):\n got %+v\nwant %+v", i, key, s.at, got, s.want)
		}
	}
}

func ok(limit, remaining int, reset time.Duration) ratelimit.Result {
	return ratelimit.Result{Allowed: true, Limit: limit, Remaining: remaining, Reset: reset}
}

func denied(limit, remaining int, reset, retry time.Duration) ratelimit.Result {
	return ratelimit.Result{Limit: limit, Remaining: remaining, Reset: reset, RetryAfter: retry}
}

func TestStrategies(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		name  string
		rule  ratelimit.Rule
		steps []step
	}{
		{
			// Ten sub-windows of 1s; events at 0.5s count until 11s.
			name: "sliding window limit, retry and reset",
			rule: ratelimit.Per(3, 10*time.Second),
			steps: []step{
				{at: 500 * ms, want: ok(3, 2, 10500*ms)},
				{at: 500 * ms, want: ok(3, 1, 10500*ms)},
				{at: 2500 * ms, want: ok(3, 0, 10500*ms)},
				{at: 2500 * ms, want: denied(3, 0, 10500*ms, 8500*ms)},
				{at: 10999 * ms, want: denied(3, 0, 2001*ms, 1*ms)},
				// Both 0.5s events leave at 11s: two slots free.
				{at: 11000 * ms, want: ok(3, 1, 11000*ms)},
				{at: 11000 * ms, want: ok(3, 0, 11000*ms)},
				// The 2.5s event leaves at 13s.
				{at: 12000 * ms, want: denied(3, 0, 10000*ms, 1000*ms)},
				{at: 13000 * ms, want: ok(3, 0, 11000*ms)},
				// Keys are independent.
				{at: 13000 * ms, key: "other", want: ok(3, 2, 11000*ms)},
				// Long idle: everything forgotten.
				{at: time.Hour, want: ok(3, 2, 11*time.Second)},
			},
		},
		{
			name: "sliding window denial waits for enough sub-windows",
			rule: ratelimit.Per(4, 10*time.Second),
			steps: []step{
				{at: 0, want: ok(4, 3, 11*time.Second)},
				{at: 3 * time.Second, want: ok(4, 2, 11*time.Second)},
				{at: 3 * time.Second, want: ok(4, 1, 11*time.Second)},
				{at: 5 * time.Second, want: ok(4, 0, 11*time.Second)},
				// Reset: the 5s event leaves at 16s; RetryAfter: the 0s event at 11s.
				{at: 9 * time.Second, want: denied(4, 0, 7*time.Second, 2*time.Second)},
				{at: 11 * time.Second, want: ok(4, 0, 11*time.Second)},
				// Both 3s events must leave (at 14s) before one more fits.
				{at: 11 * time.Second, want: denied(4, 0, 11*time.Second, 3*time.Second)},
			},
		},
		{
			name: "fixed window resets at epoch-aligned boundaries",
			rule: fixed(2, time.Minute),
			steps: []step{
				{at: 59 * time.Second, want: ok(2, 1, time.Second)},
				{at: 59 * time.Second, want: ok(2, 0, time.Second)},
				{at: 59*time.Second + 999*ms, want: denied(2, 0, ms, ms)},
				{at: time.Minute, want: ok(2, 1, time.Minute)},
				{at: time.Minute + 30*time.Second, want: ok(2, 0, 30*time.Second)},
				{at: time.Minute + 30*time.Second, want: denied(2, 0, 30*time.Second, 30*time.Second)},
				{at: 2*time.Minute - 1, want: denied(2, 0, 1, 1)},
				{at: 5 * time.Minute, want: ok(2, 1, time.Minute)},
			},
		},
		{
			// 10 tokens per second: one token every 100ms. rate.Limiter
			// allows an event once the missing part of its token is worth
			// less than a nanosecond, so RetryAfter is 1ns short of the
			// round figure.
			name: "token bucket burst, refill, retry and reset",
			rule: ratelimit.Bucket(10, 3),
			steps: []step{
				{at: 0, want: ok(3, 2, 100*ms)},
				{at: 0, want: ok(3, 1, 200*ms)},
				{at: 0, want: ok(3, 0, 300*ms)},
				{at: 0, want: denied(3, 0, 300*ms, 100*ms-1)},
				{at: 40 * ms, want: denied(3, 0, 260*ms, 60*ms-1)},
				{at: 100 * ms, want: ok(3, 0, 300*ms)},
				// 1.5 tokens at 250ms; 0.5 left after the event.
				{at: 250 * ms, want: ok(3, 0, 250*ms)},
				{at: 250 * ms, want: denied(3, 0, 250*ms, 50*ms-1)},
				{at: time.Hour, want: ok(3, 2, 100*ms)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runSteps(t, tt.rule, tt.steps)
		})
	}
}

// TestTimeGoesBackwards checks that a time earlier than one already seen for
// a key (racing goroutines) never lets through an event the limit forbids.
func TestTimeGoesBackwards(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rule  ratelimit.Rule
		steps []step
	}{
		{
			// Unclamped, the 9s event would set the bucket's clock back and
			// the interval 9s–10s would refill twice.
			name: "token bucket",
			rule: ratelimit.Bucket(1, 2),
			steps: []step{
				{at: 10 * time.Second, want: ok(2, 1, time.Second)},
				{at: 9 * time.Second, want: ok(2, 0, 3*time.Second)},
				{at: 10 * time.Second, want: denied(2, 0, 2*time.Second, time.Second-1)},
				{at: 9 * time.Second, want: denied(2, 0, 3*time.Second, 2*time.Second-1)},
			},
		},
		{
			// The 3.5s event is counted in the 5s sub-window, so it is
			// still counted at 14.5s.
			name: "sliding window",
			rule: ratelimit.Per(2, 10*time.Second),
			steps: []step{
				{at: 5500 * time.Millisecond, want: ok(2, 1, 10500*time.Millisecond)},
				{at: 3500 * time.Millisecond, want: ok(2, 0, 12500*time.Millisecond)},
				{at: 14500 * time.Millisecond, want: denied(2, 0, 1500*time.Millisecond, 1500*time.Millisecond)},
				{at: 16 * time.Second, want: ok(2, 1, 11*time.Second)},
			},
		},
		{
			name: "fixed window",
			rule: fixed(1, 10*time.Second),
			steps: []step{
				{at: 15 * time.Second, want: ok(1, 0, 5*time.Second)},
				{at: 5 * time.Second, want: denied(1, 0, 15*time.Second, 15*time.Second)},
				{at: 20 * time.Second, want: ok(1, 0, 10*time.Second)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runSteps(t, tt.rule, tt.steps)
		})
	}
}

var strategyRules = []struct {
	name string
	rule ratelimit.Rule
}{
	{"token bucket", ratelimit.Bucket(7, 5)},
	{"token bucket slow", ratelimit.Bucket(0.3, 2)},
	{"sliding window", ratelimit.Per(5, 7*time.Second)},
	{"sliding window odd ns", ratelimit.Per(3, 1234567*time.Nanosecond)},
	{"fixed window", fixed(5, 7*time.Second)},
}

// TestRetryAfter checks, at many clock phases, that RetryAfter is exact:
// one nanosecond earlier the event is still refused, at RetryAfter it
// passes.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tt := range strategyRules {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(1, 2))
			for phase := 0; phase < 50; phase++ {
				now := at(time.Duration(rng.Int64N(int64(time.Minute))))
				m := newMemory(t, tt.rule)
				limit := m.Rule().Limit

				// Exhaust the key with events spread a little in time.
				var last ratelimit.Result
				for last.Allowed || last.Limit == 0 {
					last = allow(t, m, "k", now)
					if last.Allowed {
						now = now.Add(time.Duration(rng.Int64N(int64(m.Rule().Window) / int64(4*limit))))
					}
				}
				if last.RetryAfter <= 0 || last.Remaining != 0 {
					t.Fatalf("denial %+v: want RetryAfter > 0 and Remaining 0", last)
				}
				if last.Reset < last.RetryAfter {
					t.Errorf("Reset %v < RetryAfter %v", last.Reset, last.RetryAfter)
				}
				if r := allow(t, m, "k", now.Add(last.RetryAfter-1)); r.Allowed {
					t.Fatalf("phase %d: allowed 1ns before RetryAfter %v", phase, last.RetryAfter)
				}
				if r := allow(t, m, "k", now.Add(last.RetryAfter)); !r.Allowed {
					t.Fatalf("phase %d: refused at RetryAfter %v: %+v", phase, last.RetryAfter, r)
				}
			}
		})
	}
}

// TestResetMeansFull checks that Reset after any event is exactly when the
// key would allow a full Limit again: one nanosecond earlier it would not.
func TestResetMeansFull(t *testing.T) {
	t.Parallel()
	for _, tt := range strategyRules {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(3, 4))
			for trial := 0; trial < 30; trial++ {
				start := at(time.Duration(rng.Int64N(int64(time.Minute))))
				events := 1 + rng.IntN(5)
				window := newMemory(t, tt.rule).Rule().Window
				gaps := make([]time.Duration, events)
				for i := range gaps {
					gaps[i] = time.Duration(rng.Int64N(int64(window) / 3))
				}
				// replay builds a limiter with the same history and returns
				// it with the Result of the last event and its time.
				replay := func() (*ratelimit.Memory, ratelimit.Result, time.Time) {
					m := newMemory(t, tt.rule)
					now := start
					var res ratelimit.Result
					for _, g := range gaps {
						now = now.Add(g)
						res = allow(t, m, "k", now)
					}
					return m, res, now
				}
				_, res, now := replay()
				if res.Reset <= 0 {
					t.Fatalf("Reset %v after events", res.Reset)
				}
				full := func(when time.Time) bool {
					m, _, _ := replay()
					r := allow(t, m, "k", when)
					return r.Allowed && r.Remaining == r.Limit-1
				}
				if !full(now.Add(res.Reset)) {
					t.Errorf("trial %d: not full at Reset %v", trial, res.Reset)
				}
				if full(now.Add(res.Reset - 1)) {
					t.Errorf("trial %d: already full 1ns before Reset %v", trial, res.Reset)
				}
			}
		})
	}
}

// TestSlidingWindowNeverExceeds drives a sliding window with random traffic
// and checks against the exact event log that no interval of length Window
// ever holds more than Limit events, and that every refusal happened with
// Limit events in the last Window plus one sub-window (capacity comes back
// at most 1.1 Windows after an event).
func TestSlidingWindowNeverExceeds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit  int
		window time.Duration
		maxGap time.Duration
	}{
		{1, time.Second, 300 * time.Millisecond},
		{5, 10 * time.Second, 2 * time.Second},
		{20, time.Minute, 5 * time.Second},
		{20, time.Minute, 500 * time.Millisecond},
		{100, 999 * time.Millisecond, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d per %v", tt.limit, tt.window), func(t *testing.T) {
			t.Parallel()
			m := newMemory(t, ratelimit.Per(tt.limit, tt.window))
			sub := (tt.window + 9) / 10
			rng := rand.New(rand.NewPCG(5, uint64(tt.limit)))
			var log []time.Time // allowed events, in order
			inWindow := func(end time.Time, length time.Duration) int {
				n := 0
				for i := len(log) - 1; i >= 0 && log[i].After(end.Add(-length)); i-- {
					n++
				}
				return n
			}
			now := at(time.Duration(rng.Int64N(int64(tt.window))))
			for i := 0; i < 5000; i++ {
				if rng.IntN(4) == 0 {
					now = now.Add(time.Duration(rng.Int64N(int64(tt.maxGap))))
				}
				res := allow(t, m, "k", now)
				if res.Allowed {
					log = append(log, now)
					if n := inWindow(now, tt.window); n > tt.limit {
						t.Fatalf("%d events in the window ending %v, limit %d", n, now.Sub(epoch), tt.limit)
					}
				} else if n := inWindow(now, tt.window+sub); n < tt.limit {
					t.Fatalf("refused with only %d events in the last %v", n, tt.window+sub)
				}
				if want := tt.limit - inWindow(now, tt.window+sub); res.Remaining > tt.limit-inWindow(now, tt.window) || res.Remaining < want {
					t.Fatalf("Remaining %d out of range", res.Remaining)
				}
			}
			if len(log) < tt.limit {
				t.Fatalf("only %d events allowed", len(log))
			}
		})
	}
}

// TestConcurrentNeverExceeds hammers one key from many goroutines at the
// same instant: exactly Limit events pass, whatever the interleaving.
func TestConcurrentNeverExceeds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule ratelimit.Rule
	}{
		{"token bucket", ratelimit.Bucket(0.001, 100)},
		{"sliding window", ratelimit.PerMinute(100)},
		{"fixed window", fixed(100, time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMemory(t, tt.rule)
			now := at(time.Second)
			const goroutines, attempts, keys = 64, 20, 4
			var allowed [keys]atomic.Int64
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < attempts; i++ {
						k := (g + i) % keys
						res, err := m.Allow(context.Background(), fmt.Sprint("key", k), now)
						if err != nil {
							t.Error(err)
							return
						}
						if res.Allowed {
							allowed[k].Add(1)
						}
					}
				}()
			}
			wg.Wait()
			for k := range allowed {
				if got := allowed[k].Load(); got != 100 {
					t.Errorf("key%d: %d events allowed, want exactly 100", k, got)
				}
			}
			if m.Len() != keys {
				t.Errorf("Len() = %d, want %d", m.Len(), keys)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule ratelimit.Rule
		// events: key → times
		events map[string][]time.Duration
		// sweeps: at → keys removed
		sweeps []struct {
			at      time.Duration
			removed int
		}
	}{
		{
			// a at 0 is full again at 1s; b at 0.5s at 1.5s.
			name:   "token bucket",
			rule:   ratelimit.Bucket(1, 2),
			events: map[string][]time.Duration{"a": {0}, "b": {500 * time.Millisecond}},
			sweeps: []struct {
				at      time.Duration
				removed int
			}{{999 * time.Millisecond, 0}, {1200 * time.Millisecond, 1}, {1499 * time.Millisecond, 0}, {1500 * time.Millisecond, 1}},
		},
		{
			// Sub-windows of 1s: a (0.5s) is forgotten at 11s, b (9.5s) at 20s.
			name:   "sliding window",
			rule:   ratelimit.Per(2, 10*time.Second),
			events: map[string][]time.Duration{"a": {500 * time.Millisecond}, "b": {9500 * time.Millisecond}},
			sweeps: []struct {
				at      time.Duration
				removed int
			}{{10999 * time.Millisecond, 0}, {11 * time.Second, 1}, {19 * time.Second, 0}, {20 * time.Second, 1}},
		},
		{
			name:   "fixed window",
			rule:   fixed(2, 10*time.Second),
			events: map[string][]time.Duration{"a": {5 * time.Second}, "b": {15 * time.Second}},
			sweeps: []struct {
				at      time.Duration
				removed int
			}{{16 * time.Second, 1}, {19 * time.Second, 0}, {20 * time.Second, 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMemory(t, tt.rule)
			for key, times := range tt.events {
				for _, d := range times {
					allow(t, m, key, at(d))
				}
			}
			want := len(tt.events)
			if m.Len() != want {
				t.Fatalf("Len() = %d, want %d", m.Len(), want)
			}
			for _, s := range tt.sweeps {
				if got := m.Sweep(at(s.at)); got != s.removed {
					t.Errorf("Sweep(+%v) = %d, want %d", s.at, got, s.removed)
				}
				want -= s.removed
				if m.Len() != want {
					t.Errorf("after Sweep(+%v) Len() = %d, want %d", s.at, m.Len(), want)
				}
			}
		})
	}
}

// TestSweepKeepsDecisions checks that sweeping never changes a decision: a
// swept limiter and an unswept one answer the same to the same traffic.
func TestSweepKeepsDecisions(t *testing.T) {
	t.Parallel()
	for _, tt := range strategyRules {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			swept, plain := newMemory(t, tt.rule), newMemory(t, tt.rule)
			rng := rand.New(rand.NewPCG(7, 8))
			now := epoch
			window := swept.Rule().Window
			for i := 0; i < 3000; i++ {
				now = now.Add(time.Duration(rng.Int64N(int64(window) / 4)))
				key := fmt.Sprint("k", rng.IntN(8))
				a, b := allow(t, swept, key, now), allow(t, plain, key, now)
				if a != b {
					t.Fatalf("event %d: swept %+v, unswept %+v", i, a, b)
				}
				if rng.IntN(3) == 0 {
					swept.Sweep(now)
				}
			}
		})
	}
}

func TestAllowContextDone(t *testing.T) {
	t.Parallel()
	for _, tt := range strategyRules {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMemory(t, tt.rule)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			res, err := m.Allow(ctx, "k", epoch)
			if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "ratelimit: ") {
				t.Errorf("err = %v, want prefixed context.Canceled", err)
			}
			if res.Allowed {
				t.Error("Allowed with a done context")
			}
			if m.Len() != 0 {
				t.Errorf("Len() = %d after refused call, want 0", m.Len())
			}
		})
	}
}

// TestKeyNotRetained checks that a record does not keep the caller's key
// buffer: mutating the bytes the key came from changes nothing.
func TestKeyNotRetained(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.PerMinute(1))
	buf := []byte("203.0.113.7")
	key := unsafeString(buf)
	allow(t, m, key, epoch)
	copy(buf, "198.51.100.9")
	if r := allow(t, m, "203.0.113.7", epoch); r.Allowed {
		t.Error("stored key changed with the caller's buffer")
	}
}

// TestBeforeUnixEpoch checks window alignment for times before 1970, where
// Unix nanoseconds are negative and division must round down.
func TestBeforeUnixEpoch(t *testing.T) {
	t.Parallel()
	unix := func(sec float64) time.Time { return time.Unix(0, int64(sec*1e9)) }
	fw := newMemory(t, fixed(1, 10*time.Second))
	if r := allow(t, fw, "k", unix(-15)); !r.Allowed || r.Reset != 5*time.Second {
		t.Errorf("fixed at -15s: %+v, want allowed with Reset 5s", r)
	}
	if r := allow(t, fw, "k", unix(-10.5)); r.Allowed || r.RetryAfter != 500*time.Millisecond {
		t.Errorf("fixed at -10.5s: %+v, want refused for 0.5s", r)
	}
	if r := allow(t, fw, "k", unix(-10)); !r.Allowed {
		t.Errorf("fixed at -10s: %+v, want allowed in the next window", r)
	}
	sw := newMemory(t, ratelimit.Per(1, 10*time.Second))
	if r := allow(t, sw, "k", unix(-0.5)); !r.Allowed || r.Reset != 10500*time.Millisecond {
		t.Errorf("sliding at -0.5s: %+v, want allowed with Reset 10.5s", r)
	}
	// The -0.5s event sits in sub-window [-1s, 0s) and leaves at 10s.
	if r := allow(t, sw, "k", unix(9.999999999)); r.Allowed || r.RetryAfter != 1 {
		t.Errorf("sliding just before 10s: %+v, want refused for 1ns", r)
	}
	if r := allow(t, sw, "k", unix(10)); !r.Allowed {
		t.Errorf("sliding at 10s: %+v, want allowed", r)
	}
}
