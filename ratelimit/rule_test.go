package ratelimit_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/ratelimit"
)

func TestStrategyString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    ratelimit.Strategy
		want string
	}{
		{ratelimit.TokenBucket, "token_bucket"},
		{ratelimit.SlidingWindow, "sliding_window"},
		{ratelimit.FixedWindow, "fixed_window"},
		{ratelimit.Strategy(7), "Strategy(7)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Strategy(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestRuleConstructors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  ratelimit.Rule
		want ratelimit.Rule
	}{
		{"PerSecond", ratelimit.PerSecond(5), ratelimit.Rule{Strategy: ratelimit.SlidingWindow, Limit: 5, Window: time.Second}},
		{"PerMinute", ratelimit.PerMinute(20), ratelimit.Rule{Strategy: ratelimit.SlidingWindow, Limit: 20, Window: time.Minute}},
		{"PerHour", ratelimit.PerHour(3), ratelimit.Rule{Strategy: ratelimit.SlidingWindow, Limit: 3, Window: time.Hour}},
		{"Per", ratelimit.Per(7, 10*time.Second), ratelimit.Rule{Strategy: ratelimit.SlidingWindow, Limit: 7, Window: 10 * time.Second}},
		{"Bucket", ratelimit.Bucket(100, 20), ratelimit.Rule{Strategy: ratelimit.TokenBucket, Rate: 100, Burst: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("got %+v, want %+v", tt.got, tt.want)
			}
			if err := tt.got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestRuleValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rule    ratelimit.Rule
		wantErr string // substring; empty means valid
	}{
		{"sliding ok", ratelimit.PerMinute(1), ""},
		{"fixed ok", ratelimit.Rule{Strategy: ratelimit.FixedWindow, Limit: 1, Window: time.Nanosecond}, ""},
		{"bucket ok", ratelimit.Bucket(0.5, 1), ""},
		{"bucket from limit and window", ratelimit.Rule{Strategy: ratelimit.TokenBucket, Limit: 60, Window: time.Minute}, ""},
		{"zero rule", ratelimit.Rule{}, "rate must be positive"},
		{"zero limit", ratelimit.PerMinute(0), "limit must be between"},
		{"negative limit", ratelimit.PerMinute(-1), "limit must be between"},
		{"huge limit", ratelimit.PerMinute(math.MaxInt32 + 1), "limit must be between"},
		{"zero window", ratelimit.Per(1, 0), "window must be positive"},
		{"negative window", ratelimit.Rule{Strategy: ratelimit.FixedWindow, Limit: 1, Window: -time.Second}, "window must be positive"},
		{"huge window", ratelimit.Per(1, math.MaxInt64), "window must be positive"},
		{"zero rate", ratelimit.Bucket(0, 1), "rate must be positive"},
		{"negative rate", ratelimit.Bucket(-1, 1), "rate must be positive"},
		{"NaN rate", ratelimit.Bucket(math.NaN(), 1), "rate must be positive"},
		{"infinite rate", ratelimit.Bucket(math.Inf(1), 1), "rate must be positive"},
		{"tiny rate", ratelimit.Bucket(1e-12, 1), "too low"},
		{"zero burst", ratelimit.Bucket(1, 0), "burst must be between"},
		{"unknown strategy", ratelimit.Rule{Strategy: 9, Limit: 1, Window: time.Second}, "unknown strategy Strategy(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.rule.Validate()
			_, newErr := ratelimit.NewMemory(tt.rule)
			if tt.wantErr == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, NewMemory = %v; want nil", err, newErr)
				}
				return
			}
			for _, e := range []error{err, newErr} {
				if !errors.Is(e, ratelimit.ErrInvalidRule) {
					t.Fatalf("error %v does not wrap ErrInvalidRule", e)
				}
				if !strings.HasPrefix(e.Error(), "ratelimit: ") || !strings.Contains(e.Error(), tt.wantErr) {
					t.Errorf("error %q, want prefix %q and %q", e, "ratelimit: ", tt.wantErr)
				}
			}
		})
	}
}

func TestMemoryRuleNormalized(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule ratelimit.Rule
		want ratelimit.Rule
	}{
		{"bucket", ratelimit.Bucket(100, 20),
			ratelimit.Rule{Strategy: ratelimit.TokenBucket, Limit: 20, Window: 200 * time.Millisecond, Rate: 100, Burst: 20}},
		{"bucket ignores limit and window", ratelimit.Rule{Strategy: ratelimit.TokenBucket, Limit: 5, Window: time.Hour, Rate: 2, Burst: 4},
			ratelimit.Rule{Strategy: ratelimit.TokenBucket, Limit: 4, Window: 2 * time.Second, Rate: 2, Burst: 4}},
		{"bucket from limit and window", ratelimit.Rule{Strategy: ratelimit.TokenBucket, Limit: 60, Window: time.Minute},
			ratelimit.Rule{Strategy: ratelimit.TokenBucket, Limit: 60, Window: time.Minute, Rate: 1, Burst: 60}},
		{"sliding unchanged", ratelimit.PerMinute(20), ratelimit.PerMinute(20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := ratelimit.NewMemory(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Rule(); got != tt.want {
				t.Errorf("Rule() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
