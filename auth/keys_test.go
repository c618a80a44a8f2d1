package auth_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate/auth"
)

// mintKID signs claims with method and key and sets the "kid" header to
// kid (any value, so tests can send non-strings); nil kid leaves it out.
func mintKID(t testing.TB, method jwt.SigningMethod, key any, kid any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != nil {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return s
}

// otherSecret is a second 32-byte HS256 secret.
var otherSecret = []byte("fedcba9876543210fedcba9876543210")

// rsaPublicPEM is the PEM encoding of the test RSA public key, the bytes an
// attacker would use as an HMAC secret in an algorithm-confusion attack.
func rsaPublicPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&testKeys().rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// mixedKeys is a set holding an RS256 key "rsa", an HS256 key "hmac" and an
// EdDSA key "ed".
func mixedKeys() []auth.Key {
	k := testKeys()
	return []auth.Key{
		{ID: "rsa", Algorithm: "RS256", PublicKey: &k.rsa.PublicKey},
		{ID: "hmac", Algorithm: "HS256", Secret: testSecret},
		{ID: "ed", Algorithm: "EdDSA", PublicKey: k.ed.Public()},
	}
}

func keysConfig(keys []auth.Key) auth.VerifierConfig {
	return auth.VerifierConfig{Keys: keys, Now: fixedClock(t0)}
}

func TestKeySetSelectsByKID(t *testing.T) {
	t.Parallel()
	k := testKeys()
	pemSecret := rsaPublicPEM(t)
	tests := []struct {
		name   string
		keys   []auth.Key // default mixedKeys()
		tok    func(t *testing.T) string
		reason string // "" means accepted
	}{
		{
			name: "hmac key",
			tok:  func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, testSecret, "hmac", baseClaims()) },
		},
		{
			name: "rsa key",
			tok:  func(t *testing.T) string { return mintKID(t, jwt.SigningMethodRS256, k.rsa, "rsa", baseClaims()) },
		},
		{
			name: "ed key",
			tok:  func(t *testing.T) string { return mintKID(t, jwt.SigningMethodEdDSA, k.ed, "ed", baseClaims()) },
		},
		{
			name:   "unknown kid",
			tok:    func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, testSecret, "gone", baseClaims()) },
			reason: auth.ReasonKey,
		},
		{
			name:   "missing kid with a multi-key set",
			tok:    func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, testSecret, nil, baseClaims()) },
			reason: auth.ReasonKey,
		},
		{
			name:   "empty kid with a multi-key set",
			tok:    func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, testSecret, "", baseClaims()) },
			reason: auth.ReasonKey,
		},
		{
			name:   "kid not a string",
			tok:    func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, testSecret, 7, baseClaims()) },
			reason: auth.ReasonKey,
		},
		{
			name: "confusion: HS256 with the RSA public key PEM as secret, kid rsa",
			tok: func(t *testing.T) string {
				return mintKID(t, jwt.SigningMethodHS256, pemSecret, "rsa", baseClaims())
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "confusion: HS256 with the hmac secret, kid rsa",
			tok: func(t *testing.T) string {
				return mintKID(t, jwt.SigningMethodHS256, testSecret, "rsa", baseClaims())
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name:   "confusion: RS256 header, kid hmac",
			tok:    func(t *testing.T) string { return mintKID(t, jwt.SigningMethodRS256, k.rsa, "hmac", baseClaims()) },
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "confusion: RS256 header, kid hmac, forged signature",
			tok: func(t *testing.T) string {
				p := segments(t, mintKID(t, jwt.SigningMethodHS256, testSecret, "hmac", baseClaims()))
				return b64(`{"alg":"RS256","kid":"hmac","typ":"JWT"}`) + "." + p[1] + "." + p[2]
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name:   "EdDSA token naming the rsa key",
			tok:    func(t *testing.T) string { return mintKID(t, jwt.SigningMethodEdDSA, k.ed, "rsa", baseClaims()) },
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "HS512 naming the hmac key",
			tok: func(t *testing.T) string {
				return mintKID(t, jwt.SigningMethodHS512, testSecret, "hmac", baseClaims())
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "alg none naming the hmac key",
			tok: func(t *testing.T) string {
				return mintKID(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "hmac", baseClaims())
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "wrong secret for the hmac key",
			tok: func(t *testing.T) string {
				return mintKID(t, jwt.SigningMethodHS256, otherSecret, "hmac", baseClaims())
			},
			reason: auth.ReasonSignature,
		},
		{
			name: "ed token naming the ed key but signed by another",
			tok: func(t *testing.T) string {
				return mintKID(t, jwt.SigningMethodEdDSA, k.edOther, "ed", baseClaims())
			},
			reason: auth.ReasonSignature,
		},
		{
			name: "single key with ID, token without kid",
			keys: []auth.Key{{ID: "only", Algorithm: "HS256", Secret: testSecret}},
			tok:  func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, testSecret, nil, baseClaims()) },
		},
		{
			name: "single key with ID, matching kid",
			keys: []auth.Key{{ID: "only", Algorithm: "HS256", Secret: testSecret}},
			tok:  func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, testSecret, "only", baseClaims()) },
		},
		{
			name: "single key with ID, other kid",
			keys: []auth.Key{{ID: "only", Algorithm: "HS256", Secret: testSecret}},
			tok: func(t *testing.T) string {
				return mintKID(t, jwt.SigningMethodHS256, testSecret, "other", baseClaims())
			},
			reason: auth.ReasonKey,
		},
		{
			name: "single key without ID accepts any kid",
			keys: []auth.Key{{Algorithm: "HS256", Secret: testSecret}},
			tok:  func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, testSecret, "any", baseClaims()) },
		},
		{
			name:   "single key without ID still pins its algorithm",
			keys:   []auth.Key{{Algorithm: "RS256", PublicKey: &k.rsa.PublicKey}},
			tok:    func(t *testing.T) string { return mintKID(t, jwt.SigningMethodHS256, pemSecret, nil, baseClaims()) },
			reason: auth.ReasonAlgorithm,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys := tt.keys
			if keys == nil {
				keys = mixedKeys()
			}
			v := newVerifier(t, keysConfig(keys))
			id, err := v.Verify(tt.tok(t), auth.KindConnect)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.User != "alice" {
					t.Errorf("identity = %+v", id)
				}
				return
			}
			assertReason(t, err, tt.reason)
		})
	}
}

// TestLegacyConfigAcceptsAnyKID keeps the single-key form's behaviour: the
// key has no ID, so a token's kid is not checked.
func TestLegacyConfigAcceptsAnyKID(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, hsConfig())
	for _, kid := range []any{nil, "", "whatever"} {
		if _, err := v.Verify(mintKID(t, jwt.SigningMethodHS256, testSecret, kid, baseClaims()), auth.KindConnect); err != nil {
			t.Errorf("kid %v: Verify: %v", kid, err)
		}
	}
	if got := v.Algorithm(); got != "HS256" {
		t.Errorf("Algorithm() = %q", got)
	}
}

func TestSignerKeyID(t *testing.T) {
	t.Parallel()
	k := testKeys()
	v := newVerifier(t, keysConfig(mixedKeys()))
	if got := v.Algorithm(); got != "" {
		t.Errorf("Algorithm() of a key set = %q, want empty", got)
	}
	tests := []struct {
		kid string
		cfg auth.SignerConfig
	}{
		{"hmac", auth.SignerConfig{Algorithm: "HS256", HMACSecret: testSecret}},
		{"rsa", auth.SignerConfig{Algorithm: "RS256", PrivateKey: k.rsa}},
		{"ed", auth.SignerConfig{Algorithm: "EdDSA", PrivateKey: k.ed}},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		cfg.KeyID = tt.kid
		cfg.Now = fixedClock(t0)
		s, err := auth.NewSigner(cfg)
		if err != nil {
			t.Fatalf("NewSigner: %v", err)
		}
		tok, _, err := s.Sign(auth.Identity{User: "alice"}, auth.KindConnect, time.Minute)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if h := unb64(t, segments(t, tok)[0]); !strings.Contains(h, `"kid":"`+tt.kid+`"`) {
			t.Errorf("header %s lacks kid %q", h, tt.kid)
		}
		if _, err := v.Verify(tok, auth.KindConnect); err != nil {
			t.Errorf("%s: Verify: %v", tt.kid, err)
		}
	}
	// Without KeyID there is no kid header.
	s, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: testSecret, Now: fixedClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Sign(auth.Identity{User: "alice"}, auth.KindConnect, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if h := unb64(t, segments(t, tok)[0]); strings.Contains(h, "kid") {
		t.Errorf("header %s has a kid", h)
	}
}

func TestNewVerifierKeysConfig(t *testing.T) {
	t.Parallel()
	k := testKeys()
	hmac := auth.Key{ID: "a", Algorithm: "HS256", Secret: testSecret}
	tests := []struct {
		name string
		cfg  auth.VerifierConfig
	}{
		{"empty config", auth.VerifierConfig{}},
		{"both forms", auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret, Keys: []auth.Key{hmac}}},
		{"secret and keys", auth.VerifierConfig{HMACSecret: testSecret, Keys: []auth.Key{hmac}}},
		{"multi-key set with a key without ID", auth.VerifierConfig{Keys: []auth.Key{hmac, {Algorithm: "HS256", Secret: otherSecret}}}},
		{"duplicate IDs", auth.VerifierConfig{Keys: []auth.Key{hmac, {ID: "a", Algorithm: "HS256", Secret: otherSecret}}}},
		{"short secret", auth.VerifierConfig{Keys: []auth.Key{{ID: "a", Algorithm: "HS256", Secret: testSecret[:31]}}}},
		{"HS256 key with a public key", auth.VerifierConfig{Keys: []auth.Key{{ID: "a", Algorithm: "HS256", Secret: testSecret, PublicKey: &k.rsa.PublicKey}}}},
		{"RS256 key with a secret", auth.VerifierConfig{Keys: []auth.Key{{ID: "a", Algorithm: "RS256", Secret: testSecret, PublicKey: &k.rsa.PublicKey}}}},
		{"RS256 key of 1024 bits", auth.VerifierConfig{Keys: []auth.Key{{ID: "a", Algorithm: "RS256", PublicKey: &k.rsa1024.PublicKey}}}},
		{"no algorithm", auth.VerifierConfig{Keys: []auth.Key{{ID: "a", Secret: testSecret}}}},
		{"HS512 key", auth.VerifierConfig{Keys: []auth.Key{{ID: "a", Algorithm: "HS512", Secret: testSecret}}}},
		{"single form with JWKS", auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret, JWKSURL: "https://idp.example/jwks"}},
		{"key without ID with JWKS", auth.VerifierConfig{Keys: []auth.Key{{Algorithm: "HS256", Secret: testSecret}}, JWKSURL: "https://idp.example/jwks"}},
		{"JWKS over plain http", auth.VerifierConfig{JWKSURL: "http://idp.example/jwks"}},
		{"JWKS relative URL", auth.VerifierConfig{JWKSURL: "/jwks"}},
		{"JWKS ftp", auth.VerifierConfig{JWKSURL: "ftp://127.0.0.1/jwks"}},
		{"negative JWKSRefresh", auth.VerifierConfig{JWKSURL: "https://127.0.0.1:1/jwks", JWKSRefresh: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.NewVerifier(tt.cfg)
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier accepted the configuration")
			}
			if !errors.Is(err, auth.ErrInvalidConfig) {
				t.Errorf("error %v does not match ErrInvalidConfig", err)
			}
			if !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("error %q lacks the auth: prefix", err)
			}
		})
	}
}

func TestVerifierCopiesKeySecrets(t *testing.T) {
	t.Parallel()
	secret := append([]byte(nil), testSecret...)
	v := newVerifier(t, keysConfig([]auth.Key{{ID: "a", Algorithm: "HS256", Secret: secret}}))
	clear(secret)
	if _, err := v.Verify(mintKID(t, jwt.SigningMethodHS256, testSecret, "a", baseClaims()), auth.KindConnect); err != nil {
		t.Fatalf("Verify after caller cleared the secret: %v", err)
	}
}

func TestSetKeysRotation(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, keysConfig([]auth.Key{{ID: "old", Algorithm: "HS256", Secret: testSecret}}))
	oldTok := mintKID(t, jwt.SigningMethodHS256, testSecret, "old", baseClaims())
	newTok := mintKID(t, jwt.SigningMethodHS256, otherSecret, "new", baseClaims())
	if _, err := v.Verify(oldTok, auth.KindConnect); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	_, err := v.Verify(newTok, auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)

	// Publish the new key next to the old one: both verify.
	if err := v.SetKeys([]auth.Key{
		{ID: "old", Algorithm: "HS256", Secret: testSecret},
		{ID: "new", Algorithm: "HS256", Secret: otherSecret},
	}); err != nil {
		t.Fatalf("SetKeys: %v", err)
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := v.Verify(tok, auth.KindConnect); err != nil {
			t.Fatalf("during overlap: %v", err)
		}
	}

	// Retire the old key.
	if err := v.SetKeys([]auth.Key{{ID: "new", Algorithm: "HS256", Secret: otherSecret}}); err != nil {
		t.Fatalf("SetKeys: %v", err)
	}
	_, err = v.Verify(oldTok, auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)
	if _, err := v.Verify(newTok, auth.KindConnect); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}

	// An invalid set is refused and the current set stays in force.
	bad := [][]auth.Key{
		nil,
		{{ID: "short", Algorithm: "HS256", Secret: testSecret[:16]}},
		{{ID: "x", Algorithm: "HS256", Secret: testSecret}, {ID: "x", Algorithm: "HS256", Secret: otherSecret}},
		{{ID: "x", Algorithm: "HS256", Secret: testSecret}, {Algorithm: "HS256", Secret: otherSecret}},
		{{ID: "new", Algorithm: "RS256", Secret: otherSecret}},
	}
	for i, keys := range bad {
		err := v.SetKeys(keys)
		if !errors.Is(err, auth.ErrInvalidConfig) {
			t.Errorf("bad set %d: SetKeys = %v, want ErrInvalidConfig", i, err)
		}
	}
	if _, err := v.Verify(newTok, auth.KindConnect); err != nil {
		t.Fatalf("after refused SetKeys: %v", err)
	}
	_, err = v.Verify(oldTok, auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)
}

// TestSetKeysLegacyVerifier rotates a verifier built with the single-key
// form.
func TestSetKeysLegacyVerifier(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, hsConfig())
	if err := v.SetKeys([]auth.Key{{ID: "k2", Algorithm: "HS256", Secret: otherSecret}}); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(hs256(t, baseClaims()), auth.KindConnect)
	assertReason(t, err, auth.ReasonSignature) // the sole key has an ID, but a token without kid may use it
	_, err = v.Verify(mintKID(t, jwt.SigningMethodHS256, testSecret, "k1", baseClaims()), auth.KindConnect)
	assertReason(t, err, auth.ReasonKey)
	if _, err := v.Verify(mintKID(t, jwt.SigningMethodHS256, otherSecret, "k2", baseClaims()), auth.KindConnect); err != nil {
		t.Fatal(err)
	}
}

// TestSetKeysConcurrent verifies tokens while another goroutine keeps
// swapping key sets. A token for the key present in every set must always
// verify; one for a key that comes and goes must either verify or be
// refused for its key, never anything else. Run with -race.
func TestSetKeysConcurrent(t *testing.T) {
	t.Parallel()
	stable := auth.Key{ID: "stable", Algorithm: "HS256", Secret: testSecret}
	flap := auth.Key{ID: "flap", Algorithm: "EdDSA", PublicKey: testKeys().ed.Public()}
	v := newVerifier(t, keysConfig([]auth.Key{stable}))
	stableTok := mintKID(t, jwt.SigningMethodHS256, testSecret, "stable", baseClaims())
	flapTok := mintKID(t, jwt.SigningMethodEdDSA, testKeys().ed, "flap", baseClaims())

	stop := make(chan struct{})
	var swapper sync.WaitGroup
	swapper.Go(func() {
		sets := [][]auth.Key{{stable}, {stable, flap}, {flap, stable}}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := v.SetKeys(sets[i%len(sets)]); err != nil {
				t.Errorf("SetKeys: %v", err)
				return
			}
		}
	})
	var readers sync.WaitGroup
	for range 8 {
		readers.Go(func() {
			for range 200 {
				if _, err := v.Verify(stableTok, auth.KindConnect); err != nil {
					t.Errorf("stable token: %v", err)
					return
				}
				if _, err := v.Verify(flapTok, auth.KindConnect); err != nil && auth.ReasonOf(err) != auth.ReasonKey {
					t.Errorf("flapping token: %v", err)
					return
				}
			}
		})
	}
	readers.Wait()
	close(stop)
	swapper.Wait()
}
