package httpsec_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/livegate/livegate/httpsec"
)

// nonceEcho writes the request's nonce as the response body.
var nonceEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, httpsec.Nonce(r.Context()))
})

// get fetches url with c and returns the response headers and body.
func get(t *testing.T, c *http.Client, url string) (http.Header, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header, string(body)
}

func TestHeadersPresent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(httpsec.Headers(httpsec.HeadersConfig{}, nonceEcho))
	defer srv.Close()
	h, nonce := get(t, srv.Client(), srv.URL)

	want := map[string]string{
		"X-Frame-Options":              "DENY",
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "strict-origin-when-cross-origin",
		"Permissions-Policy":           httpsec.DefaultPermissionsPolicy,
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Content-Security-Policy":      strings.ReplaceAll(httpsec.DefaultCSP, "{nonce}", nonce),
	}
	for name, v := range want {
		if got := h.Get(name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, part := range []string{"frame-ancestors 'none'", "script-src 'self' 'nonce-" + nonce + "'", "object-src 'none'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("CSP %q lacks %q", csp, part)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q allows unsafe-inline", csp)
	}
}

func TestHeadersNonce(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(httpsec.Headers(httpsec.HeadersConfig{}, nonceEcho))
	defer srv.Close()
	seen := map[string]bool{}
	for range 20 {
		h, nonce := get(t, srv.Client(), srv.URL)
		raw, err := base64.StdEncoding.DecodeString(nonce)
		if err != nil || len(raw) != 16 {
			t.Fatalf("nonce %q is not 128 bits of base64 (err %v)", nonce, err)
		}
		if seen[nonce] {
			t.Fatalf("nonce %q repeated", nonce)
		}
		seen[nonce] = true
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "'nonce-"+nonce+"'") {
			t.Fatalf("CSP %q does not carry the request's nonce %q", csp, nonce)
		}
	}
}

func TestNonceOutsideHeaders(t *testing.T) {
	t.Parallel()
	if got := httpsec.Nonce(t.Context()); got != "" {
		t.Errorf("Nonce without Headers = %q, want empty", got)
	}
}

func TestHeadersHSTS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tls  bool
		cfg  httpsec.HeadersConfig
		want string
	}{
		{name: "plain HTTP", tls: false, want: ""},
		{name: "plain HTTP custom", tls: false, cfg: httpsec.HeadersConfig{HSTS: "max-age=60"}, want: ""},
		{name: "TLS default", tls: true, want: "max-age=63072000; includeSubDomains"},
		{name: "TLS custom", tls: true, cfg: httpsec.HeadersConfig{HSTS: "max-age=60"}, want: "max-age=60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := httpsec.Headers(tt.cfg, nonceEcho)
			var srv *httptest.Server
			if tt.tls {
				srv = httptest.NewTLSServer(h)
			} else {
				srv = httptest.NewServer(h)
			}
			defer srv.Close()
			hdr, _ := get(t, srv.Client(), srv.URL)
			if got := hdr.Get("Strict-Transport-Security"); got != tt.want {
				t.Errorf("Strict-Transport-Security = %q, want %q", got, tt.want)
			}
			if hdr.Get("X-Frame-Options") != "DENY" {
				t.Error("X-Frame-Options missing")
			}
		})
	}
}

func TestHeadersCustom(t *testing.T) {
	t.Parallel()
	cfg := httpsec.HeadersConfig{
		CSP:               "default-src 'none'; script-src 'nonce-{nonce}'",
		PermissionsPolicy: "camera=()",
		ReferrerPolicy:    "no-referrer",
	}
	srv := httptest.NewServer(httpsec.Headers(cfg, nonceEcho))
	defer srv.Close()
	h, nonce := get(t, srv.Client(), srv.URL)
	if got, want := h.Get("Content-Security-Policy"), "default-src 'none'; script-src 'nonce-"+nonce+"'"; got != want {
		t.Errorf("CSP = %q, want %q", got, want)
	}
	if got := h.Get("Permissions-Policy"); got != "camera=()" {
		t.Errorf("Permissions-Policy = %q", got)
	}
	if got := h.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", got)
	}
}

func TestHeadersOnErrorResponses(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(httpsec.Headers(httpsec.HeadersConfig{}, http.NotFoundHandler()))
	defer srv.Close()
	h, _ := get(t, srv.Client(), srv.URL)
	if h.Get("Content-Security-Policy") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers missing on 404: %v", h)
	}
}

func BenchmarkHeaders(b *testing.B) {
	h := httpsec.Headers(httpsec.HeadersConfig{}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}
