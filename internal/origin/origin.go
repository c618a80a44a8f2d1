package origin

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Policy decides whether a browser Origin may open a connection or make a
// state-changing request. It holds exact origins and subdomain wildcards.
//
// A nil Policy, or one built from an empty list, allows nothing; the
// "same origin as the request" default is expressed with FromRequest and
// Equal, or SameOrigin. A Policy is immutable and safe for concurrent use.
type Policy struct {
	exact     map[key]struct{}
	wildcards []wildcard
}

// key is a parsed origin. port is the effective port: the scheme's default
// when none was written, or 0 for a scheme without a default.
type key struct {
	scheme string
	host   string // lower case; IPv6 in canonical bracketed form
	port   int
}

// wildcard matches hosts ending in suffix (".example.com") with at least one
// label before it, under one scheme and port.
type wildcard struct {
	scheme string
	suffix string
	port   int
}

// New returns a Policy allowing the given origins. Each entry is either
//
//   - an exact origin, "https://app.example.com", "http://127.0.0.1:8080" or
//     "http://[::1]:8080": scheme, host and optional port, with no path (not
//     even "/"), query, fragment or userinfo; or
//   - a subdomain wildcard, "https://*.example.com", matching any host with
//     one or more labels before ".example.com" (a.example.com,
//     a.b.example.com) under the same scheme and port, but never
//     example.com itself.
//
// The wildcard must be the whole first label and the rest must be a domain
// name of at least two labels whose last label is not numeric. A bare "*",
// "*.com", "https://*", "https://*.com", "https://a*.example.com", an entry
// without a scheme, or a non-ASCII host is an error naming the entry. Note
// that New cannot tell a public suffix such as "co.uk" from a domain you
// own, so "https://*.co.uk" is accepted and would allow every site under it.
func New(allowed []string) (*Policy, error) {
	p := &Policy{exact: make(map[key]struct{}, len(allowed))}
	for _, entry := range allowed {
		if err := p.add(entry); err != nil {
			return nil, fmt.Errorf("origin: invalid allowed origin %q: %w", entry, err)
		}
	}
	return p, nil
}

var (
	errBareStar    = errors.New(`"*" would allow every site; list origins explicitly`)
	errNoScheme    = errors.New(`missing scheme (want "https://host")`)
	errScheme      = errors.New("invalid scheme")
	errNoHost      = errors.New("missing host")
	errPath        = errors.New("must not have a path, query or fragment")
	errUserinfo    = errors.New("must not have userinfo")
	errPort        = errors.New("invalid port")
	errHost        = errors.New("invalid host")
	errNonASCII    = errors.New(`host must be ASCII (use the punycode "xn--" form)`)
	errIPv6        = errors.New("invalid IPv6 host")
	errWildcard    = errors.New(`a wildcard must be the whole first label, as in "https://*.example.com"`)
	errWildcardTLD = errors.New("a wildcard needs a domain of at least two labels after it")
)

func (p *Policy) add(entry string) error {
	if strings.TrimSpace(entry) == "*" {
		return errBareStar
	}
	scheme, hostport, err := splitScheme(entry)
	if err != nil {
		return err
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return err
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		suffix, err := parseHost(rest)
		if err != nil {
			if strings.Contains(rest, "*") {
				return errWildcard
			}
			return err
		}
		if err := checkWildcardSuffix(suffix); err != nil {
			return err
		}
		k, err := makeKey(scheme, "", port)
		if err != nil {
			return err
		}
		p.wildcards = append(p.wildcards, wildcard{scheme: k.scheme, suffix: "." + suffix, port: k.port})
		return nil
	}
	if strings.Contains(host, "*") {
		return errWildcard
	}
	h, err := parseHost(host)
	if err != nil {
		return err
	}
	k, err := makeKey(scheme, h, port)
	if err != nil {
		return err
	}
	p.exact[k] = struct{}{}
	return nil
}

func checkWildcardSuffix(suffix string) error {
	if suffix[0] == '[' {
		return errWildcardTLD
	}
	labels := strings.Split(strings.TrimSuffix(suffix, "."), ".")
	if len(labels) < 2 {
		return errWildcardTLD
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		// TLDs are never numeric; this is (part of) an IPv4 address.
		return errWildcardTLD
	}
	return nil
}

// Allowed reports whether origin, as sent in the Origin header, is allowed.
// "null", the empty string and anything unparsable are not.
func (p *Policy) Allowed(origin string) bool {
	if p == nil {
		return false
	}
	k, err := parse(origin)
	if err != nil {
		return false
	}
	if _, ok := p.exact[k]; ok {
		return true
	}
	if k.host[0] == '[' {
		return false
	}
	for _, w := range p.wildcards {
		if w.scheme == k.scheme && w.port == k.port &&
			len(k.host) > len(w.suffix) && strings.HasSuffix(k.host, w.suffix) {
			return true
		}
	}
	return false
}

// SameOrigin reports whether origin, as sent in the Origin header, is the
// origin of publicURL, the address browsers use to reach the gateway (a
// "ws" or "wss" scheme counts as "http" or "https"; path and query are
// ignored). It is false if either does not parse.
func SameOrigin(origin string, publicURL *url.URL) bool {
	if publicURL == nil {
		return false
	}
	scheme := strings.ToLower(publicURL.Scheme)
	switch scheme {
	case "ws":
		scheme = "http"
	case "wss":
		scheme = "https"
	}
	want, err := parseParts(scheme, publicURL.Host)
	if err != nil {
		return false
	}
	got, err := parse(origin)
	return err == nil && got == want
}

// FromRequest returns the request's own origin, scheme://host, for the
// default "same origin as the request" policy: the scheme is https when
// r.TLS is set or tls is true (pass true behind a TLS-terminating proxy; the
// X-Forwarded-Proto header is not trusted), and the host is r.Host. The
// result is normalised (lower case, default port dropped), so it equals the
// Origin header a browser on that page sends; compare with Equal to accept
// other spellings too. It is "" if r.Host is empty or not a valid host.
func FromRequest(r *http.Request, tls bool) string {
	scheme := "http"
	if tls || r.TLS != nil {
		scheme = "https"
	}
	k, err := parseParts(scheme, r.Host)
	if err != nil {
		return ""
	}
	return k.String()
}

// Equal reports whether a and b are the same origin after normalisation
// (case, default ports, IPv6 spelling). It is false if either does not
// parse, so Equal("null", "null") is false.
func Equal(a, b string) bool {
	ka, err := parse(a)
	if err != nil {
		return false
	}
	kb, err := parse(b)
	return err == nil && ka == kb
}

// String serialises k as a browser would.
func (k key) String() string {
	s := k.scheme + "://" + k.host
	if k.port != 0 && k.port != defaultPort(k.scheme) {
		s += ":" + strconv.Itoa(k.port)
	}
	return s
}

// parse parses a serialised origin with a concrete host.
func parse(origin string) (key, error) {
	scheme, hostport, err := splitScheme(origin)
	if err != nil {
		return key{}, err
	}
	return parseParts(scheme, hostport)
}

func parseParts(scheme, hostport string) (key, error) {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return key{}, err
	}
	h, err := parseHost(host)
	if err != nil {
		return key{}, err
	}
	return makeKey(scheme, h, port)
}

// splitScheme splits "scheme://rest" and rejects a path, query, fragment
// or userinfo in rest.
func splitScheme(s string) (scheme, rest string, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", "", errNoScheme
	}
	if scheme == "" || !isAlpha(scheme[0]) {
		return "", "", errScheme
	}
	for i := 1; i < len(scheme); i++ {
		if c := scheme[i]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return "", "", errScheme
		}
	}
	if strings.ContainsAny(rest, "/?#") {
		return "", "", errPath
	}
	if strings.Contains(rest, "@") {
		return "", "", errUserinfo
	}
	if rest == "" {
		return "", "", errNoHost
	}
	return strings.ToLower(scheme), rest, nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port". port
// is "" when absent.
func splitHostPort(s string) (host, port string, err error) {
	if s == "" {
		return "", "", errNoHost
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", errIPv6
		}
		host, rest := s[:end+1], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if rest[0] != ':' {
			return "", "", errHost
		}
		if rest[1:] == "" {
			return "", "", errPort
		}
		return host, rest[1:], nil
	}
	host, port, ok := strings.Cut(s, ":")
	if ok && port == "" {
		return "", "", errPort
	}
	return host, port, nil
}

// parseHost validates and normalises a host: a bracketed IPv6 address
// without zone, or ASCII labels of letters, digits, '-' and '_' separated
// by dots, optionally with one trailing dot, which is kept.
func parseHost(h string) (string, error) {
	if h == "" {
		return "", errNoHost
	}
	if h[0] == '[' {
		if len(h) < 2 || h[len(h)-1] != ']' {
			return "", errIPv6
		}
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", errIPv6
		}
		return "[" + a.String() + "]", nil
	}
	if len(h) > 254 {
		return "", errHost
	}
	// Check before lower-casing: strings.ToLower maps some non-ASCII runes
	// (the Kelvin sign U+212A) to ASCII letters.
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 0x80:
			return "", errNonASCII
		case c == '.':
			if label == 0 {
				return "", errHost
			}
			label = 0
		case isAlpha(c) || isDigit(c) || c == '-' || c == '_':
			label++
			if label > 63 {
				return "", errHost
			}
		default:
			return "", errHost
		}
	}
	return strings.ToLower(h), nil
}

// makeKey builds a key from a lower-case scheme, a parsed host and a port
// string ("" for none).
func makeKey(scheme, host, port string) (key, error) {
	k := key{scheme: scheme, host: host, port: defaultPort(scheme)}
	if port == "" {
		return k, nil
	}
	if len(port) > 5 {
		return key{}, errPort
	}
	n := 0
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return key{}, errPort
		}
		n = n*10 + int(port[i]-'0')
	}
	if n < 1 || n > 65535 {
		return key{}, errPort
	}
	k.port = n
	return k, nil
}

func defaultPort(scheme string) int {
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
