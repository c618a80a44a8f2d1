package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// trusted is the proxy configuration most tests use.
var trusted = []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"}

func request(remote string, header ...string) *http.Request {
	r, err := http.NewRequest(http.MethodGet, "http://example.com/ws", nil)
	if err != nil {
		panic(err)
	}
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	res, err := New(trusted)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		remote string
		header []string // name, value pairs; repeated names add lines
		want   string
	}{
		// The peer is not a trusted proxy: every forwarding header is a lie
		// the client is free to tell, so none is read.
		{"untrusted peer ignores spoofed XFF", "203.0.113.9:5555",
			[]string{"X-Forwarded-For", "1.1.1.1"}, "203.0.113.9"},
		{"untrusted peer ignores spoofed XFF naming a trusted proxy", "203.0.113.9:5555",
			[]string{"X-Forwarded-For", "10.0.0.5"}, "203.0.113.9"},
		{"untrusted peer ignores X-Real-IP", "203.0.113.9:5555",
			[]string{"X-Real-IP", "1.1.1.1"}, "203.0.113.9"},
		{"untrusted peer ignores Forwarded", "203.0.113.9:5555",
			[]string{"Forwarded", "for=1.1.1.1"}, "203.0.113.9"},
		{"untrusted peer ignores all at once", "[2a00:1450::1]:443",
			[]string{"X-Forwarded-For", "1.1.1.1", "X-Real-IP", "1.1.1.2", "Forwarded", "for=1.1.1.3"},
			"2a00:1450::1"},

		// Trusted peer, X-Forwarded-For.
		{"trusted peer without headers", "10.0.0.1:80", nil, "10.0.0.1"},
		{"trusted peer single hop", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"client-prepended spoof is skipped", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "1.1.1.1, 198.51.100.7"}, "198.51.100.7"},
		{"client-prepended trusted-looking spoof is skipped", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "10.9.9.9, 198.51.100.7"}, "198.51.100.7"},
		{"chain of two trusted proxies", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "1.1.1.1, 198.51.100.7, 192.0.2.1"}, "198.51.100.7"},
		{"chain across header lines", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "1.1.1.1, 198.51.100.7", "X-Forwarded-For", "10.0.0.2"}, "198.51.100.7"},
		{"last header line is newest", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "198.51.100.7", "X-Forwarded-For", "198.51.100.8"}, "198.51.100.8"},
		{"all trusted gives leftmost", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"empty elements ignored", "10.0.0.1:80",
			[]string{"X-Forwarded-For", " , 198.51.100.7 ,, "}, "198.51.100.7"},
		{"entry with port", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "198.51.100.7:4321"}, "198.51.100.7"},
		{"X-Real-IP never used", "10.0.0.1:80",
			[]string{"X-Real-IP", "198.51.100.7"}, "10.0.0.1"},
		{"XFF wins over Forwarded", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "198.51.100.7", "Forwarded", "for=198.51.100.8"}, "198.51.100.7"},
		{"blank XFF falls through to Forwarded", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "  ", "Forwarded", "for=198.51.100.8"}, "198.51.100.8"},

		// Garbage stops the walk at the last trusted hop.
		{"garbage right of client", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "198.51.100.7, garbage"}, "10.0.0.1"},
		{"garbage left of trusted hop", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "198.51.100.7, garbage, 10.0.0.2"}, "10.0.0.2"},
		{"garbage left of client", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "<script>, 198.51.100.7"}, "198.51.100.7"},
		{"unknown in XFF", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "unknown"}, "10.0.0.1"},
		{"zone in header is invalid", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "fe80::1%eth0"}, "10.0.0.1"},
		{"newline injection", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "198.51.100.7\n"}, "10.0.0.1"},
		{"overlong", "10.0.0.1:80",
			[]string{"X-Forwarded-For", strings.Repeat("9", 4096)}, "10.0.0.1"},

		// IPv6 and IPv4-mapped addresses.
		{"IPv6 peer and client", "[2001:db8::10]:443",
			[]string{"X-Forwarded-For", "2a00:1450:4001::5"}, "2a00:1450:4001::5"},
		{"IPv6 chain", "[2001:db8::10]:443",
			[]string{"X-Forwarded-For", "2a00:1450:4001::5, 2001:db8::11"}, "2a00:1450:4001::5"},
		{"IPv6 entry bracketed with port", "[2001:db8::10]:443",
			[]string{"X-Forwarded-For", "[2a00:1450:4001::5]:8080"}, "2a00:1450:4001::5"},
		{"IPv6 entry bracketed without port", "[2001:db8::10]:443",
			[]string{"X-Forwarded-For", "[2a00:1450:4001::5]"}, "2a00:1450:4001::5"},
		{"mapped peer is trusted by IPv4 CIDR", "[::ffff:10.0.0.1]:80",
			[]string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"mapped client is unmapped", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "::ffff:198.51.100.7"}, "198.51.100.7"},
		{"mapped trusted hop is skipped", "10.0.0.1:80",
			[]string{"X-Forwarded-For", "198.51.100.7, ::ffff:10.0.0.2"}, "198.51.100.7"},
		{"untrusted mapped peer is unmapped", "[::ffff:203.0.113.9]:80", nil, "203.0.113.9"},
		{"zoned peer", "[fe80::1%eth0]:80", nil, "fe80::1"},

		// RFC 7239 Forwarded.
		{"Forwarded simple", "10.0.0.1:80",
			[]string{"Forwarded", "for=198.51.100.7"}, "198.51.100.7"},
		{"Forwarded with other params", "10.0.0.1:80",
			[]string{"Forwarded", "for=198.51.100.7;proto=https;by=10.0.0.1"}, "198.51.100.7"},
		{"Forwarded params in any order and case", "10.0.0.1:80",
			[]string{"Forwarded", "proto=https; For=198.51.100.7"}, "198.51.100.7"},
		{"Forwarded quoted IPv4 with port", "10.0.0.1:80",
			[]string{"Forwarded", `for="198.51.100.7:4711"`}, "198.51.100.7"},
		{"Forwarded quoted IPv6 with port", "10.0.0.1:80",
			[]string{"Forwarded", `for="[2a00:1450:4001::5]:4711"`}, "2a00:1450:4001::5"},
		{"Forwarded quoted IPv6 without port", "10.0.0.1:80",
			[]string{"Forwarded", `for="[2a00:1450:4001::5]"`}, "2a00:1450:4001::5"},
		{"Forwarded obfuscated port", "10.0.0.1:80",
			[]string{"Forwarded", `for="198.51.100.7:_abc"`}, "198.51.100.7"},
		{"Forwarded chain", "10.0.0.1:80",
			[]string{"Forwarded", "for=1.1.1.1, for=198.51.100.7, for=10.0.0.2;by=10.0.0.1"}, "198.51.100.7"},
		{"Forwarded chain across lines", "10.0.0.1:80",
			[]string{"Forwarded", "for=198.51.100.7", "Forwarded", "for=192.0.2.1"}, "198.51.100.7"},
		{"Forwarded comma inside quotes", "10.0.0.1:80",
			[]string{"Forwarded", `for=198.51.100.7;ext="a,b, for=1.1.1.1"`}, "198.51.100.7"},
		{"Forwarded escaped quote in other param", "10.0.0.1:80",
			[]string{"Forwarded", `for=198.51.100.7;ext="a\",b"`}, "198.51.100.7"},
		{"Forwarded unbalanced quote from client cannot swallow proxy element", "10.0.0.1:80",
			[]string{"Forwarded", `for="1.1.1.1, for=198.51.100.7`}, "198.51.100.7"},
		{"Forwarded unknown", "10.0.0.1:80",
			[]string{"Forwarded", "for=unknown"}, "10.0.0.1"},
		{"Forwarded obfuscated", "10.0.0.1:80",
			[]string{"Forwarded", `for="_gazonk"`}, "10.0.0.1"},
		{"Forwarded obfuscated stops walk at trusted hop", "10.0.0.1:80",
			[]string{"Forwarded", `for=198.51.100.7, for=_hidden, for=10.0.0.2`}, "10.0.0.2"},
		{"Forwarded unbracketed IPv6", "10.0.0.1:80",
			[]string{"Forwarded", `for="2a00:1450:4001::5"`}, "10.0.0.1"},
		{"Forwarded bracketed IPv4", "10.0.0.1:80",
			[]string{"Forwarded", `for="[198.51.100.7]"`}, "10.0.0.1"},
		{"Forwarded no for", "10.0.0.1:80",
			[]string{"Forwarded", "proto=https;by=10.0.0.1"}, "10.0.0.1"},
		{"Forwarded duplicate for", "10.0.0.1:80",
			[]string{"Forwarded", "for=198.51.100.7;for=1.1.1.1"}, "10.0.0.1"},
		{"Forwarded empty for", "10.0.0.1:80",
			[]string{"Forwarded", `for=""`}, "10.0.0.1"},
		{"Forwarded bad port", "10.0.0.1:80",
			[]string{"Forwarded", `for="198.51.100.7:http"`}, "10.0.0.1"},
		{"Forwarded garbage", "10.0.0.1:80",
			[]string{"Forwarded", `;;==,"`}, "10.0.0.1"},
		{"Forwarded mapped", "10.0.0.1:80",
			[]string{"Forwarded", `for="[::ffff:198.51.100.7]"`}, "198.51.100.7"},

		// RemoteAddr forms.
		{"remote without port", "203.0.113.9", nil, "203.0.113.9"},
		{"IPv6 remote without port", "2a00::1", nil, "2a00::1"},
		{"bracketed IPv6 remote without port", "[2a00::1]", nil, "2a00::1"},
		{"trusted remote without port", "10.0.0.1",
			[]string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"single trusted IP", "192.0.2.1:9",
			[]string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"neighbour of single trusted IP", "192.0.2.2:9",
			[]string{"X-Forwarded-For", "198.51.100.7"}, "192.0.2.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := res.ClientIP(request(tt.remote, tt.header...))
			if want := netip.MustParseAddr(tt.want); got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestClientIPInvalidRemoteAddr(t *testing.T) {
	t.Parallel()
	res, err := New(trusted)
	if err != nil {
		t.Fatal(err)
	}
	for _, remote := range []string{"", "@", "pipe", "example.com:80", "[10.0.0.1]:80"} {
		got := res.ClientIP(request(remote, "X-Forwarded-For", "198.51.100.7"))
		if got.IsValid() {
			t.Errorf("RemoteAddr %q: ClientIP = %v, want zero Addr", remote, got)
		}
	}
}

func TestNoTrustedProxies(t *testing.T) {
	t.Parallel()
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, res := range map[string]*Resolver{"New(nil)": empty, "nil": nil, "zero": {}} {
		req := request("10.0.0.1:80", "X-Forwarded-For", "198.51.100.7", "Forwarded", "for=198.51.100.8")
		if got, want := res.ClientIP(req), netip.MustParseAddr("10.0.0.1"); got != want {
			t.Errorf("%s: ClientIP = %v, want %v", name, got, want)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	valid := []string{"10.0.0.0/8", " 192.0.2.1 ", "2001:db8::/32", "::1", "10.1.2.3/8", "::ffff:172.16.0.0/108", "0.0.0.0/0"}
	res, err := New(valid)
	if err != nil {
		t.Fatalf("New(%q) = %v", valid, err)
	}
	for _, a := range []string{"10.200.0.1", "192.0.2.1", "2001:db8:1::1", "::1", "172.16.5.5"} {
		if !res.isTrusted(netip.MustParseAddr(a)) {
			t.Errorf("%s not trusted", a)
		}
	}

	for _, bad := range []string{"", " ", "10.0.0.0/33", "10.0.0.0/", "localhost", "10.0.0.256", "fe80::1%eth0", "10.0.0.0/8,192.0.2.1", "*"} {
		_, err := New([]string{"10.0.0.0/8", bad})
		if err == nil {
			t.Errorf("New(%q) succeeded, want error", bad)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "clientip: ") || !strings.Contains(msg, `"`+bad+`"`) {
			t.Errorf("New(%q) error %q does not name the entry", bad, msg)
		}
	}
}

func BenchmarkClientIP(b *testing.B) {
	res, err := New(trusted)
	if err != nil {
		b.Fatal(err)
	}
	cases := map[string]*http.Request{
		"untrusted":      request("203.0.113.9:5555", "X-Forwarded-For", "1.1.1.1"),
		"xff_chain":      request("10.0.0.1:80", "X-Forwarded-For", "1.1.1.1, 198.51.100.7, 10.0.0.2"),
		"forwarded_ipv6": request("10.0.0.1:80", "Forwarded", `for="[2a00:1450:4001::5]:4711";proto=https, for=10.0.0.2`),
	}
	for name, req := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !res.ClientIP(req).IsValid() {
					b.Fatal("invalid")
				}
			}
		})
	}
}
