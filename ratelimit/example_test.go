package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/livegate/livegate/ratelimit"
)

// Connection attempts per IP: 3 per 10 seconds in any interval.
func ExampleMemory() {
	ctx := context.Background()
	lim, err := ratelimit.NewMemory(ratelimit.Per(3, 10*time.Second))
	if err != nil {
		panic(err)
	}
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC) // a fake clock
	for i := 0; i < 4; i++ {
		res, _ := lim.Allow(ctx, "203.0.113.7", now)
		fmt.Printf("allowed=%v remaining=%d retry=%v\n", res.Allowed, res.Remaining, res.RetryAfter)
	}
	// Another key has its own limit.
	res, _ := lim.Allow(ctx, "198.51.100.9", now)
	fmt.Println("other IP allowed:", res.Allowed)
	// Output:
	// allowed=true remaining=2 retry=0s
	// allowed=true remaining=1 retry=0s
	// allowed=true remaining=0 retry=0s
	// allowed=false remaining=0 retry=11s
	// other IP allowed: true
}

// Commands per connection: 100 per second with bursts of 20.
func ExampleBucket() {
	ctx := context.Background()
	lim, err := ratelimit.NewMemory(ratelimit.Bucket(100, 20))
	if err != nil {
		panic(err)
	}
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	allowed := 0
	for i := 0; i < 25; i++ {
		if res, _ := lim.Allow(ctx, "conn-1", now); res.Allowed {
			allowed++
		}
	}
	fmt.Println("burst allowed:", allowed)
	res, _ := lim.Allow(ctx, "conn-1", now.Add(10*time.Millisecond)) // one token refilled
	fmt.Println("after 10ms:", res.Allowed)
	// Output:
	// burst allowed: 20
	// after 10ms: true
}

// The owner sweeps idle records periodically to keep memory bounded.
func ExampleMemory_Sweep() {
	ctx := context.Background()
	lim, _ := ratelimit.NewMemory(ratelimit.PerMinute(20))
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	lim.Allow(ctx, "203.0.113.7", now)
	lim.Allow(ctx, "198.51.100.9", now.Add(50*time.Second))
	fmt.Println("records:", lim.Len())
	// A gateway runs this from a ticker: lim.Sweep(time.Now()).
	fmt.Println("removed:", lim.Sweep(now.Add(70*time.Second)))
	fmt.Println("records:", lim.Len())
	// Output:
	// records: 2
	// removed: 1
	// records: 1
}

// Refusing an HTTP request with 429 and the rate-limit headers. The event
// at 12:00:00 falls at the start of a 6s sub-window, so it is forgotten 66s
// later (a sliding window returns capacity between 1 and 1.1 windows late).
func ExampleSetHeaders() {
	lim, _ := ratelimit.NewMemory(ratelimit.PerMinute(1))
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := lim.Allow(r.Context(), "203.0.113.7", now)
		ratelimit.SetHeaders(w.Header(), res)
		if err != nil || !res.Allowed {
			http.Error(w, "too many requests", http.StatusTooManyRequests)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	for i := 0; i < 2; i++ {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		h := rec.Header()
		fmt.Printf("%d limit=%s remaining=%s reset=%s retry-after=%q\n", rec.Code,
			h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), h.Get("Retry-After"))
	}
	// Output:
	// 200 limit=1 remaining=0 reset=66 retry-after=""
	// 429 limit=1 remaining=0 reset=66 retry-after="66"
}

// Concurrent connections per IP: acquire on open, release on close.
func ExampleMemoryCounter() {
	ctx := context.Background()
	conns := ratelimit.NewMemoryCounter()
	for i := 0; i < 3; i++ {
		ok, _ := conns.Acquire(ctx, "203.0.113.7", 2)
		fmt.Println("open:", ok)
	}
	conns.Release(ctx, "203.0.113.7")
	conns.Release(ctx, "203.0.113.7")
	fmt.Println("keys left:", conns.Len())
	// Output:
	// open: true
	// open: true
	// open: false
	// keys left: 0
}

// Reconnect cooldown after a 4429 close.
func ExampleMemoryCooldown() {
	ctx := context.Background()
	cd := ratelimit.NewMemoryCooldown()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	cd.Block(ctx, "203.0.113.7", now.Add(5*time.Second))

	retry, blocked, _ := cd.Blocked(ctx, "203.0.113.7", now.Add(2*time.Second))
	fmt.Println(blocked, retry)
	_, blocked, _ = cd.Blocked(ctx, "203.0.113.7", now.Add(5*time.Second))
	fmt.Println(blocked)
	// Output:
	// true 3s
	// false
}
