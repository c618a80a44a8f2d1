package auth_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate/auth"
)

// jwksServer serves a JWK Set that tests can replace, or fail with a
// status, and counts requests.
type jwksServer struct {
	*httptest.Server
	body   atomic.Pointer[[]byte]
	status atomic.Int32 // 0 = 200 with body
	hits   atomic.Int32
	gate   atomic.Pointer[chan struct{}] // when set, requests wait for it to close
}

func newJWKSServer(t *testing.T, tls bool, keys ...jwkset.JWKMarshal) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(t, keys...)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if g := s.gate.Load(); g != nil {
			select {
			case <-*g:
			case <-r.Context().Done():
				return
			}
		}
		if st := s.status.Load(); st != 0 {
			http.Error(w, "down", int(st))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*s.body.Load())
	})
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake failures are expected
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// set replaces the served key set.
func (s *jwksServer) set(t *testing.T, keys ...jwkset.JWKMarshal) {
	t.Helper()
	b, err := json.Marshal(jwkset.JWKSMarshal{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	s.setRaw(b)
}

func (s *jwksServer) setRaw(b []byte) { s.body.Store(&b) }

func (s *jwksServer) url() string { return s.URL + "/.well-known/jwks.json" }

// jwk returns the public JWK of pub with the given kid and alg (alg may be
// empty to leave it out).
func jwk(t testing.TB, pub crypto.PublicKey, kid string, alg jwkset.ALG) jwkset.JWKMarshal {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatalf("NewJWKFromKey: %v", err)
	}
	m := j.Marshal()
	m.ALG = alg
	return m
}

// octJWK is a symmetric JWK, which a verifier must never use.
func octJWK(secret []byte, kid string) jwkset.JWKMarshal {
	return jwkset.JWKMarshal{KTY: jwkset.KtyOct, KID: kid, ALG: jwkset.AlgHS256, USE: jwkset.UseSig, K: base64.RawURLEncoding.EncodeToString(secret)}
}

func jwksVerifier(t *testing.T, cfg auth.VerifierConfig) *auth.Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedClock(t0)
	}
	v := newVerifier(t, cfg)
	t.Cleanup(func() { v.Close() })
	return v
}

func TestJWKSVerify(t *testing.T) {
	t.Parallel()
	k := testKeys()
	srv := newJWKSServer(t, false,
		jwk(t, &k.rsa.PublicKey, "rsa-1", jwkset.AlgRS256),
		jwk(t, &k.ec.PublicKey, "ec-1", jwkset.AlgES256),
		jwk(t, k.ed.Public(), "ed-1", jwkset.AlgEdDSA),
		jwk(t, &k.rsaOther.PublicKey, "no-alg", ""),
		jwk(t, &k.ec384.PublicKey, "es384", jwkset.AlgES384),
		octJWK(otherSecret, "oct"),
	)
	v := jwksVerifier(t, auth.VerifierConfig{
		JWKSURL: srv.url(),
		Keys:    []auth.Key{{ID: "local", Algorithm: "HS256", Secret: testSecret}},
	})
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times by NewVerifier, want 1", got)
	}
	if got := v.Algorithm(); got != "" {
		t.Errorf("Algorithm() = %q", got)
	}
	pemSecret := rsaPublicPEM(t)
	tests := []struct {
		name   string
		tok    string
		reason string
	}{
		{"RS256 key", mintKID(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", baseClaims()), ""},
		{"ES256 key", mintKID(t, jwt.SigningMethodES256, k.ec, "ec-1", baseClaims()), ""},
		{"EdDSA key", mintKID(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", baseClaims()), ""},
		{"static key next to the JWKS", mintKID(t, jwt.SigningMethodHS256, testSecret, "local", baseClaims()), ""},
		{"no kid", mintKID(t, jwt.SigningMethodRS256, k.rsa, nil, baseClaims()), auth.ReasonKey},
		{"no kid, static HS256", mintKID(t, jwt.SigningMethodHS256, testSecret, nil, baseClaims()), auth.ReasonKey},
		{"JWK without alg", mintKID(t, jwt.SigningMethodRS256, k.rsaOther, "no-alg", baseClaims()), auth.ReasonKey},
		{"JWK with an unsupported alg", mintKID(t, jwt.SigningMethodES384, k.ec384, "es384", baseClaims()), auth.ReasonAlgorithm},
		{"ES256 naming an ES384 JWK", mintKID(t, jwt.SigningMethodES256, k.ec, "es384", baseClaims()), auth.ReasonKey},
		{"oct JWK", mintKID(t, jwt.SigningMethodHS256, otherSecret, "oct", baseClaims()), auth.ReasonKey},
		{"confusion: HS256 with the RSA PEM, kid rsa-1", mintKID(t, jwt.SigningMethodHS256, pemSecret, "rsa-1", baseClaims()), auth.ReasonAlgorithm},
		{"confusion: RS256 naming the static HS256 key", mintKID(t, jwt.SigningMethodRS256, k.rsa, "local", baseClaims()), auth.ReasonAlgorithm},
		{"ES256 naming the RS256 key", mintKID(t, jwt.SigningMethodES256, k.ec, "rsa-1", baseClaims()), auth.ReasonAlgorithm},
		{"RS256 by another key", mintKID(t, jwt.SigningMethodRS256, k.rsaOther, "rsa-1", baseClaims()), auth.ReasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.tok, auth.KindConnect)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			assertReason(t, err, tt.reason)
		})
	}
	// Keys present in the set, usable or not, never trigger a refresh.
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (no refresh for known kids)", got)
	}
}

// TestJWKSRotation rotates the served set and checks that a token naming
// the new kid triggers one refresh, after which the new key verifies and
// the removed one does not.
func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	k := testKeys()
	srv := newJWKSServer(t, false, jwk(t, &k.rsa.PublicKey, "2024", jwkset.AlgRS256))
	v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.url()})
	oldTok := mintKID(t, jwt.SigningMethodRS256, k.rsa, "2024", baseClaims())
	newTok := mintKID(t, jwt.SigningMethodRS256, k.rsaOther, "2025", baseClaims())
	if _, err := v.Verify(oldTok, auth.KindConnect); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	srv.set(t, jwk(t, &k.rsaOther.PublicKey, "2025", jwkset.AlgRS256))
	// Many callers present the new kid at once: one refresh serves them all.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := v.Verify(newTok, auth.KindConnect); err != nil {
				t.Errorf("new kid after rotation: %v", err)
			}
		})
	}
	wg.Wait()
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (initial + one refresh)", got)
	}
	_, err := v.Verify(oldTok, auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)

	// Unknown-kid refreshes are rate-limited: another unknown kid right
	// away is refused without a fetch.
	_, err = v.Verify(mintKID(t, jwt.SigningMethodRS256, k.rsa, "2026", baseClaims()), auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (refresh rate-limited)", got)
	}
}

// TestJWKSDownAtStart: NewVerifier succeeds when the JWKS cannot be
// fetched, and the verifier fails closed until a fetch succeeds.
func TestJWKSDownAtStart(t *testing.T) {
	t.Parallel()
	k := testKeys()
	tok := mintKID(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", baseClaims())

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL + "/jwks"
		srv.Close()
		logs := &syncBuffer{}
		v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: u, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		_, err := v.Verify(tok, auth.KindConnect)
		assertReason(t, err, auth.ReasonKey)
		if !strings.Contains(logs.String(), "JWKS fetch failed") {
			t.Errorf("fetch failure not logged: %q", logs.String())
		}
	})

	t.Run("refuses while down", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, false, jwk(t, &k.rsa.PublicKey, "rsa-1", jwkset.AlgRS256))
		srv.status.Store(http.StatusServiceUnavailable)
		v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.url()})
		_, err := v.Verify(tok, auth.KindConnect)
		assertReason(t, err, auth.ReasonKey)
		if got := srv.hits.Load(); got != 2 {
			t.Errorf("JWKS fetched %d times, want 2 (initial + one refresh)", got)
		}
	})

	t.Run("recovers when back", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, false, jwk(t, &k.rsa.PublicKey, "rsa-1", jwkset.AlgRS256))
		srv.status.Store(http.StatusServiceUnavailable)
		v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.url()})
		srv.status.Store(0)
		if _, err := v.Verify(tok, auth.KindConnect); err != nil {
			t.Fatalf("after the JWKS came back: %v", err)
		}
	})
}

func TestJWKSTLS(t *testing.T) {
	t.Parallel()
	k := testKeys()
	srv := newJWKSServer(t, true, jwk(t, k.ed.Public(), "ed-1", jwkset.AlgEdDSA))
	tok := mintKID(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", baseClaims())

	v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.url(), HTTPClient: srv.Client()})
	if _, err := v.Verify(tok, auth.KindConnect); err != nil {
		t.Fatalf("Verify with the server's client: %v", err)
	}
	// The default client does not trust the test certificate: fail closed.
	v2 := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.url()})
	_, err := v2.Verify(tok, auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)
}

func TestJWKSResponseTooLarge(t *testing.T) {
	t.Parallel()
	k := testKeys()
	srv := newJWKSServer(t, false)
	keys, err := json.Marshal([]jwkset.JWKMarshal{jwk(t, &k.rsa.PublicKey, "rsa-1", jwkset.AlgRS256)})
	if err != nil {
		t.Fatal(err)
	}
	srv.setRaw([]byte(`{"pad":"` + strings.Repeat("a", auth.MaxJWKSBytes) + `","keys":` + string(keys) + `}`))
	v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.url()})
	_, err = v.Verify(mintKID(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", baseClaims()), auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)
}

func TestJWKSClose(t *testing.T) {
	t.Parallel()
	k := testKeys()
	srv := newJWKSServer(t, false, jwk(t, &k.rsa.PublicKey, "rsa-1", jwkset.AlgRS256))
	v := jwksVerifier(t, auth.VerifierConfig{
		JWKSURL: srv.url(),
		Keys:    []auth.Key{{ID: "local", Algorithm: "HS256", Secret: testSecret}},
	})
	remote := mintKID(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", baseClaims())
	local := mintKID(t, jwt.SigningMethodHS256, testSecret, "local", baseClaims())
	if _, err := v.Verify(remote, auth.KindConnect); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := v.Verify(remote, auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)
	if _, err := v.Verify(local, auth.KindConnect); err != nil {
		t.Errorf("static key after Close: %v", err)
	}
	// SetKeys may empty the static set of a JWKS verifier.
	if err := v.SetKeys(nil); err != nil {
		t.Errorf("SetKeys(nil) with a JWKS: %v", err)
	}
}

// TestJWKSContextCancelled: a caller whose context ends while waiting for
// a refresh is refused; the refresh itself is not cut short and serves the
// next caller.
func TestJWKSContextCancelled(t *testing.T) {
	t.Parallel()
	k := testKeys()
	srv := newJWKSServer(t, false, jwk(t, &k.rsa.PublicKey, "rsa-1", jwkset.AlgRS256))
	v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.url()})
	srv.set(t, jwk(t, &k.rsaOther.PublicKey, "rsa-2", jwkset.AlgRS256))
	gate := make(chan struct{})
	srv.gate.Store(&gate)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tok := mintKID(t, jwt.SigningMethodRS256, k.rsaOther, "rsa-2", baseClaims())
	_, err := v.VerifyContext(ctx, tok, auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)

	close(gate) // let the refresh started above complete
	if _, err := v.Verify(tok, auth.KindConnect); err != nil {
		t.Fatalf("after the refresh: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2", got)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
