package httpsec_test

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/livegate/livegate/csrf"
	"github.com/livegate/livegate/httpsec"
)

// A page template using the request's CSP nonce for its inline script.
func ExampleNonce() {
	tmpl := template.Must(template.New("page").Parse(
		`<script nonce="{{.Nonce}}">start()</script>`))
	h := httpsec.Headers(httpsec.HeadersConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tmpl.Execute(w, struct{ Nonce string }{httpsec.Nonce(r.Context())})
	}))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	csp := rec.Header().Get("Content-Security-Policy")
	_, rest, _ := strings.Cut(csp, "script-src 'self' 'nonce-")
	nonce, _, _ := strings.Cut(rest, "'")
	// html/template may escape "+" in the attribute; the browser decodes it.
	page := html.UnescapeString(rec.Body.String())
	fmt.Println(len(nonce), page == `<script nonce="`+nonce+`">start()</script>`)
	// Output:
	// 24 true
}

// Headers wraps any handler; HSTS is added only on TLS requests.
func ExampleHeaders() {
	h := httpsec.Headers(httpsec.HeadersConfig{
		ReferrerPolicy: "no-referrer",
	}, http.NotFoundHandler())

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	for _, name := range []string{"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy", "Strict-Transport-Security"} {
		fmt.Printf("%s: %q\n", name, rec.Header().Get(name))
	}
	// Output:
	// X-Frame-Options: "DENY"
	// X-Content-Type-Options: "nosniff"
	// Referrer-Policy: "no-referrer"
	// Cross-Origin-Opener-Policy: "same-origin"
	// Strict-Transport-Security: ""
}

// CSRF in front of a form handler: the page embeds the token, the post
// sends it back in the csrf_token field (or the X-CSRF-Token header).
func ExampleCSRF() {
	p, err := csrf.New(bytes.Repeat([]byte("k"), 32), csrf.Options{
		AllowOrigin: func(*http.Request, string) bool { return false },
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		tok, err := p.Token(w, r)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, `<form method="post" action="/save"><input type="hidden" name="csrf_token" value="%s"></form>`, template.HTMLEscapeString(tok))
	})
	mux.HandleFunc("POST /save", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "saved")
	})
	guard, err := httpsec.CSRF(httpsec.CSRFConfig{
		Protector:      p,
		TrustedOrigins: []string{"https://admin.example.com"},
		OnReject: func(r *http.Request, reason string) {
			fmt.Println("audit:", r.Method, r.URL.Path, reason)
		},
	}, mux)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(httpsec.Headers(httpsec.HeadersConfig{}, guard))
	defer srv.Close()

	// A forged post from another site is refused.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/save", strings.NewReader("x=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := srv.Client().Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// audit: POST /save cross-site request
	// 403
}
