package policy

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultMaxRuleNodes is the rule size limit used when Config.MaxRuleNodes
// is zero.
const DefaultMaxRuleNodes = 200

// NamespaceConfig is the policy of one namespace. The zero value (apart
// from Name) denies subscribing and client publishing and keeps no history.
type NamespaceConfig struct {
	// Name is the namespace, the part of a channel before the first ':'.
	Name string
	// Subscribe says who may subscribe. Zero: nobody.
	Subscribe Access
	// Publish says who may publish from the client. Zero: nobody.
	// Server-side publishing is always allowed.
	Publish Access
	// TenantScoped places the namespace's channels under the connection's
	// tenant: tenants never see each other's channels, even under the same
	// name. Default false: channels are shared by all tenants.
	TenantScoped bool
	// HistorySize is how many messages each channel keeps for recovery.
	// Zero: none.
	HistorySize int
	// HistoryTTL is how long an idle channel's history is kept. Zero: the
	// broker's default.
	HistoryTTL time.Duration
	// Presence records which connections are subscribed to each channel
	// of the namespace, which subscribers may list with the "presence"
	// command. Default false.
	Presence bool
	// JoinLeave sends subscribers a push when a connection joins or
	// leaves the channel. It requires Presence. Default false.
	JoinLeave bool
}

// Config is the whole authorization policy.
type Config struct {
	// Namespaces lists every namespace; channels in any other namespace
	// are refused with ErrUnknownNamespace.
	Namespaces []NamespaceConfig
	// Roles defines the RBAC roles that subjects' groups refer to. Groups
	// that are not roles still count for Access.Groups.
	Roles []Role
	// MaxRuleNodes limits the size of each rule in expression nodes.
	// Zero: DefaultMaxRuleNodes.
	MaxRuleNodes int
}

// Set is an immutable, validated policy, safe for concurrent use.
type Set struct {
	ns       map[string]*namespace
	roles    map[string]*role
	maxNodes int
	evals    sync.Pool // of *evaluator
}

// namespace is a validated NamespaceConfig.
type namespace struct {
	cfg      NamespaceConfig
	sub, pub access
}

// New validates cfg and returns a Set. It compiles every rule once,
// type-checked against the rule environment. Unknown or cyclic role
// inheritance, invalid permissions or group names, invalid or too large
// rules, and invalid or duplicate namespaces are errors naming the culprit.
func New(cfg Config) (*Set, error) {
	s := &Set{maxNodes: cfg.MaxRuleNodes}
	if s.maxNodes < 0 {
		return nil, fmt.Errorf("policy: negative MaxRuleNodes %d", cfg.MaxRuleNodes)
	}
	if s.maxNodes == 0 {
		s.maxNodes = DefaultMaxRuleNodes
	}
	roles, err := compileRoles(cfg.Roles)
	if err != nil {
		return nil, err
	}
	s.roles = roles
	s.ns = make(map[string]*namespace, len(cfg.Namespaces))
	for _, n := range cfg.Namespaces {
		if err := ValidChannel(n.Name + ":x"); err != nil || strings.ContainsAny(n.Name, "#,:") {
			return nil, fmt.Errorf("policy: namespace %q: invalid name", n.Name)
		}
		if _, dup := s.ns[n.Name]; dup {
			return nil, fmt.Errorf("policy: namespace %q defined twice", n.Name)
		}
		if n.HistorySize < 0 || n.HistoryTTL < 0 {
			return nil, fmt.Errorf("policy: namespace %q: negative history setting", n.Name)
		}
		if n.JoinLeave && !n.Presence {
			return nil, fmt.Errorf("policy: namespace %q: JoinLeave requires Presence", n.Name)
		}
		c := &namespace{}
		if c.sub, err = s.compileAccess(n.Subscribe, true); err != nil {
			return nil, fmt.Errorf("policy: namespace %q: subscribe: %w", n.Name, err)
		}
		if c.pub, err = s.compileAccess(n.Publish, true); err != nil {
			return nil, fmt.Errorf("policy: namespace %q: publish: %w", n.Name, err)
		}
		n.Subscribe = cloneAccess(n.Subscribe)
		n.Publish = cloneAccess(n.Publish)
		c.cfg = n
		s.ns[n.Name] = c
	}
	return s, nil
}

// NewSet is New(Config{Namespaces: namespaces}).
func NewSet(namespaces ...NamespaceConfig) (*Set, error) {
	return New(Config{Namespaces: namespaces})
}

// lookup validates channel and finds its namespace.
func (s *Set) lookup(channel string) (*namespace, error) {
	if err := ValidChannel(channel); err != nil {
		return nil, err
	}
	n, ok := s.ns[Namespace(channel)]
	if !ok {
		return nil, ErrUnknownNamespace
	}
	return n, nil
}

// Lookup validates a channel name as the client would write it and returns
// its namespace policy; it is meant for server-side publishing. For
// tenant-scoped namespaces use Internal to get the broker's channel name.
func (s *Set) Lookup(channel string) (NamespaceConfig, error) {
	n, err := s.lookup(channel)
	if err != nil {
		return NamespaceConfig{}, err
	}
	return n.cfg, nil
}

// Authorize decides op on c.Channel. It returns the namespace and the
// internal channel name to use with the broker, which differs from
// c.Channel only in tenant-scoped namespaces (see External). Errors wrap
// ErrInvalidChannel, ErrUnknownNamespace, ErrNoTenant or ErrDenied; the
// namespace is returned whenever it is known, the internal name only on
// success.
func (s *Set) Authorize(op Op, c Check) (ns NamespaceConfig, internal string, err error) {
	n, err := s.lookup(c.Channel)
	if err != nil {
		return NamespaceConfig{}, "", err
	}
	var a *access
	switch op {
	case OpSubscribe:
		a = &n.sub
	case OpPublish:
		a = &n.pub
	default:
		return n.cfg, "", errUnknownOp
	}
	if n.cfg.TenantScoped && !ValidTenant(c.Subject.Tenant) {
		return n.cfg, "", ErrNoTenant
	}
	if err := s.check(a, &c.Subject, c.Channel, &c.Request, c.TokenGranted); err != nil {
		return n.cfg, "", err
	}
	if n.cfg.TenantScoped {
		return n.cfg, tenantChannel(c.Channel, c.Subject.Tenant), nil
	}
	return n.cfg, c.Channel, nil
}

// Internal validates a channel name as the client would write it and maps
// it to the broker's name for server-side publishing. tenant is required
// for a tenant-scoped namespace (ErrNoTenant if empty or invalid) and must
// be empty otherwise (ErrDenied), so a publish meant for one tenant never
// lands in a shared channel.
func (s *Set) Internal(channel, tenant string) (NamespaceConfig, string, error) {
	n, err := s.lookup(channel)
	if err != nil {
		return NamespaceConfig{}, "", err
	}
	if !n.cfg.TenantScoped {
		if tenant != "" {
			return n.cfg, "", errTenantUnscoped
		}
		return n.cfg, channel, nil
	}
	if !ValidTenant(tenant) {
		return n.cfg, "", ErrNoTenant
	}
	return n.cfg, tenantChannel(channel, tenant), nil
}
