package redis_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/broker/brokertest"
	"github.com/livegate/livegate/internal/poll"
	"github.com/livegate/livegate/ratelimit"
	"github.com/livegate/livegate/redis"
)

// TestRedisStopped: with Redis down every operation fails with
// ErrUnavailable instead of blocking, failing closed; once Redis is back
// the subscription resumes by itself, and since the restarted Redis lost
// every stream, the subscribed node reports the loss.
func TestRedisStopped(t *testing.T) {
	t.Parallel()
	srv := privateServer(t)
	prefix := testPrefix(t)
	a, b := newNode(t, srv.addr(), prefix), newNode(t, srv.addr(), prefix)
	ctx := context.Background()
	if err := b.b.Subscribe(ctx, "down:1"); err != nil {
		t.Fatal(err)
	}
	before := brokertest.MustPublish(t, a.b, "down:1", `1`, broker.PublishOptions{HistorySize: 10})
	poll.Until(t, "delivery before the stop", func() bool { return len(b.rec.offsets("down:1")) == 1 })
	limiter, err := a.e.LimitStore().NewLimiter("l", ratelimit.Per(10, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	counter := a.e.LimitStore().NewCounter("c")
	cooldown := a.e.LimitStore().NewCooldown("cd")

	srv.stop()
	calls := map[string]func() error{
		"Ping": func() error { return a.e.Ping(ctx) },
		"Publish": func() error {
			_, err := a.b.Publish(ctx, "down:1", []byte(`2`), broker.PublishOptions{})
			return err
		},
		"History": func() error {
			_, err := a.b.History(ctx, "down:1", broker.HistoryRequest{})
			return err
		},
		"Subscribe": func() error { return a.b.Subscribe(ctx, "down:2") },
		"Consume":   func() error { return a.e.ReplayStore().Consume(ctx, "j", time.Now().Add(time.Minute)) },
		"Revoked": func() error {
			_, err := a.e.Revocations().Revoked(ctx, auth.Identity{User: "u"})
			return err
		},
		"RevokeUser": func() error {
			return a.e.Revocations().RevokeUser(ctx, "u", time.Now(), time.Now().Add(time.Hour))
		},
		"Allow": func() error {
			res, err := limiter.Allow(ctx, "k", time.Now())
			if res.Allowed {
				t.Error("Allow allowed with Redis down")
			}
			return err
		},
		"Acquire": func() error {
			ok, err := counter.Acquire(ctx, "k", 10)
			if ok {
				t.Error("Acquire acquired with Redis down")
			}
			return err
		},
		"Blocked": func() error {
			_, blocked, err := cooldown.Blocked(ctx, "k", time.Now())
			if !blocked {
				t.Error("Blocked reported not blocked with Redis down")
			}
			return err
		},
		"Presence": func() error {
			_, err := a.b.Presence(ctx, "down:1")
			return err
		},
		"PublishControl": func() error { return a.b.PublishControl(ctx, []byte(`{}`)) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, redis.ErrUnavailable) {
			t.Errorf("%s with Redis down = %v, want ErrUnavailable", name, err)
		}
	}

	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "Ping to succeed again", func() bool { return a.e.Ping(ctx) == nil })
	// No manual resubscribe: publications reach B again.
	var after broker.Position
	poll.Until(t, "B to receive a publication after the restart", func() bool {
		after = brokertest.MustPublish(t, a.b, "down:1", `"again"`, broker.PublishOptions{HistorySize: 10})
		time.Sleep(50 * time.Millisecond)
		return slices.ContainsFunc(b.rec.offsets("down:1"), func(o uint64) bool { return o > 0 }) && b.rec.last().Epoch == after.Epoch
	})
	if after.Epoch == before.Epoch {
		t.Fatal("the restarted Redis without persistence kept the epoch")
	}
	poll.Until(t, "B to report the loss", func() bool { return b.rec.lossCount() > 0 })
}
