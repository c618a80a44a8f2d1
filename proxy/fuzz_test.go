package proxy_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/proxy"
)

// fuzzSecret is the committed seeds' key; it signs nothing outside tests.
const fuzzSecret = "livegate-fuzz-secret-not-for-production-use"

// fuzzNow is the verifier's clock; the seeds' timestamps are around it.
var fuzzNow = time.Unix(1767225600, 0)

// FuzzVerify feeds arbitrary signature headers, request targets and
// bodies to Verifier.Verify. It must never panic, must fail only with one
// of its three sentinels, and may accept a request only if it carries the
// correct HMAC over exactly what was received, a timestamp inside the
// window, and a nonce not seen before; accepting it once must make the
// same request a replay.
func FuzzVerify(f *testing.F) {
	f.Add("POST", "/connect", "1767225600", "AAECAwQFBgcICQoLDA0ODw", "v1=00", []byte(`{}`))
	f.Add("POST", "/event?x=1", "1767225600", "AAECAwQFBgcICQoLDA0ODw", "", []byte(nil))
	f.Add("POST", "/event", "1767225600", "AAECAwQFBgcICQoLDA0ODw", fuzzSign("POST", "/event", "1767225600", "AAECAwQFBgcICQoLDA0ODw", []byte(`{"a":1}`)), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, method, target, ts, nonce, sig string, body []byte) {
		// Inputs that are no HTTP request line cannot reach a verifier.
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") || len(target) > 2048 {
			return
		}
		if method == "" || strings.ContainsAny(method, " \r\n\t/") || len(method) > 16 {
			return
		}
		v, err := proxy.NewVerifier(proxy.VerifierConfig{Secrets: [][]byte{[]byte(fuzzSecret)}, Now: func() time.Time { return fuzzNow }})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Method, r.RequestURI = method, target
		r.Header = http.Header{
			proxy.HeaderTimestamp: {ts},
			proxy.HeaderNonce:     {nonce},
			proxy.HeaderSignature: {sig},
		}
		err = v.Verify(r, body)
		if err != nil {
			if !errors.Is(err, proxy.ErrBadSignature) && !errors.Is(err, proxy.ErrStale) && !errors.Is(err, proxy.ErrReplayed) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if !hmac.Equal([]byte(sig), []byte(fuzzSign(method, target, ts, nonce, body))) {
			t.Fatalf("accepted signature %q, want %q", sig, fuzzSign(method, target, ts, nonce, body))
		}
		n, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil || n < fuzzNow.Unix()-300 || n > fuzzNow.Unix()+300 {
			t.Fatalf("accepted timestamp %q outside the window", ts)
		}
		if err := v.Verify(r, body); !errors.Is(err, proxy.ErrReplayed) {
			t.Fatalf("second use: got %v, want ErrReplayed", err)
		}
	})
}

func fuzzSign(method, target, ts, nonce string, body []byte) string {
	m := hmac.New(sha256.New, []byte(fuzzSecret))
	m.Write([]byte(proxy.CanonicalString(method, target, ts, nonce, body)))
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}
