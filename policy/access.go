package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr/vm"
)

// Mode is the base requirement of an Access.
type Mode int

// Modes. The zero value denies.
const (
	// ModeDeny refuses everybody.
	ModeDeny Mode = iota
	// ModeAuthenticated allows any authenticated connection.
	ModeAuthenticated
	// ModeToken requires an authenticated connection holding a valid
	// subscription token naming the exact channel. The caller verifies the
	// token and reports it in Check.TokenGranted.
	ModeToken
)

// String returns the mode's configuration name.
func (m Mode) String() string {
	switch m {
	case ModeDeny:
		return "deny"
	case ModeAuthenticated:
		return "authenticated"
	case ModeToken:
		return "token"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Access says who may do something. Every condition that is set must hold:
// the Mode, UserLimited, at least one of Groups, at least one of AnyPerms,
// all of AllPerms, and Rule. The zero value denies everybody; conditions
// set with Mode ModeDeny are a configuration error.
type Access struct {
	// Mode is the base requirement; ModeDeny (zero) refuses everybody.
	Mode Mode
	// UserLimited requires a user-limited channel ("ns:name#u1,u2") that
	// lists the subject's user. With UserLimited false a user-limited
	// channel still requires the subject's user to be listed.
	UserLimited bool
	// Groups, when non-empty, requires the subject to be in at least one of
	// them, directly or through a role that inherits it.
	Groups []string
	// AnyPerms, when non-empty, requires the subject to hold at least one.
	// Entries are concrete permissions (no '*'); the subject's granted
	// permissions may be wildcards (see PermMatch).
	AnyPerms []string
	// AllPerms requires the subject to hold every entry.
	AllPerms []string
	// Rule is an ABAC expression that must evaluate to true; empty means no
	// rule. See the package documentation for its environment.
	Rule string
}

// Predefined accesses.
var (
	// Deny refuses everybody; it is the zero Access.
	Deny = Access{}
	// Authenticated allows any authenticated connection.
	Authenticated = Access{Mode: ModeAuthenticated}
	// SubscribeAuthenticated is Authenticated, named for readability in a
	// NamespaceConfig's Subscribe field.
	SubscribeAuthenticated = Authenticated
)

// Subject is who asks.
type Subject struct {
	// User is the authenticated user; empty means unauthenticated.
	User string
	// Session is the application session the connection is bound to.
	Session string
	// Tenant is the tenant from the connection token; it must satisfy
	// ValidTenant to use tenant-scoped namespaces.
	Tenant string
	// Groups come from the token's "groups" claim; they are RBAC role
	// names too.
	Groups []string
	// Perms come from the token's "perms" claim; they may use wildcards.
	Perms []string
}

// RequestAttrs are attributes of the connection's request, usable by rules.
type RequestAttrs struct {
	// IP is the client IP (behind trusted proxies only, see the gateway).
	IP string
	// Origin is the request's Origin header.
	Origin string
}

// Op is what a subject wants to do with a channel.
type Op int

// Operations.
const (
	// OpSubscribe subscribes to a channel.
	OpSubscribe Op = iota
	// OpPublish publishes to a channel from the client.
	OpPublish
)

// String returns "subscribe" or "publish".
func (o Op) String() string {
	switch o {
	case OpSubscribe:
		return "subscribe"
	case OpPublish:
		return "publish"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Check is one authorization question.
type Check struct {
	// Subject is who asks.
	Subject Subject
	// Channel is the channel as the client named it.
	Channel string
	// Request carries the connection's request attributes for rules.
	Request RequestAttrs
	// TokenGranted reports that the caller verified a subscription token
	// naming exactly Channel for Subject.User. Only ModeToken looks at it.
	TokenGranted bool
}

// Denial reasons. Each wraps ErrDenied; they are not exported because
// callers must not tell clients why they were refused, but their messages
// are meant for logs and the audit trail.
var (
	errDenyMode        = fmt.Errorf("%w: access mode is deny", ErrDenied)
	errUnauthenticated = fmt.Errorf("%w: not authenticated", ErrDenied)
	errNoToken         = fmt.Errorf("%w: subscription token required", ErrDenied)
	errNotUserLimited  = fmt.Errorf("%w: channel must be user-limited", ErrDenied)
	errNotListed       = fmt.Errorf("%w: user not listed in channel", ErrDenied)
	errGroups          = fmt.Errorf("%w: not in a required group", ErrDenied)
	errAnyPerms        = fmt.Errorf("%w: missing any-of permission", ErrDenied)
	errAllPerms        = fmt.Errorf("%w: missing all-of permission", ErrDenied)
	errRule            = fmt.Errorf("%w: rule evaluated to false", ErrDenied)
	errUnknownOp       = fmt.Errorf("%w: unknown operation", ErrDenied)
	errTenantUnscoped  = fmt.Errorf("%w: tenant given for a namespace that is not tenant-scoped", ErrDenied)
	errNilGuard        = fmt.Errorf("%w: nil guard", ErrDenied)
)

// access is a validated, compiled Access.
type access struct {
	mode        Mode
	userLimited bool
	groups      []string
	anyPerms    []string
	allPerms    []string
	rule        *vm.Program
}

// compileAccess validates a and compiles its rule. forChannel is false for
// guards, which have no channel. Its errors lack the "policy: " prefix: the
// caller adds it with the culprit's name.
func (s *Set) compileAccess(a Access, forChannel bool) (access, error) {
	switch a.Mode {
	case ModeDeny, ModeAuthenticated:
	case ModeToken:
		if !forChannel {
			return access{}, fmt.Errorf("mode %v needs a channel", a.Mode)
		}
	default:
		return access{}, fmt.Errorf("invalid mode %d", int(a.Mode))
	}
	if a.UserLimited && !forChannel {
		return access{}, errors.New("UserLimited needs a channel")
	}
	if a.Mode == ModeDeny && (a.UserLimited || len(a.Groups) > 0 || len(a.AnyPerms) > 0 || len(a.AllPerms) > 0 || a.Rule != "") {
		return access{}, errors.New("conditions set but mode is deny (set Mode)")
	}
	for _, g := range a.Groups {
		if !validName(g) {
			return access{}, fmt.Errorf("invalid group %q", g)
		}
	}
	for _, list := range [][]string{a.AnyPerms, a.AllPerms} {
		for _, p := range list {
			if !validPerm(p, false) {
				return access{}, fmt.Errorf("invalid required permission %q (concrete segments of [A-Za-z0-9_.-], no wildcards)", p)
			}
		}
	}
	c := access{
		mode:        a.Mode,
		userLimited: a.UserLimited,
		groups:      slices.Clone(a.Groups),
		anyPerms:    slices.Clone(a.AnyPerms),
		allPerms:    slices.Clone(a.AllPerms),
	}
	if a.Rule != "" {
		p, err := s.compileRule(a.Rule)
		if err != nil {
			return access{}, err
		}
		c.rule = p
	}
	return c, nil
}

// cloneAccess returns a copy of a that shares no slices with it.
func cloneAccess(a Access) Access {
	a.Groups = slices.Clone(a.Groups)
	a.AnyPerms = slices.Clone(a.AnyPerms)
	a.AllPerms = slices.Clone(a.AllPerms)
	return a
}

// check decides a for the subject. channel is the client's channel name, or
// empty for guards.
func (s *Set) check(a *access, sub *Subject, channel string, req *RequestAttrs, tokenGranted bool) error {
	switch a.mode {
	case ModeAuthenticated, ModeToken:
	default:
		return errDenyMode
	}
	if sub.User == "" {
		return errUnauthenticated
	}
	if a.mode == ModeToken && !tokenGranted {
		return errNoToken
	}
	_, users, limited := strings.Cut(channel, "#")
	if a.userLimited && !limited {
		return errNotUserLimited
	}
	if limited && !listed(users, sub.User) {
		return errNotListed
	}
	if len(a.groups) > 0 && !slices.ContainsFunc(a.groups, func(g string) bool { return s.inGroup(sub, g) }) {
		return errGroups
	}
	if len(a.anyPerms) > 0 && !slices.ContainsFunc(a.anyPerms, func(p string) bool { return s.holds(sub, p) }) {
		return errAnyPerms
	}
	for _, p := range a.allPerms {
		if !s.holds(sub, p) {
			return errAllPerms
		}
	}
	if a.rule != nil {
		return s.evalRule(a.rule, sub, channel, req)
	}
	return nil
}

// listed reports whether user is one of the comma-separated users.
func listed(users, user string) bool {
	for {
		u, rest, more := strings.Cut(users, ",")
		if u == user {
			return true
		}
		if !more {
			return false
		}
		users = rest
	}
}

// Guard is a compiled Access for checks that are not about a channel, such
// as event handlers; the caller checks it before decoding the payload. Its
// Mode must be ModeDeny or ModeAuthenticated and UserLimited is not allowed.
// A Guard is safe for concurrent use; a nil *Guard denies.
type Guard struct {
	s *Set
	a access
}

// CompileGuard validates a and compiles it into a Guard that uses s's roles.
func (s *Set) CompileGuard(a Access) (*Guard, error) {
	c, err := s.compileAccess(a, false)
	if err != nil {
		return nil, fmt.Errorf("policy: guard: %w", err)
	}
	return &Guard{s: s, a: c}, nil
}

// Allow returns nil if sub may pass the guard, or an error wrapping
// ErrDenied.
func (g *Guard) Allow(sub Subject, req RequestAttrs) error {
	if g == nil || g.s == nil {
		return errNilGuard
	}
	return g.s.check(&g.a, &sub, "", &req, false)
}
