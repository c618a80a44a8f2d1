// Package origin decides whether a browser origin may open a WebSocket
// connection or make a state-changing request.
//
// Origins are compared as the browser serialises them in the Origin header:
// scheme "://" host [":" port]. Scheme and host are compared
// case-insensitively and the default port of http (80) and https (443) is
// the same as no port, so "https://A.com:443" and "https://a.com" are one
// origin. Nothing else is normalised: a host must be ASCII (browsers send
// internationalised names in their punycode "xn--" form), IPv6 hosts are
// bracketed and compared as addresses, and a trailing dot is significant,
// because browsers treat "https://example.com." as an origin distinct from
// "https://example.com".
//
// Anything that does not parse as such an origin, including "null" (sent by
// sandboxed frames and file: pages) and values with a path, query, userinfo
// or whitespace, is never allowed.
package origin
