package identity

import (
	"strings"
	"testing"
	"time"
)

func TestAuthenticateRehashes(t *testing.T) {
	t.Parallel()
	old := Params{Memory: 1024, Time: 1}
	u := NewUsers(Policy{}, old)
	if err := u.Add("alice", "correct-zebra-lantern-91"); err != nil {
		t.Fatal(err)
	}
	before := u.users["alice"]
	// The operator raises the cost; the next login upgrades the hash.
	u.params = Params{Memory: 2048, Time: 2}.withDefaults()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := u.Authenticate("alice", "wrong-password-guess", "", now); err != ErrInvalid {
		t.Fatal(err)
	}
	if u.users["alice"] != before {
		t.Fatal("a failed login changed the stored hash")
	}
	if err := u.Authenticate("alice", "correct-zebra-lantern-91", "", now); err != nil {
		t.Fatal(err)
	}
	after := u.users["alice"]
	if after == before || !strings.HasPrefix(after, "$argon2id$v=19$m=2048,t=2,p=1$") {
		t.Fatalf("hash after login = %q, want re-hashed with m=2048,t=2", after)
	}
	if err := u.Authenticate("alice", "correct-zebra-lantern-91", "", now); err != nil || u.users["alice"] != after {
		t.Fatalf("second login: %v, re-hashed again: %v", err, u.users["alice"] != after)
	}
}
