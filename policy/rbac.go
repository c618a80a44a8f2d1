package policy

import (
	"fmt"
	"slices"
	"strings"
)

// MaxPermLen is the maximum length of a permission in bytes.
const MaxPermLen = 256

// MaxNameLen is the maximum length of a role or group name in bytes.
const MaxNameLen = 128

// Role is an RBAC role: the permissions it grants and the roles it includes.
// A role's permissions include those of every role it inherits, transitively;
// a subject in the role also counts as a member of every inherited role.
type Role struct {
	// Name is the role name; it is matched against the subject's groups.
	Name string
	// Inherits names the roles this role includes. Each must be defined in
	// the same Config; cycles are rejected.
	Inherits []string
	// Perms are the permissions the role grants; '*' segments are allowed
	// (see PermMatch).
	Perms []string
}

// role is a Role after validation: its transitive closure precomputed.
type role struct {
	// below holds every role this role inherits, transitively, not itself;
	// belowList holds the same names sorted.
	below     map[string]struct{}
	belowList []string
	// perms are the role's own and inherited permissions, deduplicated.
	perms []string
}

// PermMatch reports whether the granted permission covers the required one.
// Permissions are non-empty segments separated by ':'; a segment consists of
// [A-Za-z0-9_.-]. In granted:
//
//   - "*" alone matches every permission;
//   - a trailing "*" segment matches one or more remaining segments:
//     "posts:*" matches "posts:read" and "posts:read:own", but neither
//     "posts" nor "postsx:read";
//   - a "*" segment elsewhere matches exactly one segment: "posts:*:own"
//     matches "posts:edit:own";
//   - there is no partial-segment globbing: "post*" is invalid and matches
//     nothing.
//
// The required permission is matched literally: a '*' segment in it is only
// covered by a granted '*' at the same place or a broader wildcard. An
// invalid granted or required permission never matches.
func PermMatch(granted, required string) bool {
	return validPerm(required, true) && permMatch(granted, required)
}

// permMatch is PermMatch for a required permission known to be valid.
func permMatch(granted, required string) bool {
	g, r := granted, required
	for {
		gs, grest, gmore := strings.Cut(g, ":")
		if !validSegment(gs, true) {
			return false
		}
		if gs == "*" && !gmore {
			// Trailing wildcard: r still holds at least one segment.
			return true
		}
		rs, rrest, rmore := strings.Cut(r, ":")
		if gs != "*" && gs != rs {
			return false
		}
		if !gmore || !rmore {
			return gmore == rmore
		}
		g, r = grest, rrest
	}
}

// ValidPerm reports whether p is a well-formed permission. With wildcards
// false, '*' segments are refused (required permissions); with wildcards
// true they are allowed (granted permissions).
func ValidPerm(p string, wildcards bool) bool { return validPerm(p, wildcards) }

func validPerm(p string, wildcards bool) bool {
	if len(p) == 0 || len(p) > MaxPermLen {
		return false
	}
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != ':' {
			continue
		}
		if !validSegment(p[start:i], wildcards) {
			return false
		}
		start = i + 1
	}
	return true
}

// segmentByte marks the bytes allowed in a permission segment, a tenant
// and (with ':') a role or group name: [A-Za-z0-9_.-].
var segmentByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	return t
}()

func validSegment(s string, wildcard bool) bool {
	if s == "" {
		return false
	}
	if s == "*" {
		return wildcard
	}
	for i := 0; i < len(s); i++ {
		if !segmentByte[s[i]] {
			return false
		}
	}
	return true
}

// validName reports whether n is a usable role or group name:
// [A-Za-z0-9_.:-], 1 to MaxNameLen bytes.
func validName(n string) bool {
	if len(n) == 0 || len(n) > MaxNameLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !segmentByte[n[i]] && n[i] != ':' {
			return false
		}
	}
	return true
}

// compileRoles validates roles and computes their transitive closures.
func compileRoles(roles []Role) (map[string]*role, error) {
	defs := make(map[string]Role, len(roles))
	for _, r := range roles {
		if !validName(r.Name) {
			return nil, fmt.Errorf("policy: role %q: invalid name", r.Name)
		}
		if _, dup := defs[r.Name]; dup {
			return nil, fmt.Errorf("policy: role %q defined twice", r.Name)
		}
		for _, p := range r.Perms {
			if !validPerm(p, true) {
				return nil, fmt.Errorf("policy: role %q: invalid permission %q", r.Name, p)
			}
		}
		defs[r.Name] = r
	}
	for _, r := range roles {
		for _, in := range r.Inherits {
			if _, ok := defs[in]; !ok {
				return nil, fmt.Errorf("policy: role %q inherits unknown role %q", r.Name, in)
			}
		}
	}
	// Depth-first search in definition order for a deterministic error.
	const (
		unvisited = iota
		visiting
		done
	)
	state := make(map[string]int, len(defs))
	out := make(map[string]*role, len(defs))
	var path []string
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			i := slices.Index(path, name)
			return fmt.Errorf("policy: role cycle: %s", strings.Join(append(slices.Clone(path[i:]), name), " -> "))
		}
		state[name] = visiting
		path = append(path, name)
		def := defs[name]
		c := &role{below: make(map[string]struct{})}
		seen := make(map[string]struct{})
		add := func(p string) {
			if _, ok := seen[p]; !ok {
				seen[p] = struct{}{}
				c.perms = append(c.perms, p)
			}
		}
		for _, p := range def.Perms {
			add(p)
		}
		for _, in := range def.Inherits {
			if err := visit(in); err != nil {
				return err
			}
			sub := out[in]
			c.below[in] = struct{}{}
			for b := range sub.below {
				c.below[b] = struct{}{}
			}
			for _, p := range sub.perms {
				add(p)
			}
		}
		for b := range c.below {
			c.belowList = append(c.belowList, b)
		}
		slices.Sort(c.belowList)
		path = path[:len(path)-1]
		state[name] = done
		out[name] = c
		return nil
	}
	for _, r := range roles {
		if err := visit(r.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// InGroup reports whether sub is in group, directly or through a role that
// inherits it.
func (s *Set) InGroup(sub Subject, group string) bool { return s.inGroup(&sub, group) }

func (s *Set) inGroup(sub *Subject, group string) bool {
	for _, g := range sub.Groups {
		if g == group {
			return true
		}
		if r, ok := s.roles[g]; ok {
			if _, ok := r.below[group]; ok {
				return true
			}
		}
	}
	return false
}

// HasPerm reports whether sub's effective permissions cover perm (see
// PermMatch).
func (s *Set) HasPerm(sub Subject, perm string) bool { return s.hasPerm(&sub, perm) }

func (s *Set) hasPerm(sub *Subject, perm string) bool {
	if !validPerm(perm, true) {
		return false
	}
	return s.holds(sub, perm)
}

// holds is hasPerm for a perm known to be valid.
func (s *Set) holds(sub *Subject, perm string) bool {
	for _, p := range sub.Perms {
		if permMatch(p, perm) {
			return true
		}
	}
	for _, g := range sub.Groups {
		if r, ok := s.roles[g]; ok {
			for _, p := range r.perms {
				if permMatch(p, perm) {
					return true
				}
			}
		}
	}
	return false
}

// hasRoles reports whether any of sub's groups is a defined role, that is
// whether role expansion changes its groups or permissions.
func (s *Set) hasRoles(sub *Subject) bool {
	for _, g := range sub.Groups {
		if _, ok := s.roles[g]; ok {
			return true
		}
	}
	return false
}

// Effective returns sub's permissions followed by those of its roles (its
// groups) and every role they inherit, deduplicated, in a new slice.
func (s *Set) Effective(sub Subject) []string {
	return s.effective(&sub, nil, make(map[string]struct{}))
}

// effective appends sub's effective permissions to dst, using seen (which
// must be empty) for deduplication.
func (s *Set) effective(sub *Subject, dst []string, seen map[string]struct{}) []string {
	add := func(p string) {
		if _, ok := seen[p]; !ok {
			seen[p] = struct{}{}
			dst = append(dst, p)
		}
	}
	for _, p := range sub.Perms {
		add(p)
	}
	for _, g := range sub.Groups {
		if r, ok := s.roles[g]; ok {
			for _, p := range r.perms {
				add(p)
			}
		}
	}
	return dst
}

// expandGroups appends sub's groups and every role they inherit to dst,
// deduplicated with seen (which must be empty).
func (s *Set) expandGroups(sub *Subject, dst []string, seen map[string]struct{}) []string {
	add := func(g string) {
		if _, ok := seen[g]; !ok {
			seen[g] = struct{}{}
			dst = append(dst, g)
		}
	}
	for _, g := range sub.Groups {
		add(g)
	}
	for _, g := range sub.Groups {
		if r, ok := s.roles[g]; ok {
			for _, b := range r.belowList {
				add(b)
			}
		}
	}
	return dst
}
