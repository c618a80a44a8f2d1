package store_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
)

func BenchmarkConsume(b *testing.B) {
	ctx := context.Background()
	rs := open(b, tempPath(b), newFakeClock(t0)).ReplayStore()
	exp := t0.Add(5 * time.Minute)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := rs.Consume(ctx, "jti-"+strconv.Itoa(i), exp); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkConsumeParallel(b *testing.B) {
	ctx := context.Background()
	rs := open(b, tempPath(b), newFakeClock(t0)).ReplayStore()
	exp := t0.Add(5 * time.Minute)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rs.Consume(ctx, "jti-"+strconv.FormatInt(n.Add(1), 10), exp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRevoked(b *testing.B) {
	ctx := context.Background()
	db := open(b, tempPath(b), newFakeClock(t0))
	rv := db.Revocations()
	for i := range 1000 {
		s := strconv.Itoa(i)
		if err := rv.RevokeSession(ctx, "s"+s, t0.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		if err := rv.RevokeUser(ctx, "u"+s, t0, t0.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	id := auth.Identity{User: "alice", Session: "sess", TokenID: "tok", IssuedAt: t0}
	b.ReportAllocs()
	for b.Loop() {
		if revoked, err := rv.Revoked(ctx, id); err != nil || revoked {
			b.Fatal(revoked, err)
		}
	}
}
