package proxy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/livegate/livegate/proxy"
)

// verifyCase is one signed request for the example verifiers' CLIs.
type verifyCase struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	BodyB64 string            `json:"body_b64"`
	Secrets []string          `json:"secrets"`
	Now     int64             `json:"now"`
}

// exampleCases signs requests with the Go signer and returns them with
// the Go Verifier's verdicts, in order, sharing one nonce cache.
func exampleCases(t *testing.T) ([]verifyCase, []string) {
	t.Helper()
	now := time.Unix(1767225600, 0)
	v, err := proxy.NewVerifier(proxy.VerifierConfig{Secrets: [][]byte{otherSecret, testSecret}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var cases []verifyCase
	var want []string
	add := func(name string, target string, body []byte, secret []byte, at time.Time, mutate func(c *verifyCase)) {
		req, err := http.NewRequest(http.MethodPost, "https://backend.test"+target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := proxy.Sign(req, body, secret, at); err != nil {
			t.Fatal(err)
		}
		c := verifyCase{Method: req.Method, URL: req.URL.RequestURI(), Headers: map[string]string{},
			BodyB64: base64.StdEncoding.EncodeToString(body), Secrets: []string{string(otherSecret), string(testSecret)}, Now: now.Unix()}
		for _, h := range []string{proxy.HeaderTimestamp, proxy.HeaderNonce, proxy.HeaderSignature} {
			c.Headers[h] = req.Header.Get(h)
		}
		if mutate != nil {
			mutate(&c)
		}
		cases = append(cases, c)
		// The Go verdict, on the same request as a server receives it.
		body2, _ := base64.StdEncoding.DecodeString(c.BodyB64)
		in, _ := http.NewRequest(c.Method, "https://backend.test"+c.URL, nil)
		in.RequestURI = c.URL
		for k, val := range c.Headers {
			in.Header.Set(k, val)
		}
		verdict := "ok"
		switch err := v.Verify(in, body2); {
		case err == nil:
		case errors.Is(err, proxy.ErrBadSignature):
			verdict = "bad_signature"
		case errors.Is(err, proxy.ErrStale):
			verdict = "stale"
		case errors.Is(err, proxy.ErrReplayed):
			verdict = "replayed"
		default:
			t.Fatalf("%s: %v", name, err)
		}
		want = append(want, verdict)
	}
	body := []byte(`{"conn_id":"9f4e2a71d03b-1","identity":{"sub":"alice","groups":["é","☃"]},"data":{"x":"<\u2028>"}}`)
	add("valid", "/livegate/connect", body, testSecret, now, nil)
	add("valid, old secret", "/livegate/connect", body, otherSecret, now, nil)
	add("valid, query", "/lg/event?v=1&x=%2F", body, testSecret, now.Add(-4*time.Minute), nil)
	add("valid, empty body", "/disconnect", nil, testSecret, now.Add(4*time.Minute), nil)
	add("wrong secret", "/connect", body, bytes.Repeat([]byte("q"), 32), now, nil)
	add("tampered body", "/connect", body, testSecret, now, func(c *verifyCase) {
		c.BodyB64 = base64.StdEncoding.EncodeToString(append(append([]byte(nil), body...), ' '))
	})
	add("tampered path", "/connect", body, testSecret, now, func(c *verifyCase) { c.URL = "/subscribe" })
	add("tampered timestamp", "/connect", body, testSecret, now, func(c *verifyCase) {
		c.Headers[proxy.HeaderTimestamp] = strconv.FormatInt(now.Unix()-1, 10)
	})
	add("uppercase hex", "/connect", body, testSecret, now, func(c *verifyCase) {
		s := []byte(c.Headers[proxy.HeaderSignature])
		copy(s[3:], bytes.ToUpper(s[3:]))
		c.Headers[proxy.HeaderSignature] = string(s)
	})
	add("stale", "/connect", body, testSecret, now.Add(-5*time.Minute-time.Second), nil)
	add("future", "/connect", body, testSecret, now.Add(5*time.Minute+time.Second), nil)
	// A replay of the first case.
	cases = append(cases, cases[0])
	want = append(want, "replayed")
	return cases, want
}

// TestExamplesVerify runs the Node and Python verification helpers of
// examples/ on requests signed by the Go signer: all three
// implementations must give the same verdict on every request.
func TestExamplesVerify(t *testing.T) {
	t.Parallel()
	cases, want := exampleCases(t)
	if want[0] != "ok" || want[4] != "bad_signature" || want[9] != "stale" || want[len(want)-1] != "replayed" {
		t.Fatalf("Go verdicts %v", want)
	}
	input, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []struct {
		name, interpreter, dir string
		args                   []string
	}{
		{"node", "node", "../examples/node", []string{"verify-cli.js"}},
		{"python", "python3", "../examples/python", []string{"verify_cli.py"}},
	} {
		t.Run(lang.name, func(t *testing.T) {
			t.Parallel()
			path, err := exec.LookPath(lang.interpreter)
			if err != nil {
				// The test script sets LIVEGATE_REQUIRE_EXAMPLES=1: there a
				// missing interpreter is a failure, not a reason to skip.
				if os.Getenv("LIVEGATE_REQUIRE_EXAMPLES") == "1" {
					t.Fatalf("%s not installed", lang.interpreter)
				}
				t.Skipf("%s not installed", lang.interpreter)
			}
			cmd := exec.Command(path, lang.args...)
			cmd.Dir = lang.dir
			cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
			cmd.Stdin = bytes.NewReader(input)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v\n%s", lang.name, err, stderr.String())
			}
			var got []string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%s output %q: %v", lang.name, out, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d verdicts, want %d", lang.name, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("case %d: %s says %q, Go says %q", i, lang.name, got[i], want[i])
				}
			}
		})
	}
}
