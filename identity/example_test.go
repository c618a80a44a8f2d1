package identity_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/livegate/livegate/identity"
)

func ExampleHash() {
	// DefaultParams (the zero Params) in production; cheaper ones here.
	phc, err := identity.Hash("correct-zebra-lantern-91", identity.Params{Memory: 1024, Time: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(phc, "$argon2id$v=19$m=1024,t=1,p=1$"))
	// Output: true
}

func ExampleVerify() {
	phc, _ := identity.Hash("correct-zebra-lantern-91", identity.Params{Memory: 1024, Time: 1})

	ok, needsRehash, err := identity.Verify("correct-zebra-lantern-91", phc)
	fmt.Println(ok, needsRehash, err) // cheaper than DefaultParams: store a fresh Hash

	ok, _, err = identity.Verify("wrong guess", phc)
	fmt.Println(ok, err)

	_, _, err = identity.Verify("x", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW")
	fmt.Println(errors.Is(err, identity.ErrUnsupported))
	// Output:
	// true true <nil>
	// false <nil>
	// true
}

func ExamplePolicy_Check() {
	var p identity.Policy // defaults: 12 to 128 characters, common list
	for _, pw := range []string{"hunter2", "Password2024!", "alice-in-chains", "aaaaaaaaaaaaaaaa", "correct-zebra-lantern-91"} {
		fmt.Printf("%-26q %v\n", pw, p.Check("alice", pw))
	}
	// Output:
	// "hunter2"                  identity: password too short: at least 12 characters
	// "Password2024!"            identity: password is too common
	// "alice-in-chains"          identity: password contains the user name
	// "aaaaaaaaaaaaaaaa"         identity: password is a repeated character or pattern
	// "correct-zebra-lantern-91" <nil>
}

func ExampleLockout() {
	l := identity.NewLockout(identity.LockoutConfig{}) // 5 attempts, then 1s doubling to 15min
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= 7; i++ {
		if wait, locked := l.Check("user:alice", now); locked {
			now = now.Add(wait) // a real caller refuses and reports Retry-After
		}
		fmt.Printf("failure %d: locked for %v\n", i, l.Fail("user:alice", now))
	}
	l.Succeed("user:alice")
	_, locked := l.Check("user:alice", now)
	fmt.Println("after success locked:", locked)
	// Output:
	// failure 1: locked for 0s
	// failure 2: locked for 0s
	// failure 3: locked for 0s
	// failure 4: locked for 0s
	// failure 5: locked for 1s
	// failure 6: locked for 2s
	// failure 7: locked for 4s
	// after success locked: false
}

func ExampleUsers_Authenticate() {
	users := identity.NewUsers(identity.Policy{}, identity.Params{Memory: 1024, Time: 1})
	if err := users.Add("alice", "correct-zebra-lantern-91"); err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ip := "192.0.2.10"

	fmt.Println(users.Authenticate("alice", "correct-zebra-lantern-91", ip, now))
	fmt.Println(users.Authenticate("alice", "wrong guess", ip, now))
	fmt.Println(users.Authenticate("mallory", "wrong guess", ip, now)) // the same answer
	for range 4 {
		users.Authenticate("alice", "wrong guess", ip, now)
	}
	err := users.Authenticate("alice", "correct-zebra-lantern-91", ip, now)
	var locked identity.LockedError
	if errors.As(err, &locked) {
		fmt.Println("locked, retry after", locked.RetryAfter)
	}
	// Output:
	// <nil>
	// identity: invalid user name or password
	// identity: invalid user name or password
	// locked, retry after 1s
}
