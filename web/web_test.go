package web_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/livegate/livegate/web"
)

func serve(t *testing.T, method string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, "/livegate.js", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	web.ClientHandler().ServeHTTP(rec, req)
	return rec.Result()
}

func wantETag() string {
	sum := sha256.Sum256(web.ClientJS())
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func TestGetServesClient(t *testing.T) {
	res := serve(t, http.MethodGet, nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/javascript; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-cache",
		"ETag":                   wantETag(),
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !bytes.Equal(body, web.ClientJS()) {
		t.Errorf("body differs from the embedded client (%d vs %d bytes)", len(body), len(web.ClientJS()))
	}
	if got := res.Header.Get("Content-Length"); got != fmt.Sprint(len(body)) {
		t.Errorf("Content-Length = %q, want %d", got, len(body))
	}
}

func TestHeadHasNoBody(t *testing.T) {
	res := serve(t, http.MethodHead, nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("HEAD: status %d, %d body bytes; want 200 and none", res.StatusCode, len(body))
	}
	if res.Header.Get("ETag") != wantETag() || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD headers: %v", res.Header)
	}
}

func TestIfNoneMatch(t *testing.T) {
	etag := wantETag()
	for _, tc := range []struct {
		name, inm string
		want      int
	}{
		{"exact", etag, http.StatusNotModified},
		{"in list", `"other", ` + etag, http.StatusNotModified},
		{"weak", "W/" + etag, http.StatusNotModified},
		{"star", "*", http.StatusNotModified},
		{"stale", `"0123"`, http.StatusOK},
		{"unquoted", strings.Trim(etag, `"`), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(t, http.MethodGet, map[string]string{"If-None-Match": tc.inm})
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", res.StatusCode, tc.want)
			}
			if tc.want == http.StatusNotModified {
				if len(body) != 0 {
					t.Errorf("304 with %d body bytes", len(body))
				}
				if res.Header.Get("ETag") != etag || res.Header.Get("Cache-Control") != "no-cache" {
					t.Errorf("304 headers: %v", res.Header)
				}
			}
		})
	}
}

func TestOtherMethods(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		res := serve(t, m, nil)
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status = %d, want 405", m, res.StatusCode)
		}
		if got := res.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow = %q", m, got)
		}
		if res.Header.Get("ETag") != "" {
			t.Errorf("%s: ETag set on an error", m)
		}
	}
}

// TestOverHTTP exercises the handler through a real server and client,
// including a conditional request with the ETag from the first response.
func TestOverHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/livegate.js", web.ClientHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := srv.Client().Get(srv.URL + "/livegate.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, web.ClientJS()) {
		t.Fatalf("GET: status %d, %d bytes", res.StatusCode, len(body))
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/livegate.js", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	res2, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: status %d, want 304", res2.StatusCode)
	}
}

func TestClientJSIsACopy(t *testing.T) {
	a := web.ClientJS()
	a[0] ^= 0xff
	if bytes.Equal(a, web.ClientJS()) {
		t.Fatal("ClientJS returned the embedded slice itself")
	}
}

// TestClientSource guards properties of the client that the security model
// relies on.
func TestClientSource(t *testing.T) {
	src := string(web.ClientJS())
	for _, want := range []string{
		"export class Client",
		`"livegate.v1"`,
		"export function safeMerge",
		"export function sanitizeForLog",
		// Server HTML reaches the DOM only as DOMPurify fragments.
		"RETURN_DOM_FRAGMENT: true",
		`"script", "style", "iframe"`,
		`"object", "embed"`,
		"data.keepAttr = false", // on* attributes
		// The view join refuses to run without the page's CSRF token.
		`meta[name="csrf-token"]`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("client lacks %q", want)
		}
	}
	// HTML sinks. The word innerHTML may appear as idiomorph's morphStyle
	// name, never as a property.
	for _, banned := range []*regexp.Regexp{
		regexp.MustCompile(`\.(innerHTML|outerHTML)\b`),
		regexp.MustCompile(`\[\s*["'](innerHTML|outerHTML)["']\s*\]`),
		regexp.MustCompile(`insertAdjacentHTML|setHTMLUnsafe|parseHTMLUnsafe|createContextualFragment|DOMParser|srcdoc`),
		regexp.MustCompile(`document\.write|\beval\(|new Function|\bFunction\(`),
	} {
		if m := banned.FindString(src); m != "" {
			t.Errorf("client contains %q", m)
		}
	}
	if strings.Contains(src, "?token=") || strings.Contains(src, "&token=") {
		t.Error("client puts a token in a URL")
	}
	// No static import: ClientHandler alone (without vendor/) must keep the
	// core client working, and importing it must not load the DOM libraries.
	if m := regexp.MustCompile(`(?m)^\s*import\s*[{*\w"']|^\s*export\s+[^;]*\sfrom\s`).FindString(src); m != "" {
		t.Errorf("client has a static import: %q", m)
	}
	// Console output only through sanitizeForLog, with a constant format.
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if !strings.Contains(line, "console.") || strings.HasPrefix(trimmed, "//") || strings.HasPrefix(trimmed, "*") {
			continue
		}
		if !strings.Contains(line, `console.debug("%s", sanitizeForLog(`) {
			t.Errorf("line %d writes to the console without sanitizeForLog: %s", i+1, trimmed)
		}
	}
}

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

func TestHandlerServesFileSet(t *testing.T) {
	wantTypes := map[string]string{
		"/livegate.js":             "text/javascript; charset=utf-8",
		"/livegate.d.ts":           "application/typescript; charset=utf-8",
		"/vendor/purify.es.mjs":    "text/javascript; charset=utf-8",
		"/vendor/idiomorph.esm.js": "text/javascript; charset=utf-8",
	}
	paths := web.Paths()
	if len(paths) != len(wantTypes) {
		t.Fatalf("Paths() = %q, want the %d files of the set", paths, len(wantTypes))
	}
	h := web.Handler()
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			res, body := get(t, h, http.MethodGet, p, nil)
			if res.StatusCode != http.StatusOK || len(body) == 0 {
				t.Fatalf("status %d, %d bytes", res.StatusCode, len(body))
			}
			sum := sha256.Sum256(body)
			for k, want := range map[string]string{
				"Content-Type":           wantTypes[p],
				"X-Content-Type-Options": "nosniff",
				"Cache-Control":          "no-cache",
				"ETag":                   `"` + hex.EncodeToString(sum[:]) + `"`,
				"Content-Length":         fmt.Sprint(len(body)),
			} {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			res2, body2 := get(t, h, http.MethodGet, p, map[string]string{"If-None-Match": res.Header.Get("ETag")})
			if res2.StatusCode != http.StatusNotModified || len(body2) != 0 {
				t.Errorf("conditional GET: status %d, %d bytes; want 304 and none", res2.StatusCode, len(body2))
			}
			res3, body3 := get(t, h, http.MethodHead, p, nil)
			if res3.StatusCode != http.StatusOK || len(body3) != 0 || res3.Header.Get("ETag") != res.Header.Get("ETag") {
				t.Errorf("HEAD: status %d, %d bytes, ETag %q", res3.StatusCode, len(body3), res3.Header.Get("ETag"))
			}
			res4, _ := get(t, h, http.MethodPost, p, nil)
			if res4.StatusCode != http.StatusMethodNotAllowed || res4.Header.Get("Allow") != "GET, HEAD" || res4.Header.Get("ETag") != "" {
				t.Errorf("POST: status %d, Allow %q, ETag %q", res4.StatusCode, res4.Header.Get("Allow"), res4.Header.Get("ETag"))
			}
		})
	}
	_, js := get(t, h, http.MethodGet, "/livegate.js", nil)
	if !bytes.Equal(js, web.ClientJS()) {
		t.Error("Handler's livegate.js differs from ClientJS()")
	}
}

func TestHandlerUnknownPaths(t *testing.T) {
	h := web.Handler()
	for _, p := range []string{
		"/", "/livegate", "/livegate.js/", "/LIVEGATE.JS", "/livegate.mjs", "//livegate.js",
		"/vendor", "/vendor/", "/vendor/README.md", "/vendor/SHA256SUMS", "/vendor/LICENSE.dompurify",
		"/vendor/purify.es.mjs.map", "/vendor/../livegate.js", "/web.go", "/web_test.go", "/test/demo.test.mjs",
		"/unit/", "/livegate.d.ts.map",
	} {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			res, body := get(t, h, m, p, nil)
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: status %d, want 404", m, p, res.StatusCode)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("ETag") != "" {
				t.Errorf("%s %s: headers %v", m, p, res.Header)
			}
			if bytes.Contains(body, []byte("export")) {
				t.Errorf("%s %s: 404 body has file content", m, p)
			}
		}
	}
}

func TestPathsIsACopy(t *testing.T) {
	p := web.Paths()
	p[0] = "/changed"
	if !slices.Contains(web.Paths(), "/livegate.js") {
		t.Fatal("Paths returned its own slice")
	}
}

// TestVendorChecksums checks every served vendor file against
// vendor/SHA256SUMS (written by scripts/vendor-web): vendored libraries are
// never edited by hand.
func TestVendorChecksums(t *testing.T) {
	sums, err := os.ReadFile("vendor/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("malformed SHA256SUMS line %q", line)
		}
		listed["/vendor/"+name] = sum
	}
	h := web.Handler()
	served := 0
	for _, p := range web.Paths() {
		if !strings.HasPrefix(p, "/vendor/") {
			continue
		}
		served++
		want, ok := listed[p]
		if !ok {
			t.Errorf("%s is served but not in SHA256SUMS", p)
			continue
		}
		_, body := get(t, h, http.MethodGet, p, nil)
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s (re-run scripts/vendor-web)", p, got, want)
		}
		if !bytes.Contains(body, []byte("export")) {
			t.Errorf("%s is not an ES module", p)
		}
	}
	if served != len(listed) {
		t.Errorf("SHA256SUMS lists %d files, %d are served", len(listed), served)
	}
}

// TestDeclarationsCoverExports checks that livegate.d.ts declares every
// export of livegate.js.
func TestDeclarationsCoverExports(t *testing.T) {
	_, dts := get(t, web.Handler(), http.MethodGet, "/livegate.d.ts", nil)
	exports := regexp.MustCompile(`(?m)^export (?:class|function|const) (\w+)`).FindAllStringSubmatch(string(web.ClientJS()), -1)
	if len(exports) < 10 {
		t.Fatalf("found only %d exports in livegate.js", len(exports))
	}
	for _, m := range exports {
		re := regexp.MustCompile(`(?m)^export declare (?:class|function|const) ` + m[1] + `\b`)
		if !re.Match(dts) {
			t.Errorf("livegate.d.ts does not declare %s", m[1])
		}
	}
}

// TestHandlerUnderPrefix mounts Handler under a prefix through a real server,
// the way its documentation suggests.
func TestHandlerUnderPrefix(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /static/livegate/", http.StripPrefix("/static/livegate", web.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, p := range web.Paths() {
		res, err := srv.Client().Get(srv.URL + "/static/livegate" + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", p, res.StatusCode)
		}
	}
	res, err := srv.Client().Get(srv.URL + "/static/livegate/vendor/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown file: status %d, want 404", res.StatusCode)
	}
}

func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("GET /livegate/", http.StripPrefix("/livegate", web.Handler()))

	for _, p := range []string{"/livegate/livegate.js", "/livegate/vendor/purify.es.mjs", "/livegate/livegate.d.ts", "/livegate/web.go"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// 200 text/javascript; charset=utf-8
	// 200 text/javascript; charset=utf-8
	// 200 application/typescript; charset=utf-8
	// 404 text/plain; charset=utf-8
}

func ExampleClientHandler() {
	mux := http.NewServeMux()
	mux.Handle("GET /livegate.js", web.ClientHandler())

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/livegate.js", nil))
	fmt.Println(rec.Code)
	fmt.Println(rec.Header().Get("Content-Type"))
	fmt.Println(rec.Header().Get("Cache-Control"))
	// Output:
	// 200
	// text/javascript; charset=utf-8
	// no-cache
}
