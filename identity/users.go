package identity

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes is the longest user name [Users] accepts, in bytes.
const MaxNameBytes = 256

// maxIPBytes bounds a client address used as a lockout key.
const maxIPBytes = 64

// defaultIPFreeFailures is the FreeFailures of the per-address lockout of
// [Users]: higher than per user, since many people may share one address
// behind a NAT or proxy.
const defaultIPFreeFailures = 20

// Users is a small in-memory user store: names with Argon2id password
// hashes, a [Policy] for new passwords and two lockouts ([Lockout]), one per
// user name and one per client address. It is safe for concurrent use.
//
// User names are compared case-insensitively. At most max(4, 2×GOMAXPROCS)
// Argon2id computations run at once, so a burst of logins queues instead of
// exhausting memory. Call [Users.Sweep] periodically to free idle lockout
// records.
type Users struct {
	policy Policy
	params Params
	err    error  // invalid params, reported by Add and Authenticate
	dummy  string // PHC string verified for unknown users
	sem    chan struct{}

	mu     sync.RWMutex
	users  map[string]string // lower-cased name → PHC string
	byUser *Lockout
	byIP   *Lockout
}

// NewUsers returns an empty store that checks new passwords with policy and
// hashes them with params (zero fields from [DefaultParams]). Passwords
// stored with other parameters are re-hashed with params at their next
// successful login. The user lockout takes the [LockoutConfig] defaults, the
// address lockout too except 20 free failures; [Users.ConfigureLockout]
// changes them. If params are out of range, Add and Authenticate fail with
// [ErrParams].
func NewUsers(policy Policy, params Params) *Users {
	u := &Users{
		policy: policy,
		params: params.withDefaults(),
		sem:    make(chan struct{}, max(4, 2*runtime.GOMAXPROCS(0))),
		users:  make(map[string]string),
		byUser: NewLockout(LockoutConfig{}),
		byIP:   NewLockout(LockoutConfig{FreeFailures: defaultIPFreeFailures}),
	}
	if u.err = u.params.validate(); u.err == nil {
		// The dummy has the cost of a real hash; its key is random, so no
		// password matches it.
		salt := make([]byte, u.params.SaltLen)
		key := make([]byte, u.params.KeyLen)
		rand.Read(salt)
		rand.Read(key)
		u.dummy = encodePHC(u.params, salt, key)
	}
	return u
}

// ConfigureLockout replaces the per-user and per-address lockouts, dropping
// their records. Call it before serving logins.
func (u *Users) ConfigureLockout(byUser, byIP LockoutConfig) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.byUser, u.byIP = NewLockout(byUser), NewLockout(byIP)
}

// Add creates user name with password, which must pass the policy. It fails
// with [ErrBadName], [ErrExists], a policy error or [ErrParams].
func (u *Users) Add(name, password string) error {
	key, err := u.prepare(name, password)
	if err != nil {
		return err
	}
	u.mu.RLock()
	_, exists := u.users[key]
	u.mu.RUnlock()
	if exists {
		return ErrExists
	}
	phc, err := u.hash(password)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, exists := u.users[key]; exists {
		return ErrExists
	}
	u.users[key] = phc
	return nil
}

// SetPassword replaces the password of an existing user; the new one must
// pass the policy. It fails with [ErrNotFound] for an unknown user. It does
// not check the old password: callers changing a password on a user's
// request authenticate first.
func (u *Users) SetPassword(name, password string) error {
	key, err := u.prepare(name, password)
	if err != nil {
		return err
	}
	phc, err := u.hash(password)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, exists := u.users[key]; !exists {
		return ErrNotFound
	}
	u.users[key] = phc
	return nil
}

// Remove deletes a user and reports whether it existed.
func (u *Users) Remove(name string) bool {
	key := normalizeName(name)
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.users[key]
	delete(u.users, key)
	return ok
}

// Len returns the number of users.
func (u *Users) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.users)
}

// Authenticate checks name and password for a login from address ip at now.
//
// It returns nil on success (and resets the user's failure count), and
// [ErrInvalid] for an unknown user or a wrong password alike: for an unknown
// name it verifies against a dummy hash of the same cost, so the timing does
// not tell which names exist, and it counts the failure against the name
// all the same. While the name or ip is locked it returns a [LockedError]
// without checking the password; attempts are admitted with [Lockout.Begin],
// so parallel guesses are refused once those in flight could use up the
// free failures. A success does not reset the address's
// count, so an attacker cannot interleave logins to their own account with
// guesses at others. ip may be empty when unknown; then only the name is
// throttled. A password whose stored parameters differ from the store's is
// re-hashed. Other errors ([ErrParams], or a corrupt stored hash) are
// internal and not a verdict on the password.
func (u *Users) Authenticate(name, password, ip string, now time.Time) error {
	if u.err != nil {
		return u.err
	}
	if len(ip) > maxIPBytes {
		ip = ip[:maxIPBytes]
	}
	key := ""
	if validName(name) == nil {
		key = normalizeName(name)
	}
	u.mu.RLock()
	phc, found := u.users[key]
	byUser, byIP := u.byUser, u.byIP
	u.mu.RUnlock()

	// Admit the attempt on both keys atomically with respect to other
	// attempts, so that guesses sent in parallel cannot all slip past the
	// check before the first failure is counted.
	var retry time.Duration
	userBegun, ipBegun := false, false
	if key != "" {
		var r time.Duration
		if r, userBegun = byUser.Begin(key, now); !userBegun {
			retry = r
		}
	}
	if ip != "" {
		var r time.Duration
		if r, ipBegun = byIP.Begin(ip, now); !ipBegun {
			retry = max(retry, r)
		}
	}
	done := func(failed bool) {
		if userBegun {
			byUser.Done(key, now, failed)
		}
		if ipBegun {
			byIP.Done(ip, now, failed)
		}
	}
	if (key != "" && !userBegun) || (ip != "" && !ipBegun) {
		done(false)
		return LockedError{RetryAfter: retry}
	}
	if len(password) > MaxPasswordBytes {
		done(true) // refused without hashing, whether or not the user exists
		return ErrInvalid
	}
	if !found {
		u.verify(password, u.dummy) // #nosec G104 -- hashing for the timing only; the answer is already "no such user"
		done(true)
		return ErrInvalid
	}
	ok, rehash, err := u.verify(password, phc)
	if err != nil {
		done(false)
		return fmt.Errorf("identity: stored hash of user: %w", err)
	}
	if !ok {
		done(true)
		return ErrInvalid
	}
	done(false)
	byUser.Succeed(key)
	if rehash {
		if fresh, err := u.hash(password); err == nil {
			u.mu.Lock()
			if u.users[key] == phc { // not changed meanwhile
				u.users[key] = fresh
			}
			u.mu.Unlock()
		}
	}
	return nil
}

// Sweep frees the idle records of both lockouts and returns how many.
func (u *Users) Sweep(now time.Time) int {
	u.mu.RLock()
	byUser, byIP := u.byUser, u.byIP
	u.mu.RUnlock()
	return byUser.Sweep(now) + byIP.Sweep(now)
}

// prepare validates a name and a new password and returns the map key.
func (u *Users) prepare(name, password string) (string, error) {
	if u.err != nil {
		return "", u.err
	}
	if err := validName(name); err != nil {
		return "", err
	}
	if err := u.policy.Check(name, password); err != nil {
		return "", err
	}
	return normalizeName(name), nil
}

func (u *Users) hash(password string) (string, error) {
	u.sem <- struct{}{}
	defer func() { <-u.sem }()
	return Hash(password, u.params)
}

func (u *Users) verify(password, phc string) (ok, needsRehash bool, err error) {
	u.sem <- struct{}{}
	defer func() { <-u.sem }()
	verifications.Add(1)
	return verify(password, phc, u.params)
}

// verifications counts Argon2id verifications by Users, for tests.
var verifications atomic.Int64

func normalizeName(name string) string { return strings.ToLower(name) }

// validName checks a user name: not empty, at most MaxNameBytes, valid
// UTF-8, no control characters and no leading or trailing space.
func validName(name string) error {
	if name == "" || len(name) > MaxNameBytes || !utf8.ValidString(name) ||
		strings.TrimSpace(name) != name || strings.ContainsFunc(name, unicode.IsControl) {
		return ErrBadName
	}
	return nil
}
