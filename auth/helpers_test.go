package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// t0 is the fake "now" of most tests.
var t0 = time.Unix(1_700_000_000, 0)

// testSecret is a 32-byte HS256 secret.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// fixedClock returns a clock stuck at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// keys holds test key pairs, generated once per test binary.
type keys struct {
	rsa, rsaOther *rsa.PrivateKey
	rsa1024       *rsa.PrivateKey
	ec, ecOther   *ecdsa.PrivateKey
	ec384         *ecdsa.PrivateKey
	ed, edOther   ed25519.PrivateKey
}

var testKeys = sync.OnceValue(func() *keys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &keys{}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, k.edOther, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// baseClaims are claims that a default HS256 verifier at t0 accepts for
// KindConnect; negative tests change exactly one thing.
func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":  "alice",
		"sid":  "sess-1",
		"aud":  "livegate",
		"iat":  t0.Unix(),
		"exp":  t0.Add(5 * time.Minute).Unix(),
		"jti":  "jti-1",
		"kind": "connect",
	}
}

// with returns a copy of m with changes applied; a nil value deletes the key.
func with(m jwt.MapClaims, changes map[string]any) jwt.MapClaims {
	out := maps.Clone(m)
	for k, v := range changes {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// mint signs claims with method and key using the jwt library directly.
func mint(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return s
}

// hs256 signs claims with the test secret.
func hs256(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return mint(t, jwt.SigningMethodHS256, testSecret, claims)
}

// b64 is the JWT segment encoding.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unb64 decodes a JWT segment.
func unb64(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode segment: %v", err)
	}
	return string(b)
}

// segments splits a compact JWT.
func segments(t testing.TB, tok string) []string {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("token has %d segments", len(p))
	}
	return p
}

// hs256Raw signs the exact header and payload JSON with the test secret,
// for tokens jwt.MapClaims cannot express (repeated or folded names).
func hs256Raw(header, payload string) string {
	input := b64(header) + "." + b64(payload)
	return input + "." + hmacB64(testSecret, input)
}

// rawClaims is baseClaims as JSON text, with extra members appended
// (extra starts with a comma) and old replaced by repl when old is set.
func rawClaims(old, repl, extra string) string {
	p := `{"sub":"alice","sid":"sess-1","aud":"livegate","iat":1700000000,"exp":1700000300,"jti":"jti-1","kind":"connect"`
	if old != "" {
		p = strings.Replace(p, old, repl, 1)
	}
	return p + extra + "}"
}
