package web_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	} {
		if !strings.Contains(src, want) {
			t.Errorf("client lacks %q", want)
		}
	}
	for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "Function("} {
		if strings.Contains(src, banned) {
			t.Errorf("client contains %q", banned)
		}
	}
	if strings.Contains(src, "?token=") || strings.Contains(src, "&token=") {
		t.Error("client puts a token in a URL")
	}
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
