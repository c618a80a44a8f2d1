package identity_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/identity"
)

const alicePassword = "correct-zebra-lantern-91"

func newUsers(t *testing.T) *identity.Users {
	t.Helper()
	u := identity.NewUsers(identity.Policy{}, cheap)
	if err := u.Add("alice", alicePassword); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUsersAdd(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	tests := []struct {
		name, user, password string
		want                 error
	}{
		{"duplicate", "alice", "violet-quartz-harbor-42", identity.ErrExists},
		{"duplicate other case", "ALICE", "violet-quartz-harbor-42", identity.ErrExists},
		{"weak", "bob", "password", identity.ErrTooShort},
		{"common", "bob", "1234567890qwerty", identity.ErrCommon},
		{"contains name", "bob.builder", "violet-builder-42", identity.ErrContainsUser},
		{"empty name", "", "violet-quartz-harbor-42", identity.ErrBadName},
		{"control in name", "bob\n", "violet-quartz-harbor-42", identity.ErrBadName},
		{"padded name", " bob", "violet-quartz-harbor-42", identity.ErrBadName},
		{"long name", strings.Repeat("b", identity.MaxNameBytes+1), "violet-quartz-harbor-42", identity.ErrBadName},
		{"ok", "bob", "violet-quartz-harbor-42", nil},
	}
	for _, tt := range tests {
		if err := u.Add(tt.user, tt.password); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: Add = %v, want %v", tt.name, err, tt.want)
		}
	}
	if n := u.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	if err := u.Authenticate("Bob", "violet-quartz-harbor-42", "192.0.2.1", t0); err != nil {
		t.Fatalf("Authenticate with other case = %v", err)
	}
}

func TestUsersSetPasswordRemove(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	if err := u.SetPassword("alice", "short"); !errors.Is(err, identity.ErrTooShort) {
		t.Fatalf("SetPassword weak = %v", err)
	}
	if err := u.SetPassword("carol", "violet-quartz-harbor-42"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("SetPassword unknown = %v", err)
	}
	if err := u.SetPassword("alice", "violet-quartz-harbor-42"); err != nil {
		t.Fatal(err)
	}
	if err := u.Authenticate("alice", alicePassword, "", t0); !errors.Is(err, identity.ErrInvalid) {
		t.Fatalf("old password: %v", err)
	}
	if err := u.Authenticate("alice", "violet-quartz-harbor-42", "", t0); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if !u.Remove("ALICE") || u.Remove("alice") {
		t.Fatal("Remove should report true once")
	}
	if err := u.Authenticate("alice", "violet-quartz-harbor-42", "", t0); !errors.Is(err, identity.ErrInvalid) {
		t.Fatalf("removed user: %v", err)
	}
}

func TestAuthenticateSameErrorForUnknownAndWrong(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	if err := u.Authenticate("alice", alicePassword, "192.0.2.1", t0); err != nil {
		t.Fatalf("right password: %v", err)
	}
	wrong := u.Authenticate("alice", "correct-zebra-lantern-92", "192.0.2.1", t0)
	unknown := u.Authenticate("mallory", alicePassword, "192.0.2.1", t0)
	badName := u.Authenticate(strings.Repeat("m", 10000), alicePassword, "192.0.2.1", t0)
	for _, err := range []error{wrong, unknown, badName} {
		if err != identity.ErrInvalid {
			t.Fatalf("got %v, want exactly ErrInvalid", err)
		}
	}
}

// TestAuthenticateUnknownUserCostsAHash checks that an unknown name is not
// answered faster than a wrong password: both run Argon2id.
func TestAuthenticateUnknownUserCostsAHash(t *testing.T) {
	t.Parallel()
	params := identity.Params{Memory: 16 * 1024, Time: 2}
	u := identity.NewUsers(identity.Policy{}, params)
	if err := u.Add("alice", alicePassword); err != nil {
		t.Fatal(err)
	}
	// An unknown name is verified against a dummy hash with the same
	// parameters as a real one, so it costs the same work (checked by
	// parameters, not by wall-clock time, which is noisy).
	dummy := identity.DummyPHC(u)
	want, err := identity.Hash("x", params)
	if err != nil {
		t.Fatal(err)
	}
	paramsOf := func(phc string) string { return strings.Join(strings.Split(phc, "$")[:4], "$") }
	if paramsOf(dummy) != paramsOf(want) {
		t.Fatalf("dummy hash %q has other parameters than %q", paramsOf(dummy), paramsOf(want))
	}
	before := identity.Verifications()
	if err := u.Authenticate("mallory", "violet-quartz-harbor-42", "", t0); err != identity.ErrInvalid {
		t.Fatal(err)
	}
	if identity.Verifications() == before {
		t.Fatal("an unknown user was answered without a hash verification")
	}
}

func TestAuthenticateLockout(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	now := t0
	for i := 1; i <= 5; i++ {
		if err := u.Authenticate("alice", "wrong-password-guess", "192.0.2.1", now); err != identity.ErrInvalid {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// Locked now: even the right password is refused, without being checked.
	err := u.Authenticate("alice", alicePassword, "192.0.2.99", now)
	var le identity.LockedError
	if !errors.As(err, &le) || !errors.Is(err, identity.ErrLocked) || le.RetryAfter != time.Second {
		t.Fatalf("after 5 failures: %v; want LockedError{1s}", err)
	}
	if err := u.Authenticate("alice", alicePassword, "192.0.2.99", now.Add(999*time.Millisecond)); !errors.Is(err, identity.ErrLocked) {
		t.Fatalf("before retry-after: %v", err)
	}
	now = now.Add(le.RetryAfter)
	if err := u.Authenticate("alice", alicePassword, "192.0.2.99", now); err != nil {
		t.Fatalf("after retry-after: %v", err)
	}
	// The success reset the count: four free failures again.
	for i := 1; i <= 4; i++ {
		if err := u.Authenticate("alice", "wrong-password-guess", "192.0.2.1", now); err != identity.ErrInvalid {
			t.Fatalf("failure %d after reset: %v", i, err)
		}
	}
	if err := u.Authenticate("alice", alicePassword, "192.0.2.1", now); err != nil {
		t.Fatalf("not reset by success: %v", err)
	}
}

func TestAuthenticateLockoutUnknownUserAlike(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	for _, name := range []string{"alice", "mallory"} {
		for range 5 {
			u.Authenticate(name, "wrong-password-guess", "", t0)
		}
		var le identity.LockedError
		if err := u.Authenticate(name, "wrong-password-guess", "", t0); !errors.As(err, &le) || le.RetryAfter != time.Second {
			t.Errorf("%s: %v; want the same lockout for known and unknown names", name, err)
		}
	}
}

func TestAuthenticateIPLockoutAcrossUsers(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	const attacker = "203.0.113.7"
	// Password spraying: one guess per name, so no name is locked, but the
	// address is after 20 failures (the default for addresses).
	for i := range 20 {
		if err := u.Authenticate(fmt.Sprint("user", i), "wrong-password-guess", attacker, t0); err != identity.ErrInvalid {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	var le identity.LockedError
	if err := u.Authenticate("alice", alicePassword, attacker, t0); !errors.As(err, &le) || le.RetryAfter != time.Second {
		t.Fatalf("from the spraying address: %v; want LockedError{1s}", err)
	}
	if err := u.Authenticate("alice", alicePassword, "198.51.100.1", t0); err != nil {
		t.Fatalf("alice from another address: %v", err)
	}
	// A success from the address does not clear the address's count.
	if err := u.Authenticate("alice", alicePassword, attacker, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := u.Authenticate("user99", "wrong-password-guess", attacker, t0.Add(time.Second)); err != identity.ErrInvalid {
		t.Fatal(err)
	}
	if err := u.Authenticate("alice", alicePassword, attacker, t0.Add(time.Second)); !errors.As(err, &le) || le.RetryAfter != 2*time.Second {
		t.Fatalf("address count was reset by a success: %v", err)
	}
}

func TestAuthenticateConfigureLockout(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	u.ConfigureLockout(identity.LockoutConfig{FreeFailures: 2, BaseDelay: time.Minute}, identity.LockoutConfig{FreeFailures: 100})
	for range 2 {
		u.Authenticate("alice", "wrong-password-guess", "192.0.2.1", t0)
	}
	var le identity.LockedError
	if err := u.Authenticate("alice", alicePassword, "192.0.2.1", t0); !errors.As(err, &le) || le.RetryAfter != time.Minute {
		t.Fatalf("%v; want LockedError{1m}", err)
	}
	if n := u.Sweep(t0.Add(2 * time.Hour)); n != 2 {
		t.Fatalf("Sweep = %d, want 2 (one user, one address)", n)
	}
}

func TestAuthenticateTooLongPassword(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	long := strings.Repeat("x", identity.MaxPasswordBytes+1)
	for i := range 5 {
		if err := u.Authenticate("alice", long, "", t0); err != identity.ErrInvalid {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := u.Authenticate("alice", alicePassword, "", t0); !errors.Is(err, identity.ErrLocked) {
		t.Fatalf("over-long attempts not counted: %v", err)
	}
}

func TestUsersInvalidParams(t *testing.T) {
	t.Parallel()
	u := identity.NewUsers(identity.Policy{}, identity.Params{Memory: 1 << 30})
	if err := u.Add("alice", alicePassword); !errors.Is(err, identity.ErrParams) {
		t.Fatalf("Add = %v, want ErrParams", err)
	}
	if err := u.Authenticate("alice", alicePassword, "", t0); !errors.Is(err, identity.ErrParams) {
		t.Fatalf("Authenticate = %v, want ErrParams", err)
	}
}

func TestUsersConcurrent(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			name := fmt.Sprint("user", g)
			if err := u.Add(name, alicePassword); err != nil {
				t.Error(err)
				return
			}
			for i := range 5 {
				now := t0.Add(time.Duration(i) * time.Minute)
				if err := u.Authenticate(name, alicePassword, fmt.Sprint("192.0.2.", g), now); err != nil {
					t.Error(err)
				}
				u.Authenticate("alice", "wrong-password-guess", "198.51.100.1", now)
				u.Sweep(now)
			}
		})
	}
	wg.Wait()
	if n := u.Len(); n != 7 {
		t.Fatalf("Len = %d, want 7", n)
	}
}

func TestAuthenticateParallelBurst(t *testing.T) {
	t.Parallel()
	u := newUsers(t)
	const n = 40
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs <- u.Authenticate("alice", "wrong-password-guess", fmt.Sprint("192.0.2.", i), t0)
		})
	}
	wg.Wait()
	close(errs)
	guesses := 0
	for err := range errs {
		switch {
		case err == identity.ErrInvalid:
			guesses++
		case errors.Is(err, identity.ErrLocked):
		default:
			t.Fatal(err)
		}
	}
	if guesses > 5 {
		t.Fatalf("%d of %d parallel guesses were checked; the lockout allows 5", guesses, n)
	}
	if err := u.Authenticate("alice", alicePassword, "198.51.100.1", t0); !errors.Is(err, identity.ErrLocked) && guesses == 5 {
		t.Fatalf("not locked after the burst: %v", err)
	}
}
