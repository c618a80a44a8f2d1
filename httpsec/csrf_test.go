package httpsec_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/livegate/livegate/csrf"
	"github.com/livegate/livegate/httpsec"
)

// testKey signs CSRF tokens in tests.
var testKey = bytes.Repeat([]byte("k"), 32)

// newProtector returns a Protector over testKey.
func newProtector(t testing.TB) *csrf.Protector {
	t.Helper()
	p, err := csrf.New(testKey, csrf.Options{AllowOrigin: func(*http.Request, string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// issue returns a fresh token and its cookie from p.
func issue(t testing.TB, p *csrf.Protector) (string, *http.Cookie) {
	t.Helper()
	rec := httptest.NewRecorder()
	tok, err := p.Token(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("got %d cookies, want 1", len(cookies))
	}
	return tok, cookies[0]
}

// rejections records OnReject calls.
type rejections struct {
	mu      sync.Mutex
	reasons []string
}

func (rj *rejections) record(_ *http.Request, reason string) {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	rj.reasons = append(rj.reasons, reason)
}

func (rj *rejections) take() []string {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	r := rj.reasons
	rj.reasons = nil
	return r
}

// okHandler answers 200 with "ok" plus the posted "msg" field, proving the
// parsed form reaches the next handler.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "ok"+r.PostFormValue("msg"))
})

func TestCSRF(t *testing.T) {
	t.Parallel()
	p := newProtector(t)
	tok, cookie := issue(t, p)
	otherTok, _ := issue(t, p)
	// A token minted with another key, as a forger would.
	forgerP, err := csrf.New(bytes.Repeat([]byte("x"), 32), csrf.Options{AllowOrigin: func(*http.Request, string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	forgedTok, forgedCookie := issue(t, forgerP)

	var rj rejections
	h, err := httpsec.CSRF(httpsec.CSRFConfig{
		Protector:      p,
		TrustedOrigins: []string{"https://app.example"},
		OnReject:       rj.record,
	}, okHandler)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	self := srv.URL // Origin of a same-origin request

	form := func(v url.Values) (string, io.Reader) {
		return "application/x-www-form-urlencoded", strings.NewReader(v.Encode())
	}
	multi := func(v url.Values) (string, io.Reader) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, vs := range v {
			for _, s := range vs {
				mw.WriteField(k, s)
			}
		}
		mw.Close()
		return mw.FormDataContentType(), &buf
	}
	big := strings.Repeat("a", httpsec.DefaultMaxFormBytes)

	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		cookies []*http.Cookie
		body    func() (string, io.Reader)
		hide    bool // hide the body length, forcing chunked encoding
		status  int
		reason  string // "" when accepted
		wantMsg string
	}{
		{name: "GET passes without token", method: "GET", status: 200},
		{name: "HEAD passes without token", method: "HEAD", status: 200},
		{name: "OPTIONS passes without token", method: "OPTIONS", status: 200},
		{name: "GET passes cross-site", method: "GET", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, status: 200},
		{name: "POST without token", method: "POST", cookies: []*http.Cookie{cookie}, status: 403, reason: httpsec.ReasonTokenMissing},
		{name: "POST without cookie", method: "POST", headers: map[string]string{"X-CSRF-Token": tok}, status: 403, reason: httpsec.ReasonTokenMissing},
		{name: "POST forged token", method: "POST", headers: map[string]string{"X-CSRF-Token": forgedTok}, cookies: []*http.Cookie{forgedCookie}, status: 403, reason: httpsec.ReasonTokenInvalid},
		{name: "POST token of another cookie", method: "POST", headers: map[string]string{"X-CSRF-Token": otherTok}, cookies: []*http.Cookie{cookie}, status: 403, reason: httpsec.ReasonTokenInvalid},
		{name: "POST garbage token", method: "POST", headers: map[string]string{"X-CSRF-Token": "x.y"}, cookies: []*http.Cookie{{Name: cookie.Name, Value: "x.y"}}, status: 403, reason: httpsec.ReasonTokenInvalid},
		{name: "POST valid header token", method: "POST", headers: map[string]string{"X-CSRF-Token": tok}, cookies: []*http.Cookie{cookie}, status: 200},
		{name: "PUT valid header token same-origin", method: "PUT", headers: map[string]string{"X-CSRF-Token": tok, "Sec-Fetch-Site": "same-origin", "Origin": self}, cookies: []*http.Cookie{cookie}, status: 200},
		{name: "DELETE without token", method: "DELETE", cookies: []*http.Cookie{cookie}, status: 403, reason: httpsec.ReasonTokenMissing},
		{name: "cross-site Sec-Fetch-Site", method: "POST", headers: map[string]string{"X-CSRF-Token": tok, "Sec-Fetch-Site": "cross-site"}, cookies: []*http.Cookie{cookie}, status: 403, reason: httpsec.ReasonCrossSite},
		{name: "same-site Sec-Fetch-Site", method: "POST", headers: map[string]string{"X-CSRF-Token": tok, "Sec-Fetch-Site": "same-site", "Origin": "https://sub.example"}, cookies: []*http.Cookie{cookie}, status: 403, reason: httpsec.ReasonCrossSite},
		{name: "foreign Origin", method: "POST", headers: map[string]string{"X-CSRF-Token": tok, "Origin": "https://evil.example"}, cookies: []*http.Cookie{cookie}, status: 403, reason: httpsec.ReasonOrigin},
		{name: "same Origin", method: "POST", headers: map[string]string{"X-CSRF-Token": tok, "Origin": self}, cookies: []*http.Cookie{cookie}, status: 200},
		{name: "trusted Origin with token", method: "POST", headers: map[string]string{"X-CSRF-Token": tok, "Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}, cookies: []*http.Cookie{cookie}, status: 200},
		{name: "trusted Origin still needs token", method: "POST", headers: map[string]string{"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}, cookies: []*http.Cookie{cookie}, status: 403, reason: httpsec.ReasonTokenMissing},
		{name: "valid form field token", method: "POST", cookies: []*http.Cookie{cookie}, body: func() (string, io.Reader) {
			return form(url.Values{"csrf_token": {tok}, "msg": {"-hi"}})
		}, status: 200, wantMsg: "ok-hi"},
		{name: "valid multipart field token", method: "POST", cookies: []*http.Cookie{cookie}, body: func() (string, io.Reader) {
			return multi(url.Values{"csrf_token": {tok}, "msg": {"-multi"}})
		}, status: 200, wantMsg: "ok-multi"},
		{name: "forged form field token", method: "POST", cookies: []*http.Cookie{cookie}, body: func() (string, io.Reader) {
			return form(url.Values{"csrf_token": {forgedTok}})
		}, status: 403, reason: httpsec.ReasonTokenInvalid},
		{name: "token in query is ignored", method: "POST", path: "/?csrf_token=" + url.QueryEscape(tok), cookies: []*http.Cookie{cookie}, body: func() (string, io.Reader) {
			return form(url.Values{"msg": {"x"}})
		}, status: 403, reason: httpsec.ReasonTokenMissing},
		{name: "JSON body token is not read", method: "POST", cookies: []*http.Cookie{cookie}, body: func() (string, io.Reader) {
			return "application/json", strings.NewReader(`{"csrf_token":"` + tok + `"}`)
		}, status: 403, reason: httpsec.ReasonTokenMissing},
		{name: "oversized form", method: "POST", cookies: []*http.Cookie{cookie}, body: func() (string, io.Reader) {
			return form(url.Values{"csrf_token": {tok}, "msg": {big}})
		}, status: 413, reason: httpsec.ReasonFormTooLarge},
		{name: "oversized chunked form", method: "POST", cookies: []*http.Cookie{cookie}, hide: true, body: func() (string, io.Reader) {
			return form(url.Values{"csrf_token": {tok}, "msg": {big}})
		}, status: 413, reason: httpsec.ReasonFormTooLarge},
		{name: "oversized chunked multipart", method: "POST", cookies: []*http.Cookie{cookie}, hide: true, body: func() (string, io.Reader) {
			return multi(url.Values{"csrf_token": {tok}, "msg": {big}})
		}, status: 413, reason: httpsec.ReasonFormTooLarge},
		{name: "malformed multipart", method: "POST", cookies: []*http.Cookie{cookie}, body: func() (string, io.Reader) {
			return "multipart/form-data; boundary=zzz", strings.NewReader("not multipart")
		}, status: 400, reason: httpsec.ReasonBadForm},
		{name: "header token wins over form", method: "POST", headers: map[string]string{"X-CSRF-Token": tok}, cookies: []*http.Cookie{cookie}, body: func() (string, io.Reader) {
			return form(url.Values{"csrf_token": {"bad"}, "msg": {"-h"}})
		}, status: 200, wantMsg: "ok-h"},
	}
	for _, tt := range tests {
		// Sequential: the cases share one OnReject recorder.
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			ctype := ""
			if tt.body != nil {
				ctype, body = tt.body()
				if tt.hide {
					body = io.MultiReader(body)
				}
			}
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			for _, c := range tt.cookies {
				req.AddCookie(c)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tt.status, got)
			}
			reasons := rj.take()
			if tt.reason == "" {
				if len(reasons) != 0 {
					t.Errorf("OnReject called with %q on an accepted request", reasons)
				}
				if tt.method != "HEAD" {
					want := "ok" + tt.wantMsg
					if tt.wantMsg != "" {
						want = tt.wantMsg
					}
					if string(got) != want {
						t.Errorf("body = %q, want %q", got, want)
					}
				}
				return
			}
			if len(reasons) != 1 || reasons[0] != tt.reason {
				t.Errorf("OnReject reasons = %q, want [%q]", reasons, tt.reason)
			}
			if want := http.StatusText(tt.status) + "\n"; string(got) != want {
				t.Errorf("refusal body = %q, want generic %q", got, want)
			}
			if strings.Contains(string(got), tt.reason) {
				t.Errorf("refusal body leaks the reason: %q", got)
			}
		})
	}
}

func TestCSRFMaxFormBytes(t *testing.T) {
	t.Parallel()
	p := newProtector(t)
	tok, cookie := issue(t, p)
	h, err := httpsec.CSRF(httpsec.CSRFConfig{Protector: p, MaxFormBytes: 200}, okHandler)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		msg    string
		status int
	}{
		{name: "under the cap", msg: "short", status: 200},
		{name: "over the cap", msg: strings.Repeat("a", 200), status: 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := url.Values{"csrf_token": {tok}, "msg": {tt.msg}}
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(cookie)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
		})
	}
}

func TestCSRFNoHook(t *testing.T) {
	t.Parallel()
	h, err := httpsec.CSRF(httpsec.CSRFConfig{Protector: newProtector(t)}, okHandler)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("status = %d, want 403", rec.Code)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}

func TestCSRFConfigErrors(t *testing.T) {
	t.Parallel()
	p := newProtector(t)
	tests := []struct {
		name string
		cfg  httpsec.CSRFConfig
	}{
		{name: "no protector", cfg: httpsec.CSRFConfig{}},
		{name: "origin without scheme", cfg: httpsec.CSRFConfig{Protector: p, TrustedOrigins: []string{"app.example"}}},
		{name: "origin with path", cfg: httpsec.CSRFConfig{Protector: p, TrustedOrigins: []string{"https://app.example/x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := httpsec.CSRF(tt.cfg, okHandler)
			if err == nil || h != nil {
				t.Fatalf("CSRF = %v, %v; want an error", h, err)
			}
			if !strings.HasPrefix(err.Error(), "httpsec: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}
