package apikey

import (
	"fmt"
	"strings"

	"github.com/livegate/livegate/policy"
)

// Verb is what a scope allows.
type Verb string

// Verbs. Publish, Presence and History take a channel pattern
// ("publish:room:*"); the others take none.
const (
	// VerbPublish allows publishing to channels matching the pattern, one
	// at a time or in a broadcast (which needs every channel allowed).
	VerbPublish Verb = "publish"
	// VerbPresence allows reading the presence of matching channels.
	VerbPresence Verb = "presence"
	// VerbHistory allows reading the history of matching channels.
	VerbHistory Verb = "history"
	// VerbDisconnect allows disconnecting users, sessions and tokens.
	VerbDisconnect Verb = "disconnect"
	// VerbRevoke allows revoking users, sessions and tokens.
	VerbRevoke Verb = "revoke"
	// VerbChannels allows listing the active channels.
	VerbChannels Verb = "channels"
	// VerbAdmin allows everything.
	VerbAdmin Verb = "admin"
)

// hasPattern reports whether scopes of verb v carry a channel pattern, and
// whether v is known at all.
func (v Verb) hasPattern() (pattern, known bool) {
	switch v {
	case VerbPublish, VerbPresence, VerbHistory:
		return true, true
	case VerbDisconnect, VerbRevoke, VerbChannels, VerbAdmin:
		return false, true
	}
	return false, false
}

// MaxScopes bounds the scopes of one key.
const MaxScopes = 64

// maxPatternLen bounds a channel pattern: a channel name plus room for
// wildcards.
const maxPatternLen = policy.MaxChannelLen + 64

// Scope is one permission of a key: a verb and, for publish, presence and
// history, a channel pattern.
//
// A pattern is either "*" (every channel) or "namespace:name" where the
// namespace is literal and the name may hold '*' wildcards but no ','.
// A '*' matches
// one or more characters of the channel grammar (letters, digits and
// "_.:-#,"), so "room:*" matches "room:1" and "room:a:b" but never
// "admin:x", "room:" or "roomx:1".
type Scope struct {
	Verb    Verb
	Pattern string // "" for verbs without a pattern
}

// String returns the scope in the form ParseScope reads.
func (s Scope) String() string {
	if s.Pattern == "" {
		return string(s.Verb)
	}
	return string(s.Verb) + ":" + s.Pattern
}

// ParseScope parses one scope: "publish:<pattern>", "presence:<pattern>",
// "history:<pattern>", "disconnect", "revoke", "channels" or "admin". An
// unknown verb, a missing or unexpected pattern, or a malformed pattern
// is an error wrapping ErrInvalidScope.
func ParseScope(s string) (Scope, error) {
	verb, pattern, hasColon := strings.Cut(s, ":")
	v := Verb(verb)
	wantPattern, known := v.hasPattern()
	switch {
	case !known:
		return Scope{}, fmt.Errorf("%w: unknown verb in %q", ErrInvalidScope, truncate(s))
	case wantPattern && !hasColon:
		return Scope{}, fmt.Errorf("%w: %q needs a channel pattern (%s:<pattern>)", ErrInvalidScope, truncate(s), verb)
	case !wantPattern && hasColon:
		return Scope{}, fmt.Errorf("%w: %q takes no channel pattern", ErrInvalidScope, truncate(s))
	}
	if wantPattern {
		if err := validPattern(pattern); err != nil {
			return Scope{}, fmt.Errorf("%w: %q: %v", ErrInvalidScope, truncate(s), err)
		}
	}
	return Scope{Verb: v, Pattern: pattern}, nil
}

// truncate shortens user input quoted in an error.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// validPattern checks a channel pattern.
func validPattern(p string) error {
	if p == "*" {
		return nil
	}
	if len(p) == 0 || len(p) > maxPatternLen {
		return fmt.Errorf("pattern must be 1 to %d bytes", maxPatternLen)
	}
	ns, name, ok := strings.Cut(p, ":")
	if !ok || ns == "" || name == "" {
		return fmt.Errorf("pattern must be namespace:name or *")
	}
	if strings.Contains(ns, "*") {
		return fmt.Errorf("the namespace of a pattern must be literal")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == ',' || !channelByte(c) && c != '*' {
			return fmt.Errorf("character %q not allowed in a pattern", c)
		}
	}
	if strings.Contains(ns, "#") {
		return fmt.Errorf("character '#' in the namespace")
	}
	if strings.Contains(p, "**") {
		return fmt.Errorf("consecutive wildcards")
	}
	if !strings.Contains(name, "*") {
		// A literal pattern must be a channel name.
		if err := policy.ValidChannel(p); err != nil {
			return fmt.Errorf("not a valid channel name")
		}
	}
	return nil
}

// channelByte reports whether c may appear in a channel name.
func channelByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '_', c == '.', c == ':', c == '-', c == '#', c == ',':
		return true
	}
	return false
}

// Match reports whether channel matches the scope's pattern. Channels
// outside the channel grammar never match.
func (s Scope) Match(channel string) bool {
	if s.Pattern == "" || policy.ValidChannel(channel) != nil {
		return false
	}
	return matchPattern(s.Pattern, channel)
}

// matchPattern matches a validated pattern against a valid channel name:
// '*' matches one or more bytes. The greedy algorithm with one backtrack
// point runs in O(len(p)·len(s)) at worst.
func matchPattern(p, s string) bool {
	if p == "*" {
		return true
	}
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			// Consume one byte for the '*' (it matches at least one),
			// remembering where to extend it.
			star, mark = pi, si+1
			pi++
			si++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	return pi == len(p)
}

// Scopes is a key's set of scopes.
type Scopes []Scope

// ParseScopes parses a comma-separated list of scopes, ignoring blanks
// around each. At least one scope is required and at most MaxScopes;
// duplicates are removed. Errors wrap ErrInvalidScope.
//
// The comma separates scopes, so a pattern holds no literal ','; a '*'
// still matches the ',' of a user-limited channel ("room:x#a,b").
func ParseScopes(list string) (Scopes, error) {
	var out Scopes
	seen := make(map[Scope]bool)
	for part := range strings.SplitSeq(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		s, err := ParseScope(part)
		if err != nil {
			return nil, err
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
		if len(out) > MaxScopes {
			return nil, fmt.Errorf("%w: more than %d scopes", ErrInvalidScope, MaxScopes)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no scopes", ErrInvalidScope)
	}
	return out, nil
}

// String returns the scopes comma-separated, in the form ParseScopes
// reads.
func (ss Scopes) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// Allows reports whether the scopes allow verb v, on channel for verbs
// with a pattern (channel is ignored for the others). The admin scope
// allows everything.
func (ss Scopes) Allows(v Verb, channel string) bool {
	wantPattern, known := v.hasPattern()
	if !known {
		return false
	}
	for _, s := range ss {
		switch {
		case s.Verb == VerbAdmin:
			return true
		case s.Verb != v:
		case !wantPattern:
			return true
		case s.Match(channel):
			return true
		}
	}
	return false
}
