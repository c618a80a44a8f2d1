// Package ratelimit decides, per key, whether an event may happen: how many
// connection attempts an IP may make per minute, how many commands a
// connection may send per second, how many sockets a user may hold open at
// once, and whether an IP is cooling down after being kicked.
//
// # Limiters
//
// A [Rule] describes one limit and its [Strategy]:
//
//   - [TokenBucket]: Rate events per second with bursts of up to Burst; each
//     key gets a [golang.org/x/time/rate.Limiter].
//   - [SlidingWindow]: at most Limit events in any interval of length Window.
//     The window is tracked in ten sub-windows counted conservatively, so the
//     limit is never exceeded; capacity comes back between one Window and
//     1.1 Windows after an event (see [SlidingWindow]).
//   - [FixedWindow]: at most Limit events per window, windows aligned to the
//     Unix epoch. Cheapest, but up to 2×Limit may pass around a boundary.
//
// [PerSecond], [PerMinute], [PerHour], [Per] and [Bucket] build common rules.
// [NewMemory] returns the in-memory [Limiter]; a Redis one with the same
// interface shares limits across gateway nodes. The simplest use:
//
//	lim, err := ratelimit.NewMemory(ratelimit.PerMinute(20))
//	...
//	res, err := lim.Allow(ctx, clientIP, time.Now())
//	if err != nil || !res.Allowed {
//		ratelimit.SetHeaders(w.Header(), res)
//		http.Error(w, "too many requests", http.StatusTooManyRequests)
//		return
//	}
//
// Time is a parameter, as in golang.org/x/time/rate: every call takes now,
// so tests drive a fake clock and never sleep. Times that go backwards for a
// key (goroutines racing with slightly different clocks) are treated as the
// latest time already seen for that key, which never grants extra events.
//
// [Result] carries what the RateLimit-* and Retry-After headers need;
// [SetHeaders] writes them.
//
// # Memory
//
// A [Memory] creates a record for a key only in Allow and never forgets one
// by itself: its owner must call [Memory.Sweep] periodically (the gateway's
// sweeper does), which removes the records that no longer restrict their key.
// Between sweeps memory grows with the number of distinct keys seen; see
// BenchmarkMemoryPerKey for the bytes per key. [MemoryCounter] removes a key
// when its count drops to zero and [MemoryCooldown] forgets a key when its
// block has expired (on Blocked or [MemoryCooldown.Sweep]), so neither
// leaks.
//
// # Concurrency caps and cooldowns
//
// A [Counter] caps concurrent use of a key, such as open connections per IP:
// Acquire when a connection opens, Release when it closes. A [Cooldown]
// refuses a key until a given time, such as an IP whose connection was
// closed with 4429.
//
// # Concurrency and errors
//
// All types are safe for concurrent use. Keys are spread over 64
// mutex-guarded shards chosen with [hash/maphash]; each operation holds one
// shard's lock briefly. Allow, Acquire, Release and Blocked allocate only
// when they create a record.
//
// Interface methods take a context and return an error because the
// implementations backed by a network store can fail; the in-memory ones
// fail only when the context is already done. On error a [Result] has
// Allowed false, so a caller that ignores the error still fails closed.
// Every error this package returns starts with "ratelimit: ".
package ratelimit
