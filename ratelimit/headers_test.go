package ratelimit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/livegate/livegate/ratelimit"
)

func TestSetHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		res  ratelimit.Result
		want map[string]string // "" means absent
	}{
		{"allowed", ratelimit.Result{Allowed: true, Limit: 20, Remaining: 19, Reset: 3 * time.Second},
			map[string]string{"RateLimit-Limit": "20", "RateLimit-Remaining": "19", "RateLimit-Reset": "3", "Retry-After": ""}},
		{"reset rounds up", ratelimit.Result{Allowed: true, Limit: 20, Remaining: 0, Reset: 2*time.Second + 1},
			map[string]string{"RateLimit-Reset": "3", "Retry-After": ""}},
		{"full", ratelimit.Result{Allowed: true, Limit: 5, Remaining: 5},
			map[string]string{"RateLimit-Remaining": "5", "RateLimit-Reset": "0"}},
		{"denied", ratelimit.Result{Limit: 20, Reset: 59 * time.Second, RetryAfter: 1500 * time.Millisecond},
			map[string]string{"RateLimit-Remaining": "0", "RateLimit-Reset": "59", "Retry-After": "2"}},
		{"denied exact seconds", ratelimit.Result{Limit: 20, Reset: 4 * time.Second, RetryAfter: 4 * time.Second},
			map[string]string{"Retry-After": "4"}},
		{"retry at least one second", ratelimit.Result{Limit: 20, RetryAfter: time.Nanosecond},
			map[string]string{"Retry-After": "1"}},
		{"retry at least one second when zero", ratelimit.Result{},
			map[string]string{"RateLimit-Limit": "0", "Retry-After": "1"}},
		{"negative remaining clamped", ratelimit.Result{Limit: 1, Remaining: -3, RetryAfter: time.Second},
			map[string]string{"RateLimit-Remaining": "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			h.Set("Retry-After", "99") // stale value from an earlier decision
			ratelimit.SetHeaders(h, tt.res)
			for k, want := range tt.want {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}
