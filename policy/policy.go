// Package policy decides what a connection may touch: the channel name
// grammar, the event name guard, and per-namespace rules for subscribing
// and client publishing. Everything is denied unless a rule allows it.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinel errors. Callers turn each into the same generic client error.
var (
	ErrInvalidChannel   = errors.New("policy: invalid channel name")
	ErrUnknownNamespace = errors.New("policy: unknown namespace")
	ErrDenied           = errors.New("policy: denied")
)

// MaxChannelLen is the maximum channel name length in bytes.
const MaxChannelLen = 128

// MaxEventNameLen is the maximum event name length in bytes.
const MaxEventNameLen = 64

// ValidChannel reports whether name follows the grammar namespace:name with
// characters [A-Za-z0-9_.:\-#], at most MaxChannelLen bytes, and neither
// part empty. A '#' may appear once, followed by a non-empty user list.
func ValidChannel(name string) error {
	if len(name) == 0 || len(name) > MaxChannelLen {
		return ErrInvalidChannel
	}
	for i := 0; i < len(name); i++ {
		if !channelByte(name[i]) && name[i] != ',' {
			return ErrInvalidChannel
		}
	}
	ns, rest, ok := strings.Cut(name, ":")
	if !ok || ns == "" || rest == "" {
		return ErrInvalidChannel
	}
	base, users, limited := strings.Cut(rest, "#")
	if strings.Contains(ns, "#") || strings.Contains(ns, ",") || base == "" {
		return ErrInvalidChannel
	}
	if limited {
		if users == "" || strings.Contains(users, "#") {
			return ErrInvalidChannel
		}
		for u := range strings.SplitSeq(users, ",") {
			if u == "" {
				return ErrInvalidChannel
			}
		}
	} else if strings.Contains(rest, ",") {
		return ErrInvalidChannel
	}
	return nil
}

func channelByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '_', c == '.', c == ':', c == '-', c == '#':
		return true
	}
	return false
}

// Namespace returns the namespace part of a valid channel name.
func Namespace(channel string) string {
	ns, _, _ := strings.Cut(channel, ":")
	return ns
}

// ChannelUsers returns the users a user-limited channel ("ns:name#a,b") is
// restricted to, and whether it is user-limited.
func ChannelUsers(channel string) ([]string, bool) {
	_, users, ok := strings.Cut(channel, "#")
	if !ok {
		return nil, false
	}
	return strings.Split(users, ","), true
}

// ValidEventName reports whether name matches ^[a-z][a-z0-9_]{0,63}$. It is
// checked before any handler lookup.
func ValidEventName(name string) bool {
	if len(name) == 0 || len(name) > MaxEventNameLen {
		return false
	}
	if c := name[0]; c < 'a' || c > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// SubscribeRule says who may subscribe to a namespace's channels.
type SubscribeRule int

// Subscribe rules. The zero value denies.
const (
	// SubscribeDeny refuses every subscription.
	SubscribeDeny SubscribeRule = iota
	// SubscribeAuthenticated allows any authenticated connection.
	SubscribeAuthenticated
)

// String returns the rule's configuration name.
func (r SubscribeRule) String() string {
	switch r {
	case SubscribeAuthenticated:
		return "authenticated"
	}
	return "deny"
}

// NamespaceConfig is the policy of one namespace. The zero value (apart
// from Name) denies subscribing and client publishing and keeps no history.
type NamespaceConfig struct {
	// Name is the namespace, the part of a channel before the first ':'.
	Name string
	// Subscribe says who may subscribe.
	Subscribe SubscribeRule
	// ClientPublish allows authenticated connections that may subscribe to
	// publish from the client. Default false: only the server publishes.
	ClientPublish bool
	// HistorySize is how many messages each channel keeps for recovery.
	HistorySize int
	// HistoryTTL is how long an idle channel's history is kept.
	HistoryTTL time.Duration
}

// Subject is who is asking.
type Subject struct {
	User string
}

// Set is an immutable collection of namespace policies, safe for
// concurrent use.
type Set struct {
	ns map[string]NamespaceConfig
}

// NewSet validates the namespaces and returns a Set.
func NewSet(namespaces ...NamespaceConfig) (*Set, error) {
	s := &Set{ns: make(map[string]NamespaceConfig, len(namespaces))}
	for _, n := range namespaces {
		if err := ValidChannel(n.Name + ":x"); err != nil || strings.ContainsAny(n.Name, "#,:") {
			return nil, fmt.Errorf("policy: namespace %q: invalid name", n.Name)
		}
		if _, dup := s.ns[n.Name]; dup {
			return nil, fmt.Errorf("policy: namespace %q defined twice", n.Name)
		}
		if n.HistorySize < 0 || n.HistoryTTL < 0 {
			return nil, fmt.Errorf("policy: namespace %q: negative history setting", n.Name)
		}
		s.ns[n.Name] = n
	}
	return s, nil
}

// Lookup returns the namespace policy for a channel.
func (s *Set) Lookup(channel string) (NamespaceConfig, error) {
	if err := ValidChannel(channel); err != nil {
		return NamespaceConfig{}, err
	}
	n, ok := s.ns[Namespace(channel)]
	if !ok {
		return NamespaceConfig{}, ErrUnknownNamespace
	}
	return n, nil
}

// CanSubscribe decides whether sub may subscribe to channel.
func (s *Set) CanSubscribe(sub Subject, channel string) (NamespaceConfig, error) {
	n, err := s.Lookup(channel)
	if err != nil {
		return n, err
	}
	if sub.User == "" || n.Subscribe != SubscribeAuthenticated {
		return n, ErrDenied
	}
	if users, limited := ChannelUsers(channel); limited && !slices.Contains(users, sub.User) {
		return n, ErrDenied
	}
	return n, nil
}

// CanPublish decides whether sub may publish to channel from the client.
func (s *Set) CanPublish(sub Subject, channel string) (NamespaceConfig, error) {
	n, err := s.CanSubscribe(sub, channel)
	if err != nil {
		return n, err
	}
	if !n.ClientPublish {
		return n, ErrDenied
	}
	return n, nil
}
