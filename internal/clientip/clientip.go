package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds the client IP of a request. Forwarding headers are believed
// only when the TCP peer is a trusted proxy.
//
// When the peer is trusted, X-Forwarded-For is walked from right to left
// (newest hop first, across all header lines), skipping addresses that are
// themselves trusted proxies; the first untrusted address is the client. If
// every address is trusted, the leftmost one is the client. An invalid entry
// stops the walk and the last trusted hop is the answer, so a client can
// never push its choice past a proxy that appended the real address. The
// RFC 7239 Forwarded header ("for=" parameters) is walked the same way when
// X-Forwarded-For is absent; "unknown" and obfuscated ("_x") identifiers
// count as invalid. IPv4-mapped IPv6 addresses are returned as IPv4 and
// zones are dropped.
//
// A nil or zero Resolver trusts no proxy. A Resolver is safe for concurrent
// use.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts forwarding headers from the given
// proxies. Each entry is a CIDR ("10.0.0.0/8", "2001:db8::/32") or a single
// IPv4 or IPv6 address; surrounding spaces are ignored and host bits in a
// CIDR are masked off. An empty, unparsable or zoned entry is an error that
// names it. A nil or empty list trusts no proxy.
//
// Trusting a range means trusting every host in it to tell the truth about
// clients: "0.0.0.0/0" lets any client choose its own address.
func New(trustedProxies []string) (*Resolver, error) {
	r := &Resolver{trusted: make([]netip.Prefix, 0, len(trustedProxies))}
	for _, entry := range trustedProxies {
		p, err := parseTrusted(entry)
		if err != nil {
			return nil, fmt.Errorf("clientip: invalid trusted proxy %q: %w", entry, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

var (
	errEmpty = errors.New("empty entry")
	errZone  = errors.New("zoned addresses are not supported")
)

func parseTrusted(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errEmpty
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errZone
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ClientIP returns the client address of req. It is never the zero Addr when
// req.RemoteAddr holds an IP address, with or without a port; for a peer
// that is not an IP address (a Unix socket, say) it returns the zero Addr,
// which callers should treat as unknown.
func (r *Resolver) ClientIP(req *http.Request) netip.Addr {
	peer, ok := parseRemoteAddr(req.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !r.isTrusted(peer) {
		return peer
	}
	// The keys are canonical, so index the map directly.
	if xff := req.Header["X-Forwarded-For"]; hasValue(xff) {
		return r.walkXFF(xff, peer)
	}
	if fwd := req.Header["Forwarded"]; hasValue(fwd) {
		return r.walkForwarded(fwd, peer)
	}
	return peer
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	if r == nil {
		return false
	}
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// walkXFF walks X-Forwarded-For from the newest hop back; hop is the last
// trusted address seen (initially the peer).
func (r *Resolver) walkXFF(lines []string, hop netip.Addr) netip.Addr {
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for {
			j := strings.LastIndexByte(rest, ',')
			// Empty list elements are ignored (RFC 9110, section 5.6.1).
			if elem := trimOWS(rest[j+1:]); elem != "" {
				a, ok := parseHeaderAddr(elem)
				if !ok {
					return hop
				}
				if !r.isTrusted(a) {
					return a
				}
				hop = a
			}
			if j < 0 {
				break
			}
			rest = rest[:j]
		}
	}
	return hop
}

// walkForwarded walks the for= parameters of RFC 7239 Forwarded elements
// from the newest back, like walkXFF. Elements are split from the right so
// that a malformed (say, unbalanced quote) element written by the client
// cannot swallow the elements proxies appended after it.
func (r *Resolver) walkForwarded(lines []string, hop netip.Addr) netip.Addr {
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for {
			elem, before, more := lastElement(rest)
			if elem = trimOWS(elem); elem != "" {
				a, ok := forwardedFor(elem)
				if !ok {
					return hop
				}
				if !r.isTrusted(a) {
					return a
				}
				hop = a
			}
			if !more {
				break
			}
			rest = before
		}
	}
	return hop
}

func hasValue(lines []string) bool {
	for _, l := range lines {
		if trimOWS(l) != "" {
			return true
		}
	}
	return false
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseRemoteAddr parses the TCP peer: "ip:port", "[ipv6]:port", or an
// address without a port. The zone of a link-local peer is dropped.
func parseRemoteAddr(s string) (netip.Addr, bool) {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(s); err != nil {
		if a, err = parseBracketed(s); err != nil {
			return netip.Addr{}, false
		}
	}
	return a.WithZone("").Unmap(), true
}

// parseHeaderAddr parses an X-Forwarded-For entry: an address, optionally
// with a port, IPv6 optionally in brackets. Zones are meaningless in a header
// and make the entry invalid.
func parseHeaderAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(s); err == nil {
			a = ap.Addr()
		} else if a, err = parseBracketed(s); err != nil {
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

var errNotBracketed = errors.New("not a bracketed IPv6 address")

func parseBracketed(s string) (netip.Addr, error) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return netip.Addr{}, errNotBracketed
	}
	a, err := netip.ParseAddr(s[1 : len(s)-1])
	if err != nil {
		return netip.Addr{}, err
	}
	if !a.Is6() {
		return netip.Addr{}, errNotBracketed
	}
	return a, nil
}

// lastElement splits s at its last comma outside a quoted string. more
// reports whether there was such a comma.
func lastElement(s string) (elem, before string, more bool) {
	inQuote := false
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case '"':
			if !inQuote {
				inQuote = true
			} else if !escaped(s, i) {
				inQuote = false
			}
		case ',':
			if !inQuote {
				return s[i+1:], s[:i], true
			}
		}
	}
	return s, "", false
}

// escaped reports whether s[i] is preceded by an odd number of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// forwardedFor returns the address of the single for= parameter of a
// Forwarded element. A malformed element, a missing or repeated for=, or a
// node that is not an IP address ("unknown", "_obfuscated") is invalid.
func forwardedFor(elem string) (netip.Addr, bool) {
	var node string
	found := false
	for elem != "" {
		pair, rest, ok := nextPair(elem)
		if !ok {
			return netip.Addr{}, false
		}
		elem = rest
		if pair = trimOWS(pair); pair == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok || !isToken(name) {
			return netip.Addr{}, false
		}
		if !strings.EqualFold(name, "for") {
			continue
		}
		if found {
			return netip.Addr{}, false
		}
		found = true
		if node, ok = unquote(value); !ok {
			return netip.Addr{}, false
		}
	}
	if !found {
		return netip.Addr{}, false
	}
	return parseNode(node)
}

// nextPair returns the text before the first ';' outside a quoted string.
func nextPair(s string) (pair, rest string, ok bool) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ';' && !inQuote:
			return s[:i], s[i+1:], true
		}
	}
	if inQuote {
		return "", "", false
	}
	return s, "", true
}

// unquote returns a parameter value without its quotes. A node never needs
// escapes, so a backslash makes the value invalid.
func unquote(v string) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || strings.ContainsAny(v, "\"\\ \t,;") {
		return "", false
	}
	return v, true
}

// parseNode parses an RFC 7239 node: IPv4 or "[IPv6]", optionally followed
// by ":port". IPv6 must be bracketed, as the RFC requires.
func parseNode(v string) (netip.Addr, bool) {
	var host, port string
	if v[0] == '[' {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host, port = v[1:end], v[end+1:]
	} else {
		host, port = v, ""
		if i := strings.IndexByte(v, ':'); i >= 0 {
			host, port = v[:i], v[i:]
		}
	}
	if port != "" && (port[0] != ':' || !validPort(port[1:])) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || a.Is6() != (v[0] == '[') {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort accepts a port number or an obfuscated port ("_" and
// letters, digits, '.', '_', '-').
func validPort(p string) bool {
	if p == "" {
		return false
	}
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			c := p[i]
			if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
