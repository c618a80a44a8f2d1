package csrf_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/livegate/livegate/csrf"
)

var key = []byte("csrf-test-key-0123456789abcdef-0123")

func newProtector(t testing.TB) *csrf.Protector {
	t.Helper()
	p, err := csrf.New(key, csrf.Options{AllowOrigin: func(_ *http.Request, o string) bool { return o == "https://app.example.com" }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// issue returns a token and the cookie that carries it.
func issue(t testing.TB, p *csrf.Protector) (string, *http.Cookie) {
	t.Helper()
	rec := httptest.NewRecorder()
	tok, err := p.Token(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie: %+v", cookies)
	}
	return tok, cookies[0]
}

func post(tok string, c *http.Cookie, hdr map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://app.example.com/token", nil)
	if c != nil {
		r.AddCookie(c)
	}
	if tok != "" {
		r.Header.Set(csrf.HeaderName, tok)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return r
}

func TestCheck(t *testing.T) {
	t.Parallel()
	p := newProtector(t)
	tok, cookie := issue(t, p)
	other, otherCookie := issue(t, p)
	same := map[string]string{"Origin": "https://app.example.com", "Sec-Fetch-Site": "same-origin"}
	forged := strings.Split(tok, ".")[0] + "." + strings.Split(other, ".")[1]
	foreignKey, _ := csrf.New([]byte("another-key-0123456789abcdef-012345"), csrf.Options{AllowOrigin: func(*http.Request, string) bool { return true }})
	foreignTok, foreignCookie := issue(t, foreignKey)
	// The random half's 43rd character carries 4 bits of the value and 2
	// unused ones; another spelling decodes to the same bytes unless
	// decoding is strict.
	respelled := respell(tok)
	padded := strings.Replace(tok, ".", "=.", 1)

	tests := []struct {
		name string
		req  *http.Request
		want error
	}{
		{"valid", post(tok, cookie, same), nil},
		{"valid origin only", post(tok, cookie, map[string]string{"Origin": "https://app.example.com"}), nil},
		{"cross-site fetch", post(tok, cookie, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example.com"}), csrf.ErrCrossSite},
		{"same-site fetch", post(tok, cookie, map[string]string{"Sec-Fetch-Site": "same-site"}), csrf.ErrCrossSite},
		{"foreign origin", post(tok, cookie, map[string]string{"Origin": "https://evil.example"}), csrf.ErrOrigin},
		{"lookalike origin", post(tok, cookie, map[string]string{"Origin": "https://app.example.com.evil.io"}), csrf.ErrOrigin},
		{"no headers", post(tok, cookie, nil), csrf.ErrMissingOrigin},
		{"no token", post("", cookie, same), csrf.ErrNoToken},
		{"no cookie", post(tok, nil, same), csrf.ErrNoToken},
		{"token of another cookie", post(other, cookie, same), csrf.ErrBadToken},
		{"cookie and token swapped pair", post(tok, otherCookie, same), csrf.ErrBadToken},
		{"forged mac", post(forged, &http.Cookie{Name: cookie.Name, Value: forged}, same), csrf.ErrBadToken},
		{"attacker-set matching cookie", post("x.y", &http.Cookie{Name: cookie.Name, Value: "x.y"}, same), csrf.ErrBadToken},
		{"token from another key", post(foreignTok, &http.Cookie{Name: cookie.Name, Value: foreignCookie.Value}, same), csrf.ErrBadToken},
		{"random half respelled", post(respelled, &http.Cookie{Name: cookie.Name, Value: respelled}, same), csrf.ErrBadToken},
		{"random half padded", post(padded, &http.Cookie{Name: cookie.Name, Value: padded}, same), csrf.ErrBadToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := p.Check(tt.req)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyOnlyMintedSpelling: a token verifies only as minted, not in
// another spelling that decodes to the same random value.
func TestVerifyOnlyMintedSpelling(t *testing.T) {
	t.Parallel()
	p := newProtector(t)
	tok, _ := issue(t, p)
	val, sig, _ := strings.Cut(tok, ".")
	tests := []struct {
		name, tok string
		ok        bool
	}{
		{"minted", tok, true},
		{"unused bits of the last character set", respell(tok), false},
		{"padded", val + "=." + sig, false},
		{"carriage return inside", val[:20] + "\r" + val[20:] + "." + sig, false},
		{"newline inside", val[:20] + "\n" + val[20:] + "." + sig, false},
		{"newline at the end", val + "\n." + sig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := p.Verify(tt.tok, tt.tok); (err == nil) != tt.ok {
				t.Fatalf("Verify(%q) = %v, want ok=%v", tt.tok, err, tt.ok)
			}
		})
	}
}

// respell returns tok with the unused low bits of its random half's last
// character set, a spelling that decodes to the same bytes.
func respell(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	val, sig, _ := strings.Cut(tok, ".")
	last := strings.IndexByte(alphabet, val[len(val)-1])
	return val[:len(val)-1] + string(alphabet[last^3]) + "." + sig
}

func TestTokenReusesValidCookie(t *testing.T) {
	t.Parallel()
	p := newProtector(t)
	tok, cookie := issue(t, p)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cookie)
	rec := httptest.NewRecorder()
	again, err := p.Token(rec, r)
	if err != nil || again != tok || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("token not reused: %v %q", err, again)
	}
	// A tampered cookie is replaced, not trusted.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: cookie.Name, Value: "attacker.chosen"})
	rec = httptest.NewRecorder()
	fresh, _ := p.Token(rec, r)
	if fresh == "attacker.chosen" || len(rec.Result().Cookies()) != 1 {
		t.Fatal("tampered cookie accepted")
	}
	// So is another spelling of a valid cookie.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: cookie.Name, Value: respell(tok)})
	rec = httptest.NewRecorder()
	fresh, _ = p.Token(rec, r)
	if fresh == respell(tok) || len(rec.Result().Cookies()) != 1 {
		t.Fatal("respelled cookie reused")
	}
}

func TestNewRejectsWeakKey(t *testing.T) {
	t.Parallel()
	if _, err := csrf.New([]byte("short"), csrf.Options{AllowOrigin: func(*http.Request, string) bool { return true }}); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := csrf.New(key, csrf.Options{}); err == nil {
		t.Fatal("missing AllowOrigin accepted")
	}
}

func ExampleProtector_Check() {
	p, _ := csrf.New([]byte("a csrf key of at least thirty-two bytes"), csrf.Options{
		AllowOrigin: func(_ *http.Request, o string) bool { return o == "https://app.example.com" },
	})
	// The page handler issues the token and embeds it in the page.
	rec := httptest.NewRecorder()
	tok, _ := p.Token(rec, httptest.NewRequest(http.MethodGet, "/", nil))

	// The page's script posts it back in the header, with the cookie.
	req := httptest.NewRequest(http.MethodPost, "/connect-token", nil)
	req.AddCookie(rec.Result().Cookies()[0])
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set(csrf.HeaderName, tok)
	fmt.Println(p.Check(req))

	req.Header.Set("Origin", "https://evil.example")
	fmt.Println(p.Check(req))
	// Output:
	// <nil>
	// csrf: origin not allowed
}
