package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers turn each into the same generic client error;
// the wrapped detail (see the errors returned by Authorize) is for logs and
// the audit trail only.
var (
	// ErrInvalidChannel reports a channel name outside the grammar.
	ErrInvalidChannel = errors.New("policy: invalid channel name")
	// ErrUnknownNamespace reports a channel in a namespace nobody configured.
	ErrUnknownNamespace = errors.New("policy: unknown namespace")
	// ErrDenied reports that the subject may not do what it asked.
	ErrDenied = errors.New("policy: denied")
	// ErrNoTenant reports a tenant-scoped namespace used without a valid
	// tenant. It wraps ErrDenied, so errors.Is(err, ErrDenied) also holds.
	ErrNoTenant = fmt.Errorf("%w: no valid tenant", ErrDenied)
)

// MaxChannelLen is the maximum channel name length in bytes.
const MaxChannelLen = 128

// MaxEventNameLen is the maximum event name length in bytes.
const MaxEventNameLen = 64

// ValidChannel reports whether name follows the grammar namespace:name with
// characters [A-Za-z0-9_.:\-#], at most MaxChannelLen bytes, and neither
// part empty. A '#' may appear once, followed by a non-empty
// comma-separated user list; ',' appears nowhere else.
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
	// Commas separate users: none in the namespace or the name, whether
	// or not a user list follows.
	if strings.ContainsAny(ns, "#,") || base == "" || strings.Contains(base, ",") {
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
