package identity_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/identity"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestLockoutBackoff(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{})
	now := t0
	for i := 1; i <= 4; i++ {
		if d := l.Fail("alice", now); d != 0 {
			t.Fatalf("failure %d locked for %v; the first 4 are free", i, d)
		}
		if d, locked := l.Check("alice", now); locked {
			t.Fatalf("locked for %v after %d failures", d, i)
		}
	}
	want := []time.Duration{
		1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 512 * time.Second,
		15 * time.Minute, 15 * time.Minute, 15 * time.Minute,
	}
	for i, w := range want {
		if d := l.Fail("alice", now); d != w {
			t.Fatalf("failure %d: locked for %v, want %v", i+5, d, w)
		}
		if d, locked := l.Check("alice", now); !locked || d != w {
			t.Fatalf("Check right after failure %d = %v, %v; want %v, true", i+5, d, locked, w)
		}
		if d, locked := l.Check("alice", now.Add(w/2)); !locked || d != w-w/2 {
			t.Fatalf("Check half-way = %v, %v; want %v, true", d, locked, w-w/2)
		}
		now = now.Add(w)
		if d, locked := l.Check("alice", now); locked {
			t.Fatalf("still locked for %v when the lock should end", d)
		}
	}
}

func TestLockoutSucceedResets(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{})
	for range 7 {
		l.Fail("alice", t0)
	}
	if _, locked := l.Check("alice", t0); !locked {
		t.Fatal("not locked after 7 failures")
	}
	l.Succeed("alice")
	if d, locked := l.Check("alice", t0); locked {
		t.Fatalf("locked for %v after success", d)
	}
	for i := 1; i <= 4; i++ {
		if d := l.Fail("alice", t0); d != 0 {
			t.Fatalf("failure %d after reset locked for %v", i, d)
		}
	}
	if d := l.Fail("alice", t0); d != time.Second {
		t.Fatalf("fifth failure after reset locked for %v, want 1s", d)
	}
}

func TestLockoutSeparateKeys(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{})
	for range 5 {
		l.Fail("user:alice", t0)
		l.Fail("ip:192.0.2.1", t0)
	}
	for _, key := range []string{"user:alice", "ip:192.0.2.1"} {
		if _, locked := l.Check(key, t0); !locked {
			t.Errorf("%s not locked", key)
		}
	}
	for _, key := range []string{"user:bob", "ip:192.0.2.2", "alice"} {
		if d, locked := l.Check(key, t0); locked {
			t.Errorf("%s locked for %v by another key's failures", key, d)
		}
	}
	l.Succeed("user:alice")
	if _, locked := l.Check("ip:192.0.2.1", t0); !locked {
		t.Error("success of one key unlocked another")
	}
}

func TestLockoutConfig(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{FreeFailures: -3, BaseDelay: 10 * time.Second, MaxDelay: 25 * time.Second})
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 25 * time.Second} {
		if d := l.Fail("k", t0); d != want {
			t.Fatalf("failure %d locked for %v, want %v", i+1, d, want)
		}
	}
}

func TestLockoutIdleRecordsForgotten(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{IdleTTL: time.Hour})
	for range 6 {
		l.Fail("alice", t0) // locked until t0+2s
	}
	l.Fail("bob", t0.Add(30*time.Minute))
	if n := l.Sweep(t0.Add(59 * time.Minute)); n != 0 {
		t.Fatalf("Sweep before IdleTTL removed %d", n)
	}
	if n := l.Sweep(t0.Add(time.Hour)); n != 1 || l.Len() != 1 {
		t.Fatalf("Sweep at IdleTTL removed %d, %d left; want 1, 1", n, l.Len())
	}
	// Without a sweep an idle record also starts over.
	for range 4 {
		l.Fail("bob", t0.Add(30*time.Minute))
	}
	if d := l.Fail("bob", t0.Add(91*time.Minute)); d != 0 {
		t.Fatalf("failure after an idle hour locked for %v; the count should restart", d)
	}
}

func TestLockoutSweepKeepsLocked(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{FreeFailures: 1, BaseDelay: 2 * time.Hour, MaxDelay: 2 * time.Hour, IdleTTL: time.Minute})
	l.Fail("alice", t0)
	if n := l.Sweep(t0.Add(time.Hour)); n != 0 {
		t.Fatal("a locked record was swept")
	}
	if n := l.Sweep(t0.Add(2 * time.Hour)); n != 1 {
		t.Fatal("an expired idle record was kept")
	}
}

func TestLockoutMaxKeys(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{FreeFailures: 3, MaxKeys: 10})
	for range 3 {
		l.Fail("victim", t0)
	}
	for i := range 1000 {
		l.Fail(fmt.Sprint("spray", i), t0.Add(time.Duration(i)*time.Millisecond))
		if n := l.Len(); n > 10 {
			t.Fatalf("%d records, MaxKeys is 10", n)
		}
	}
	if _, locked := l.Check("victim", t0); !locked {
		t.Fatal("a flood of new keys evicted a locked one")
	}
}

func TestLockoutConcurrent(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{MaxKeys: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprint("k", (g*i)%70)
				now := t0.Add(time.Duration(i) * time.Second)
				l.Fail(key, now)
				l.Check(key, now)
				if i%7 == 0 {
					l.Succeed(key)
				}
				if i%50 == 0 {
					l.Sweep(now)
				}
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > 50 {
		t.Fatalf("%d records, MaxKeys is 50", n)
	}
}

func BenchmarkLockoutFail(b *testing.B) {
	l := identity.NewLockout(identity.LockoutConfig{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Fail("alice", t0.Add(time.Duration(i)*time.Second))
		i++
	}
}

func TestLockoutBeginDone(t *testing.T) {
	t.Parallel()
	l := identity.NewLockout(identity.LockoutConfig{})
	// Five attempts may be in flight on a fresh key, not six.
	for i := range 5 {
		if _, ok := l.Begin("alice", t0); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if d, ok := l.Begin("alice", t0); ok || d != time.Second {
		t.Fatalf("sixth concurrent attempt: %v, %v; want refused for 1s", d, ok)
	}
	for i := range 4 {
		if d := l.Done("alice", t0, true); d != 0 {
			t.Fatalf("failure %d locked for %v", i+1, d)
		}
	}
	if d := l.Done("alice", t0, true); d != time.Second {
		t.Fatalf("fifth failure locked for %v, want 1s", d)
	}
	if d, ok := l.Begin("alice", t0.Add(500*time.Millisecond)); ok || d != 500*time.Millisecond {
		t.Fatalf("Begin while locked = %v, %v", d, ok)
	}
	// Past the free failures, one attempt at a time.
	now := t0.Add(time.Second)
	if _, ok := l.Begin("alice", now); !ok {
		t.Fatal("attempt after the lock refused")
	}
	if _, ok := l.Begin("alice", now); ok {
		t.Fatal("second concurrent attempt past the free failures admitted")
	}
	if d := l.Done("alice", now, false); d != 0 {
		t.Fatalf("Done(success) = %v", d)
	}
	l.Succeed("alice")
	if l.Len() != 0 {
		t.Fatalf("Len after success = %d", l.Len())
	}
	// A success while other attempts are in flight keeps their record.
	l.Begin("bob", now)
	l.Begin("bob", now)
	l.Done("bob", now, false)
	l.Succeed("bob")
	if n := l.Sweep(now.Add(24 * time.Hour)); n != 0 {
		t.Fatal("a record with an attempt in flight was swept")
	}
	l.Done("bob", now, true)
	if d := l.Fail("bob", now); d != 0 {
		t.Fatalf("second failure after reset locked for %v", d)
	}
}
