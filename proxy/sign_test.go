package proxy_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/proxy"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef-test-secret")
	otherSecret = []byte("fedcba9876543210fedcba9876543210-other-secret")
	epoch       = time.Unix(1767225600, 0)
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newVerifier(t testing.TB, clock *fakeClock, secrets ...[]byte) *proxy.Verifier {
	t.Helper()
	if len(secrets) == 0 {
		secrets = [][]byte{testSecret}
	}
	v, err := proxy.NewVerifier(proxy.VerifierConfig{Secrets: secrets, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signedRequest builds a server-side request as a backend receives it.
func signedRequest(t testing.TB, target string, body []byte, secret []byte, now time.Time) *http.Request {
	t.Helper()
	out, err := http.NewRequest(http.MethodPost, "https://backend.test"+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Sign(out, body, secret, now); err != nil {
		t.Fatal(err)
	}
	in := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	for k, vs := range out.Header {
		in.Header[k] = vs
	}
	return in
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: epoch}
	v := newVerifier(t, clock)
	body := []byte(`{"conn_id":"9f4e2a71d03b-1","identity":null}`)
	r := signedRequest(t, "/livegate/connect?x=1&y=%2F", body, testSecret, epoch)
	if got := r.Header.Get(proxy.HeaderSignature); !strings.HasPrefix(got, "v1=") || len(got) != 3+64 {
		t.Fatalf("signature header %q", got)
	}
	if got := r.Header.Get(proxy.HeaderTimestamp); got != "1767225600" {
		t.Fatalf("timestamp header %q", got)
	}
	if n, err := base64.RawURLEncoding.Strict().DecodeString(r.Header.Get(proxy.HeaderNonce)); err != nil || len(n) != 16 {
		t.Fatalf("nonce %q: %v", r.Header.Get(proxy.HeaderNonce), err)
	}
	if err := v.Verify(r, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestSignNoncesDiffer(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		r := signedRequest(t, "/connect", nil, testSecret, epoch)
		n := r.Header.Get(proxy.HeaderNonce)
		if seen[n] {
			t.Fatalf("nonce %q repeated", n)
		}
		seen[n] = true
	}
}

func TestSignRefusesShortSecret(t *testing.T) {
	t.Parallel()
	r, _ := http.NewRequest(http.MethodPost, "https://backend.test/connect", nil)
	err := proxy.Sign(r, nil, make([]byte, 31), epoch)
	if !errors.Is(err, proxy.ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	if r.Header.Get(proxy.HeaderSignature) != "" {
		t.Fatal("signature set despite error")
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event":"send","payload":{"text":"hi"}}`)
	cases := []struct {
		name   string
		mutate func(r *http.Request) []byte
		want   error
	}{
		{"body", func(r *http.Request) []byte { return []byte(`{"event":"send","payload":{"text":"HI"}}`) }, proxy.ErrBadSignature},
		{"empty body", func(r *http.Request) []byte { return nil }, proxy.ErrBadSignature},
		{"path", func(r *http.Request) []byte { r.RequestURI = "/admin"; return body }, proxy.ErrBadSignature},
		{"query", func(r *http.Request) []byte { r.RequestURI = "/event?as=admin"; return body }, proxy.ErrBadSignature},
		{"method", func(r *http.Request) []byte { r.Method = http.MethodPut; return body }, proxy.ErrBadSignature},
		{"timestamp +1", func(r *http.Request) []byte {
			ts, _ := strconv.ParseInt(r.Header.Get(proxy.HeaderTimestamp), 10, 64)
			r.Header.Set(proxy.HeaderTimestamp, strconv.FormatInt(ts+1, 10))
			return body
		}, proxy.ErrBadSignature},
		{"timestamp far future", func(r *http.Request) []byte {
			r.Header.Set(proxy.HeaderTimestamp, "9999999999")
			return body
		}, proxy.ErrBadSignature},
		{"nonce", func(r *http.Request) []byte {
			r.Header.Set(proxy.HeaderNonce, "AAAAAAAAAAAAAAAAAAAAAA")
			return body
		}, proxy.ErrBadSignature},
		{"signature bit", func(r *http.Request) []byte {
			s := []byte(r.Header.Get(proxy.HeaderSignature))
			if s[10] == '0' {
				s[10] = '1'
			} else {
				s[10] = '0'
			}
			r.Header.Set(proxy.HeaderSignature, string(s))
			return body
		}, proxy.ErrBadSignature},
		{"other scheme", func(r *http.Request) []byte {
			r.Header.Set(proxy.HeaderSignature, "v2="+strings.TrimPrefix(r.Header.Get(proxy.HeaderSignature), "v1="))
			return body
		}, proxy.ErrBadSignature},
		{"missing signature", func(r *http.Request) []byte { r.Header.Del(proxy.HeaderSignature); return body }, proxy.ErrBadSignature},
		{"missing timestamp", func(r *http.Request) []byte { r.Header.Del(proxy.HeaderTimestamp); return body }, proxy.ErrBadSignature},
		{"missing nonce", func(r *http.Request) []byte { r.Header.Del(proxy.HeaderNonce); return body }, proxy.ErrBadSignature},
		{"two signatures", func(r *http.Request) []byte {
			r.Header.Add(proxy.HeaderSignature, r.Header.Get(proxy.HeaderSignature))
			return body
		}, proxy.ErrBadSignature},
		{"signed timestamp with sign", func(r *http.Request) []byte {
			r.Header.Set(proxy.HeaderTimestamp, "+"+r.Header.Get(proxy.HeaderTimestamp))
			return body
		}, proxy.ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{t: epoch}
			v := newVerifier(t, clock)
			r := signedRequest(t, "/event", body, testSecret, epoch)
			b := tc.mutate(r)
			if err := v.Verify(r, b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyWrongSecret(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, &fakeClock{t: epoch})
	r := signedRequest(t, "/connect", []byte("{}"), otherSecret, epoch)
	if err := v.Verify(r, []byte("{}")); !errors.Is(err, proxy.ErrBadSignature) {
		t.Fatalf("got %v, want ErrBadSignature", err)
	}
}

func TestVerifyReplay(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: epoch}
	v := newVerifier(t, clock)
	body := []byte(`{}`)
	r := signedRequest(t, "/subscribe", body, testSecret, epoch)
	if err := v.Verify(r, body); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	if err := v.Verify(r, body); !errors.Is(err, proxy.ErrReplayed) {
		t.Fatalf("replay: got %v, want ErrReplayed", err)
	}
	// Once the timestamp has left the window the request is stale, not
	// merely replayed, and the nonce may be forgotten.
	clock.Add(5 * time.Minute)
	if err := v.Verify(r, body); !errors.Is(err, proxy.ErrStale) {
		t.Fatalf("late replay: got %v, want ErrStale", err)
	}
}

func TestVerifyBadSignatureDoesNotBurnNonce(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, &fakeClock{t: epoch})
	body := []byte(`{"a":1}`)
	r := signedRequest(t, "/event", body, testSecret, epoch)
	if err := v.Verify(r, []byte(`{"a":2}`)); !errors.Is(err, proxy.ErrBadSignature) {
		t.Fatalf("got %v", err)
	}
	if err := v.Verify(r, body); err != nil {
		t.Fatalf("genuine request after forged one: %v", err)
	}
}

func TestVerifyStale(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		skew time.Duration
		want error
	}{
		{"on time", 0, nil},
		{"4m59s old", -(5*time.Minute - time.Second), nil},
		{"5m old", -5 * time.Minute, nil},
		{"5m1s old", -(5*time.Minute + time.Second), proxy.ErrStale},
		{"an hour old", -time.Hour, proxy.ErrStale},
		{"5m ahead", 5 * time.Minute, nil},
		{"5m1s ahead", 5*time.Minute + time.Second, proxy.ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{t: epoch}
			v := newVerifier(t, clock)
			r := signedRequest(t, "/connect", nil, testSecret, epoch.Add(tc.skew))
			err := v.Verify(r, nil)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyRotation(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: epoch}
	v := newVerifier(t, clock, otherSecret, testSecret)
	for _, s := range [][]byte{testSecret, otherSecret} {
		r := signedRequest(t, "/connect", []byte("{}"), s, epoch)
		if err := v.Verify(r, []byte("{}")); err != nil {
			t.Fatalf("secret %q: %v", s[:4], err)
		}
	}
	third := bytes.Repeat([]byte("z"), 32)
	r := signedRequest(t, "/connect", []byte("{}"), third, epoch)
	if err := v.Verify(r, []byte("{}")); !errors.Is(err, proxy.ErrBadSignature) {
		t.Fatalf("third secret: got %v", err)
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]proxy.VerifierConfig{
		"no secret":      {},
		"short secret":   {Secrets: [][]byte{make([]byte, 31)}},
		"three secrets":  {Secrets: [][]byte{testSecret, otherSecret, testSecret}},
		"negative skew":  {Secrets: [][]byte{testSecret}, MaxSkew: -time.Second},
		"sub-second":     {Secrets: [][]byte{testSecret}, MaxSkew: time.Millisecond},
		"negative cache": {Secrets: [][]byte{testSecret}, MaxNonces: -1},
	} {
		if _, err := proxy.NewVerifier(cfg); !errors.Is(err, proxy.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestVerifyNonceCacheBounded fills a small cache and checks that it
// neither grows past its bound nor lets an evicted nonce be replayed.
func TestVerifyNonceCacheBounded(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: epoch}
	v, err := proxy.NewVerifier(proxy.VerifierConfig{Secrets: [][]byte{testSecret}, MaxNonces: 3, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*http.Request
	for i := range 3 {
		r := signedRequest(t, "/event", nil, testSecret, epoch.Add(time.Duration(i)*time.Second))
		if err := v.Verify(r, nil); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		reqs = append(reqs, r)
	}
	clock.Add(10 * time.Second)
	// A fourth request evicts the oldest nonce (timestamp epoch).
	if err := v.Verify(signedRequest(t, "/event", nil, testSecret, clock.Now()), nil); err != nil {
		t.Fatalf("fourth: %v", err)
	}
	// The evicted request is still fresh, but may not be replayed.
	if err := v.Verify(reqs[0], nil); !errors.Is(err, proxy.ErrReplayed) {
		t.Fatalf("evicted replay: got %v, want ErrReplayed", err)
	}
	// A new request no newer than the evicted one cannot be told from a
	// replay either.
	if err := v.Verify(signedRequest(t, "/event", nil, testSecret, epoch), nil); !errors.Is(err, proxy.ErrReplayed) {
		t.Fatalf("request at evicted time: got %v, want ErrReplayed", err)
	}
	for i, r := range reqs[1:] {
		if err := v.Verify(r, nil); !errors.Is(err, proxy.ErrReplayed) {
			t.Fatalf("replay %d: got %v", i+1, err)
		}
	}
	// Once every entry expired, the cache takes new nonces again.
	clock.Add(6 * time.Minute)
	for i := range 5 {
		if err := v.Verify(signedRequest(t, "/event", nil, testSecret, clock.Now()), nil); err != nil && i < 3 {
			t.Fatalf("after expiry %d: %v", i, err)
		}
	}
}

func TestVerifyConcurrentReplay(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, &fakeClock{t: epoch})
	body := []byte(`{}`)
	r := signedRequest(t, "/event", body, testSecret, epoch)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.Clone(r.Context())
			if v.Verify(c, body) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d of 16 concurrent copies accepted, want 1", ok)
	}
}

// The worked example of docs/proxy.md.
const (
	exampleSecret    = "livegate-example-secret-32-bytes-min!"
	exampleTimestamp = "1767225600"
	exampleNonce     = "AAECAwQFBgcICQoLDA0ODw"
	exampleTarget    = "/livegate/event"
	exampleBody      = `{"conn_id":"9f4e2a71d03b-1","identity":{"sub":"alice"},"event":"send","payload":{"text":"hi"}}`
)

func exampleSignature() string {
	m := hmac.New(sha256.New, []byte(exampleSecret))
	m.Write([]byte(proxy.CanonicalString("POST", exampleTarget, exampleTimestamp, exampleNonce, []byte(exampleBody))))
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// TestDocsWorkedExample checks that docs/proxy.md states the canonical
// string and signature that the code computes, and that the verifier
// accepts them.
func TestDocsWorkedExample(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte(exampleBody))
	canonical := proxy.CanonicalString("POST", exampleTarget, exampleTimestamp, exampleNonce, []byte(exampleBody))
	want := "POST\n" + exampleTarget + "\n" + exampleTimestamp + "\n" + exampleNonce + "\n" + hex.EncodeToString(sum[:])
	if canonical != want {
		t.Fatalf("canonical string\n%s\nwant\n%s", canonical, want)
	}
	sig := exampleSignature()
	doc, err := os.ReadFile("../docs/proxy.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{exampleSecret, exampleTimestamp, exampleNonce, exampleBody, hex.EncodeToString(sum[:]), canonical, sig} {
		if !bytes.Contains(doc, []byte(s)) {
			t.Errorf("docs/proxy.md does not contain %q", s)
		}
	}
	v, err := proxy.NewVerifier(proxy.VerifierConfig{Secrets: [][]byte{[]byte(exampleSecret)}, Now: func() time.Time { return time.Unix(1767225600, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, exampleTarget, strings.NewReader(exampleBody))
	r.Header.Set(proxy.HeaderTimestamp, exampleTimestamp)
	r.Header.Set(proxy.HeaderNonce, exampleNonce)
	r.Header.Set(proxy.HeaderSignature, sig)
	if err := v.Verify(r, []byte(exampleBody)); err != nil {
		t.Fatalf("worked example does not verify: %v", err)
	}
}
