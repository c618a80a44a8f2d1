package origin

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	t.Parallel()
	p, err := New([]string{
		"https://app.example.com",
		"http://127.0.0.1:8080",
		"http://[::1]:8080",
		"https://*.example.com",
		"https://*.staging.example.org:8443",
		"https://xn--bcher-kva.example",
		"chrome-extension://abcdefghijklmnop",
		"https://dot.example.net.",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		origin string
		want   bool
	}{
		{"exact", "https://app.example.com", true},
		{"exact explicit default port", "https://app.example.com:443", true},
		{"exact uppercase host", "https://APP.Example.COM", true},
		{"exact uppercase scheme", "HTTPS://app.example.com", true},
		{"exact wrong scheme", "http://app.example.com", false},
		{"exact wrong port", "https://app.example.com:8443", false},
		{"http default port is not https default", "https://app.example.com:80", false},
		{"loopback with port", "http://127.0.0.1:8080", true},
		{"loopback other port", "http://127.0.0.1:8081", false},
		{"loopback no port", "http://127.0.0.1", false},
		{"localhost is not 127.0.0.1", "http://localhost:8080", false},
		{"IPv6", "http://[::1]:8080", true},
		{"IPv6 long form", "http://[0:0:0:0:0:0:0:1]:8080", true},
		{"IPv6 other port", "http://[::1]:8081", false},
		{"IPv6 unbracketed", "http://::1:8080", false},
		{"IPv6 zone", "http://[fe80::1%25eth0]:8080", false},
		{"IPv4 in brackets", "http://[127.0.0.1]:8080", false},
		{"other scheme", "chrome-extension://abcdefghijklmnop", true},
		{"other scheme has no default port", "chrome-extension://abcdefghijklmnop:443", false},

		// Wildcards.
		{"wildcard one label", "https://a.example.com", true},
		{"wildcard two labels", "https://a.b.example.com", true},
		{"wildcard explicit default port", "https://a.example.com:443", true},
		{"wildcard uppercase", "https://A.EXAMPLE.COM", true},
		{"wildcard punycode label", "https://xn--bcher-kva.example.com", true},
		{"wildcard apex", "https://example.com", false},
		{"wildcard scheme differs", "http://a.example.com", false},
		{"wildcard port differs", "https://a.example.com:8443", false},
		{"wildcard with port", "https://a.staging.example.org:8443", true},
		{"wildcard with port needs the port", "https://a.staging.example.org", false},
		{"wildcard empty label", "https://.example.com", false},
		{"wildcard literal star", "https://*.example.com", false},

		// Look-alikes.
		{"hyphen look-alike", "https://evil-example.com", false},
		{"prefix look-alike", "https://evilexample.com", false},
		{"suffix look-alike", "https://example.com.evil.io", false},
		{"suffix look-alike subdomain", "https://a.example.com.evil.io", false},
		{"exact as suffix", "https://app.example.com.evil.io", false},
		{"exact with prefix", "https://evilapp.example.com.evil.io", false},
		{"punycode homograph of example.com", "https://xn--exmple-cua.com", false},
		{"punycode homograph under wildcard apex", "https://a.xn--exmple-cua.com", false},
		{"raw unicode homograph", "https://a.ex\u0430mple.com", false},
		{"Kelvin sign does not fold to k", "https://\u212Aey.example.com", false},
		{"raw unicode of allowed punycode", "https://bücher.example", false},
		{"allowed punycode", "https://xn--bcher-kva.example", true},
		{"userinfo", "https://app.example.com@evil.io", false},
		{"userinfo reversed", "https://evil.io@app.example.com", false},
		{"backslash", "https://evil.io\\app.example.com", false},

		// Trailing dot: significant, as in browsers.
		{"trailing dot is another origin", "https://app.example.com.", false},
		{"trailing dot under wildcard", "https://a.example.com.", false},
		{"trailing dot entry", "https://dot.example.net.", true},
		{"trailing dot entry without dot", "https://dot.example.net", false},
		{"double trailing dot", "https://dot.example.net..", false},

		// Not origins.
		{"null", "null", false},
		{"empty", "", false},
		{"path", "https://app.example.com/", false},
		{"long path", "https://app.example.com/x", false},
		{"query", "https://app.example.com?x", false},
		{"fragment", "https://app.example.com#x", false},
		{"no scheme", "app.example.com", false},
		{"scheme relative", "//app.example.com", false},
		{"leading space", " https://app.example.com", false},
		{"trailing space", "https://app.example.com ", false},
		{"newline", "https://app.example.com\n", false},
		{"two origins", "https://app.example.com https://evil.io", false},
		{"empty port", "https://app.example.com:", false},
		{"port too large", "https://app.example.com:65536", false},
		{"port zero", "https://app.example.com:0", false},
		{"port sign", "https://app.example.com:+443", false},
		{"percent-encoded host", "https://app%2eexample.com", false},
		{"star", "*", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := p.Allowed(tt.origin); got != tt.want {
				t.Errorf("Allowed(%q) = %v, want %v", tt.origin, got, tt.want)
			}
		})
	}
}

func TestNewNormalisesEntries(t *testing.T) {
	t.Parallel()
	p, err := New([]string{"HTTPS://App.Example.com:443", "http://[0::1]", "https://*.EXAMPLE.org:0443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"https://app.example.com", "http://[::1]", "http://[::1]:80", "https://a.example.org"} {
		if !p.Allowed(o) {
			t.Errorf("Allowed(%q) = false, want true", o)
		}
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"",
		"*",
		" * ",
		"*.com",
		"*.example.com",
		"https://*",
		"https://*:443",
		"https://*.com",
		"https://*.localhost",
		"https://*.0.0.1",
		"https://*.[::1]",
		"https://**.example.com",
		"https://*.*.example.com",
		"https://a*.example.com",
		"https://*a.example.com",
		"https://a.*.example.com",
		"https://example.*",
		"https://*example.com",
		"*://example.com",
		"app.example.com",
		"//app.example.com",
		"https://",
		"https://app.example.com/",
		"https://app.example.com/path",
		"https://app.example.com?q",
		"https://app.example.com#f",
		"https://user@app.example.com",
		"https://user:pw@app.example.com",
		"https://app.example.com:",
		"https://app.example.com:99999",
		"https://app.example.com:http",
		"https://bücher.example",
		"https://app..example.com",
		"https://.example.com",
		"http://[::1",
		"http://[fe80::1%25eth0]",
		"http://[127.0.0.1]",
		"http://::1",
		"1https://app.example.com",
		"ht tp://app.example.com",
		"https://app example.com",
	} {
		p, err := New([]string{"https://ok.example.com", bad})
		if err == nil {
			t.Errorf("New(%q) succeeded, want error", bad)
			continue
		}
		if p != nil {
			t.Errorf("New(%q) returned a Policy with an error", bad)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "origin: ") || !strings.Contains(msg, strconv.Quote(bad)) {
			t.Errorf("New(%q) error %q does not name the entry", bad, msg)
		}
	}
}

func TestEmptyAndNilPolicy(t *testing.T) {
	t.Parallel()
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var nilPolicy *Policy
	for _, p := range []*Policy{empty, nilPolicy} {
		if p.Allowed("https://app.example.com") {
			t.Error("empty policy allowed an origin")
		}
	}
}

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		origin, public string
		want           bool
	}{
		{"https://gw.example.com", "https://gw.example.com/ws", true},
		{"https://gw.example.com", "https://GW.example.com:443", true},
		{"https://gw.example.com", "wss://gw.example.com/ws", true},
		{"http://gw.example.com:8080", "ws://gw.example.com:8080", true},
		{"http://[::1]:8080", "http://[::1]:8080/", true},
		{"http://gw.example.com", "https://gw.example.com", false},
		{"https://gw.example.com:8443", "https://gw.example.com", false},
		{"https://a.gw.example.com", "https://gw.example.com", false},
		{"null", "https://gw.example.com", false},
		{"https://gw.example.com", "mailto:a@gw.example.com", false},
		{"https://gw.example.com", "/relative", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.public)
		if err != nil {
			t.Fatal(err)
		}
		if got := SameOrigin(tt.origin, u); got != tt.want {
			t.Errorf("SameOrigin(%q, %q) = %v, want %v", tt.origin, tt.public, got, tt.want)
		}
	}
	if SameOrigin("https://gw.example.com", nil) {
		t.Error("SameOrigin with nil URL = true")
	}
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		host   string
		tlsReq bool
		tlsArg bool
		want   string
	}{
		{"plain", "gw.example.com", false, false, "http://gw.example.com"},
		{"port", "gw.example.com:8080", false, false, "http://gw.example.com:8080"},
		{"default port dropped", "gw.example.com:80", false, false, "http://gw.example.com"},
		{"tls from request", "gw.example.com:443", true, false, "https://gw.example.com"},
		{"tls from param", "GW.example.com", false, true, "https://gw.example.com"},
		{"IPv6", "[::1]:8080", false, false, "http://[::1]:8080"},
		{"empty host", "", false, false, ""},
		{"bad host", "gw.example.com/evil", false, false, ""},
		{"userinfo", "a@gw.example.com", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := http.NewRequest(http.MethodGet, "http://placeholder/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Host = tt.host
			if tt.tlsReq {
				r.TLS = &tls.ConnectionState{}
			}
			if got := FromRequest(r, tt.tlsArg); got != tt.want {
				t.Errorf("FromRequest = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://a.com", "https://a.com:443", true},
		{"https://A.com", "https://a.com", true},
		{"http://[::1]", "http://[0:0::1]:80", true},
		{"https://a.com", "http://a.com", false},
		{"https://a.com", "https://a.com.", false},
		{"null", "null", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func BenchmarkAllowed(b *testing.B) {
	p, err := New([]string{"https://app.example.com", "https://*.example.org", "https://*.example.net"})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range []string{"https://app.example.com", "https://a.example.net", "https://evil.io"} {
		b.Run(o, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Allowed(o)
			}
		})
	}
}
