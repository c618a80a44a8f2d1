package auth_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate/auth"
)

// hsConfig is the default HS256 configuration at t0.
func hsConfig() auth.VerifierConfig {
	return auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret, Now: fixedClock(t0)}
}

func newVerifier(t testing.TB, cfg auth.VerifierConfig) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// assertReason checks that err is a token error with the given reason.
func assertReason(t *testing.T, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded, want reason %q", reason)
	}
	if !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("errors.Is(err, ErrInvalidToken) = false for %v", err)
	}
	var te *auth.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a *TokenError", err)
	}
	if te.Reason != reason {
		t.Errorf("Reason = %q, want %q (err: %v)", te.Reason, reason, err)
	}
	if got := auth.ReasonOf(err); got != reason {
		t.Errorf("ReasonOf = %q, want %q", got, reason)
	}
	if !strings.HasPrefix(err.Error(), "auth: invalid token: "+reason) {
		t.Errorf("Error() = %q, want prefix %q", err.Error(), "auth: invalid token: "+reason)
	}
}

// TestVerifyBaseline shows that the claims every negative case starts from
// are accepted, so each negative case fails only because of its one change.
func TestVerifyBaseline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  func(*auth.VerifierConfig)
		tok  func(t *testing.T) string
		kind auth.Kind
	}{
		{name: "default", tok: func(t *testing.T) string { return hs256(t, baseClaims()) }, kind: auth.KindConnect},
		{name: "subscribe", tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"kind": "subscribe"}))
		}, kind: auth.KindSubscribe},
		{name: "with issuer", cfg: func(c *auth.VerifierConfig) { c.Issuer = "https://app.example" }, tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"iss": "https://app.example"}))
		}, kind: auth.KindConnect},
		{name: "require jti", cfg: func(c *auth.VerifierConfig) { c.RequireJTI = true }, tok: func(t *testing.T) string {
			return hs256(t, baseClaims())
		}, kind: auth.KindConnect},
		{name: "aud array", tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"aud": []string{"other", "livegate"}}))
		}, kind: auth.KindConnect},
		{name: "custom audience", cfg: func(c *auth.VerifierConfig) { c.Audience = "chat" }, tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"aud": "chat"}))
		}, kind: auth.KindConnect},
		{name: "lifetime exactly max", tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"exp": t0.Add(time.Hour).Unix()}))
		}, kind: auth.KindConnect},
		{name: "no iat, remaining lifetime exactly max", tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"iat": nil, "exp": t0.Add(time.Hour).Unix()}))
		}, kind: auth.KindConnect},
		{name: "nbf now", tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"nbf": t0.Unix()}))
		}, kind: auth.KindConnect},
		{name: "expired within leeway", cfg: func(c *auth.VerifierConfig) { c.Leeway = 30 * time.Second }, tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"iat": t0.Add(-5 * time.Minute).Unix(), "exp": t0.Add(-10 * time.Second).Unix()}))
		}, kind: auth.KindConnect},
		{name: "unrelated unknown claims and header members ignored", tok: func(*testing.T) string {
			return hs256Raw(`{"alg":"HS256","typ":"JWT","cty":"x","Algo":1}`, rawClaims("", "", `,"subject":"admin","Subs":1,"x":{"sub":1,"sub":2}`))
		}, kind: auth.KindConnect},
		{name: "null nbf is absent, nbf 0 is the epoch", tok: func(*testing.T) string {
			return hs256Raw(`{"alg":"HS256"}`, rawClaims(`"iat":1700000000`, `"iat":0.5,"nbf":null`, `,"x":0`))
		}, kind: auth.KindConnect, cfg: func(c *auth.VerifierConfig) { c.MaxLifetime = 1_800_000_000 * time.Second }},
		{name: "iat ahead within leeway", cfg: func(c *auth.VerifierConfig) { c.Leeway = 30 * time.Second }, tok: func(t *testing.T) string {
			return hs256(t, with(baseClaims(), map[string]any{"iat": t0.Add(10 * time.Second).Unix()}))
		}, kind: auth.KindConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := hsConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			id, err := newVerifier(t, cfg).Verify(tt.tok(t), tt.kind)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.User != "alice" || id.Session != "sess-1" || id.TokenID != "jti-1" {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	k := testKeys()
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	rsCfg := func(c *auth.VerifierConfig) {
		*c = auth.VerifierConfig{Algorithm: "RS256", PublicKey: &k.rsa.PublicKey, Now: fixedClock(t0)}
	}
	tests := []struct {
		name   string
		cfg    func(*auth.VerifierConfig)
		tok    func(t *testing.T) string
		kind   auth.Kind // default KindConnect
		reason string
		is     error // optional cause that errors.Is must find
	}{
		{
			name: "alg none",
			tok: func(t *testing.T) string {
				return mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, baseClaims())
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "alg none with HS256 signature kept",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				return b64(`{"alg":"none","typ":"JWT"}`) + "." + p[1] + "." + p[2]
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "alg None capitalised",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				return b64(`{"alg":"None","typ":"JWT"}`) + "." + p[1] + "."
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "wrong HMAC key",
			tok: func(t *testing.T) string {
				return mint(t, jwt.SigningMethodHS256, []byte("ffffffffffffffffffffffffffffffff"), baseClaims())
			},
			reason: auth.ReasonSignature,
			is:     jwt.ErrTokenSignatureInvalid,
		},
		{
			name:   "HS512 with the HS256 secret",
			tok:    func(t *testing.T) string { return mint(t, jwt.SigningMethodHS512, testSecret, baseClaims()) },
			reason: auth.ReasonAlgorithm,
		},
		{
			name:   "HS384 with the HS256 secret",
			tok:    func(t *testing.T) string { return mint(t, jwt.SigningMethodHS384, testSecret, baseClaims()) },
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "unknown alg",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				return b64(`{"alg":"XS256"}`) + "." + p[1] + "." + p[2]
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "missing alg",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				return b64(`{"typ":"JWT"}`) + "." + p[1] + "." + p[2]
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "expired",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"iat": t0.Add(-10 * time.Minute).Unix(), "exp": t0.Add(-time.Second).Unix()}))
			},
			reason: auth.ReasonExpired,
			is:     jwt.ErrTokenExpired,
		},
		{
			name: "expires exactly now",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"iat": t0.Add(-time.Minute).Unix(), "exp": t0.Unix()}))
			},
			reason: auth.ReasonExpired,
		},
		{
			name: "expired beyond leeway",
			cfg:  func(c *auth.VerifierConfig) { c.Leeway = 30 * time.Second },
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"iat": t0.Add(-10 * time.Minute).Unix(), "exp": t0.Add(-31 * time.Second).Unix()}))
			},
			reason: auth.ReasonExpired,
		},
		{
			name:   "no exp",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"exp": nil})) },
			reason: auth.ReasonNoExpiry,
			is:     jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name:   "no exp and no aud",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"exp": nil, "aud": nil})) },
			reason: auth.ReasonNoExpiry,
		},
		{
			name:   "wrong aud",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"aud": "other-app"})) },
			reason: auth.ReasonAudience,
			is:     jwt.ErrTokenInvalidAudience,
		},
		{
			name: "wrong aud array",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"aud": []string{"a", "b"}}))
			},
			reason: auth.ReasonAudience,
		},
		{
			name:   "missing aud",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"aud": nil})) },
			reason: auth.ReasonAudience,
			is:     jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name:   "empty aud",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"aud": ""})) },
			reason: auth.ReasonAudience,
		},
		{
			name:   "default audience when another is configured",
			cfg:    func(c *auth.VerifierConfig) { c.Audience = "chat" },
			tok:    func(t *testing.T) string { return hs256(t, baseClaims()) },
			reason: auth.ReasonAudience,
		},
		{
			name:   "subscribe token where connect expected",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"kind": "subscribe"})) },
			reason: auth.ReasonKind,
		},
		{
			name:   "connect token where subscribe expected",
			tok:    func(t *testing.T) string { return hs256(t, baseClaims()) },
			kind:   auth.KindSubscribe,
			reason: auth.ReasonKind,
		},
		{
			name:   "missing kind",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"kind": nil})) },
			reason: auth.ReasonKind,
		},
		{
			name:   "kind differs in case",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"kind": "Connect"})) },
			reason: auth.ReasonKind,
		},
		{
			name: "nbf in the future",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"nbf": t0.Add(time.Minute).Unix()}))
			},
			reason: auth.ReasonNotYetValid,
			is:     jwt.ErrTokenNotValidYet,
		},
		{
			name: "iat in the future",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"iat": t0.Add(time.Minute).Unix(), "exp": t0.Add(5 * time.Minute).Unix()}))
			},
			reason: auth.ReasonNotYetValid,
			is:     jwt.ErrTokenUsedBeforeIssued,
		},
		{
			name: "iat in the future beyond leeway",
			cfg:  func(c *auth.VerifierConfig) { c.Leeway = 30 * time.Second },
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"iat": t0.Add(31 * time.Second).Unix()}))
			},
			reason: auth.ReasonNotYetValid,
		},
		{
			name: "tampered payload",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				payload := unb64(t, p[1])
				forged := strings.Replace(payload, `"sub":"alice"`, `"sub":"admin"`, 1)
				if forged == payload {
					t.Fatalf("payload %s has no sub to flip", payload)
				}
				return p[0] + "." + b64(forged) + "." + p[2]
			},
			reason: auth.ReasonSignature,
			is:     jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "tampered header keeps alg",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				return b64(`{"alg":"HS256","typ":"JWT","kid":"x"}`) + "." + p[1] + "." + p[2]
			},
			reason: auth.ReasonSignature,
		},
		{
			name: "signature stripped",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				return p[0] + "." + p[1] + "."
			},
			reason: auth.ReasonSignature,
		},
		{
			name: "lifetime over the maximum",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"exp": t0.Add(time.Hour + time.Second).Unix()}))
			},
			reason: auth.ReasonLifetime,
		},
		{
			name: "lifetime over the maximum, iat in the past",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"iat": t0.Add(-90 * time.Minute).Unix(), "exp": t0.Add(time.Minute).Unix()}))
			},
			reason: auth.ReasonLifetime,
		},
		{
			name: "remaining lifetime over the maximum without iat",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"iat": nil, "exp": t0.Add(2 * time.Hour).Unix()}))
			},
			reason: auth.ReasonLifetime,
		},
		{
			name: "lifetime over a configured maximum",
			cfg:  func(c *auth.VerifierConfig) { c.MaxLifetime = time.Minute },
			tok: func(t *testing.T) string {
				return hs256(t, baseClaims())
			},
			reason: auth.ReasonLifetime,
		},
		{
			name: "exp in year 9999, the latest date accepted",
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"exp": int64(253402300799)}))
			},
			reason: auth.ReasonLifetime,
		},
		{
			name:   "empty sub",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"sub": ""})) },
			reason: auth.ReasonSubject,
		},
		{
			name:   "missing sub",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"sub": nil})) },
			reason: auth.ReasonSubject,
		},
		{
			name:   "missing jti when required",
			cfg:    func(c *auth.VerifierConfig) { c.RequireJTI = true },
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"jti": nil})) },
			reason: auth.ReasonNoJTI,
		},
		{
			name:   "empty jti when required",
			cfg:    func(c *auth.VerifierConfig) { c.RequireJTI = true },
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"jti": ""})) },
			reason: auth.ReasonNoJTI,
		},
		{
			name: "wrong issuer",
			cfg:  func(c *auth.VerifierConfig) { c.Issuer = "https://app.example" },
			tok: func(t *testing.T) string {
				return hs256(t, with(baseClaims(), map[string]any{"iss": "https://evil.example"}))
			},
			reason: auth.ReasonIssuer,
			is:     jwt.ErrTokenInvalidIssuer,
		},
		{
			name:   "missing issuer when configured",
			cfg:    func(c *auth.VerifierConfig) { c.Issuer = "https://app.example" },
			tok:    func(t *testing.T) string { return hs256(t, baseClaims()) },
			reason: auth.ReasonIssuer,
		},
		{
			name: "algorithm confusion: HS256 signed with the RSA public key PEM",
			cfg:  rsCfg,
			tok: func(t *testing.T) string {
				return mint(t, jwt.SigningMethodHS256, pubPEM(), baseClaims())
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "algorithm confusion: HS256 signed with the RSA public key DER",
			cfg:  rsCfg,
			tok: func(t *testing.T) string {
				der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				return mint(t, jwt.SigningMethodHS256, der, baseClaims())
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name:   "RS256 verifier given an ES256 token",
			cfg:    rsCfg,
			tok:    func(t *testing.T) string { return mint(t, jwt.SigningMethodES256, k.ec, baseClaims()) },
			reason: auth.ReasonAlgorithm,
		},
		{
			name:   "RS256 verifier given a PS256 token",
			cfg:    rsCfg,
			tok:    func(t *testing.T) string { return mint(t, jwt.SigningMethodPS256, k.rsa, baseClaims()) },
			reason: auth.ReasonAlgorithm,
		},
		{
			name:   "RS256 verifier given an RS512 token from the right key",
			cfg:    rsCfg,
			tok:    func(t *testing.T) string { return mint(t, jwt.SigningMethodRS512, k.rsa, baseClaims()) },
			reason: auth.ReasonAlgorithm,
		},
		{
			name:   "RS256 signed by another key",
			cfg:    rsCfg,
			tok:    func(t *testing.T) string { return mint(t, jwt.SigningMethodRS256, k.rsaOther, baseClaims()) },
			reason: auth.ReasonSignature,
		},
		{
			name: "ES256 signed by another key",
			cfg: func(c *auth.VerifierConfig) {
				*c = auth.VerifierConfig{Algorithm: "ES256", PublicKey: &k.ec.PublicKey, Now: fixedClock(t0)}
			},
			tok:    func(t *testing.T) string { return mint(t, jwt.SigningMethodES256, k.ecOther, baseClaims()) },
			reason: auth.ReasonSignature,
		},
		{
			name: "EdDSA signed by another key",
			cfg: func(c *auth.VerifierConfig) {
				*c = auth.VerifierConfig{Algorithm: "EdDSA", PublicKey: k.ed.Public(), Now: fixedClock(t0)}
			},
			tok:    func(t *testing.T) string { return mint(t, jwt.SigningMethodEdDSA, k.edOther, baseClaims()) },
			reason: auth.ReasonSignature,
		},
		{
			name: "EdDSA verifier given HS256 signed with the public key bytes",
			cfg: func(c *auth.VerifierConfig) {
				*c = auth.VerifierConfig{Algorithm: "EdDSA", PublicKey: k.ed.Public(), Now: fixedClock(t0)}
			},
			tok: func(t *testing.T) string {
				return mint(t, jwt.SigningMethodHS256, []byte(k.ed.Public().(ed25519.PublicKey)), baseClaims())
			},
			reason: auth.ReasonAlgorithm,
		},
		{
			name: "crit header",
			tok: func(t *testing.T) string {
				tok := jwt.NewWithClaims(jwt.SigningMethodHS256, baseClaims())
				tok.Header["crit"] = []string{"exp"}
				s, err := tok.SignedString(testSecret)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			reason: auth.ReasonMalformed,
		},
		{
			name:   "exp of the wrong type",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"exp": "tomorrow"})) },
			reason: auth.ReasonMalformed,
		},
		{
			name:   "sub of the wrong type",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"sub": 42})) },
			reason: auth.ReasonMalformed,
		},
		{
			name:   "channels of the wrong type",
			tok:    func(t *testing.T) string { return hs256(t, with(baseClaims(), map[string]any{"channels": "chat:a"})) },
			reason: auth.ReasonMalformed,
		},
		{
			name: "sub repeated, last one wins in encoding/json",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, rawClaims("", "", `,"sub":"admin"`))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "sub repeated with the same value",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, rawClaims("", "", `,"sub":"alice"`))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "sub repeated through an escape",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, rawClaims("", "", `,"s\u0075b":"admin"`))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "claim name in another case: Sub",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, rawClaims("", "", `,"Sub":"admin"`))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "claim name in another case: SUB first",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, `{"SUB":"admin",`+rawClaims("", "", "")[1:])
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "claim name folded: long s in sub",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, rawClaims("", "", ",\"\u017fub\":\"admin\""))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "claim name folded: Kelvin sign in kind",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, rawClaims(`"kind":"connect"`, `"kind":"subscribe"`, ",\"\u212aind\":\"connect\""))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "claim name in another case: EXP",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, rawClaims("", "", `,"EXP":1700000100`))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "unknown claim repeated",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256","typ":"JWT"}`, rawClaims("", "", `,"x":1,"x":2`))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name:   "header alg repeated",
			tok:    func(*testing.T) string { return hs256Raw(`{"alg":"ES256","alg":"HS256"}`, rawClaims("", "", "")) },
			reason: auth.ReasonMalformed,
		},
		{
			name:   "header alg in another case",
			tok:    func(*testing.T) string { return hs256Raw(`{"alg":"HS256","ALG":"none"}`, rawClaims("", "", "")) },
			reason: auth.ReasonMalformed,
		},
		{
			name: "header kid folded",
			tok: func(*testing.T) string {
				return hs256Raw("{\"alg\":\"HS256\",\"\u212aid\":\"k\"}", rawClaims("", "", ""))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name:   "header crit in another case",
			tok:    func(*testing.T) string { return hs256Raw(`{"alg":"HS256","Crit":["exp"]}`, rawClaims("", "", "")) },
			reason: auth.ReasonMalformed,
		},
		{
			name:   "nbf past int64 seconds wraps to the past",
			tok:    func(*testing.T) string { return hs256Raw(`{"alg":"HS256"}`, rawClaims("", "", `,"nbf":9.3e18`)) },
			reason: auth.ReasonMalformed,
		},
		{
			name:   "nbf 1e300",
			tok:    func(*testing.T) string { return hs256Raw(`{"alg":"HS256"}`, rawClaims("", "", `,"nbf":1e300`)) },
			reason: auth.ReasonMalformed,
		},
		{
			name:   "nbf as a numeric string 1e300",
			tok:    func(*testing.T) string { return hs256Raw(`{"alg":"HS256"}`, rawClaims("", "", `,"nbf":"1e300"`)) },
			reason: auth.ReasonMalformed,
		},
		{
			name:   "nbf after year 9999",
			tok:    func(*testing.T) string { return hs256Raw(`{"alg":"HS256"}`, rawClaims("", "", `,"nbf":253402300800`)) },
			reason: auth.ReasonMalformed,
		},
		{
			name:   "nbf negative",
			tok:    func(*testing.T) string { return hs256Raw(`{"alg":"HS256"}`, rawClaims("", "", `,"nbf":-1`)) },
			reason: auth.ReasonMalformed,
		},
		{
			name: "iat 1e19",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256"}`, rawClaims(`"iat":1700000000`, `"iat":1e19`, ""))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "exp 1e300",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256"}`, rawClaims(`"exp":1700000300`, `"exp":1e300`, ""))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "exp 1<<62",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256"}`, rawClaims(`"exp":1700000300`, `"exp":4611686018427387904`, ""))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "exp beyond float64",
			tok: func(*testing.T) string {
				return hs256Raw(`{"alg":"HS256"}`, rawClaims(`"exp":1700000300`, `"exp":1e400`, ""))
			},
			reason: auth.ReasonMalformed,
		},
		{
			name: "line break in the signature",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				return p[0] + "." + p[1] + "." + p[2][:5] + "\n" + p[2][5:]
			},
			reason: auth.ReasonMalformed,
		},
		{
			name:   "CRLF after the token",
			tok:    func(t *testing.T) string { return hs256(t, baseClaims()) + "\r\n" },
			reason: auth.ReasonMalformed,
		},
		{
			name: "padded base64",
			tok: func(t *testing.T) string {
				p := segments(t, hs256(t, baseClaims()))
				return p[0] + "=." + p[1] + "." + p[2]
			},
			reason: auth.ReasonMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := hsConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			kind := tt.kind
			if kind == "" {
				kind = auth.KindConnect
			}
			id, err := newVerifier(t, cfg).Verify(tt.tok(t), kind)
			assertReason(t, err, tt.reason)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false for %v", tt.is, err)
			}
			if !reflect.DeepEqual(id, auth.Identity{}) {
				t.Errorf("identity %+v returned with an error", id)
			}
		})
	}
}

func TestVerifyEmptyKind(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, hsConfig())
	_, err := v.Verify(hs256(t, with(baseClaims(), map[string]any{"kind": nil})), "")
	assertReason(t, err, auth.ReasonKind)
}

func TestVerifyGarbage(t *testing.T) {
	t.Parallel()
	valid := segments(t, hs256(t, baseClaims()))
	tests := []struct {
		name   string
		tok    string
		reason string
	}{
		{"empty", "", auth.ReasonMalformed},
		{"one word", "garbage", auth.ReasonMalformed},
		{"two segments", "a.b", auth.ReasonMalformed},
		{"short segments", "a.b.c", auth.ReasonMalformed},
		{"four segments", valid[0] + "." + valid[1] + "." + valid[2] + ".x", auth.ReasonMalformed},
		{"dots only", "..", auth.ReasonMalformed},
		{"many dots", strings.Repeat(".", 1000), auth.ReasonMalformed},
		{"bearer prefix", "Bearer " + strings.Join(valid, "."), auth.ReasonMalformed},
		{"whitespace", " " + strings.Join(valid, "."), auth.ReasonMalformed},
		{"header not json", b64("hello") + "." + valid[1] + "." + valid[2], auth.ReasonMalformed},
		{"header array", b64("[]") + "." + valid[1] + "." + valid[2], auth.ReasonMalformed},
		{"header null", b64("null") + "." + valid[1] + "." + valid[2], auth.ReasonAlgorithm},
		{"alg not a string", b64(`{"alg":1}`) + "." + valid[1] + "." + valid[2], auth.ReasonAlgorithm},
		{"payload not json", valid[0] + "." + b64("{") + "." + valid[2], auth.ReasonMalformed},
		{"payload array", valid[0] + "." + b64("[1,2]") + "." + valid[2], auth.ReasonMalformed},
		{"standard base64 alphabet", valid[0] + "." + valid[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(valid[2]) + "+/", auth.ReasonMalformed},
		{"signature not base64", valid[0] + "." + valid[1] + ".!!!", auth.ReasonMalformed},
		{"nul and invalid utf-8", "\x00\xff\xfe.\x00.\x00", auth.ReasonMalformed},
		{"json token", `{"alg":"HS256"}`, auth.ReasonMalformed},
	}
	v := newVerifier(t, hsConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(tt.tok, auth.KindConnect)
			assertReason(t, err, tt.reason)
		})
	}
}

func TestVerifyHugeToken(t *testing.T) {
	t.Parallel()
	valid := segments(t, hs256(t, baseClaims()))
	mb := 1 << 20
	tests := []struct {
		name string
		tok  string
	}{
		{"1 MB of A", strings.Repeat("A", mb)},
		{"1 MB of dots", strings.Repeat(".", mb)},
		{"1 MB payload", valid[0] + "." + b64(`{"sub":"`+strings.Repeat("a", mb)+`"}`) + "." + valid[2]},
		{"1 MB signature", strings.Join(valid, ".") + strings.Repeat("A", mb)},
		{"one byte over the limit", strings.Repeat("A", auth.DefaultMaxTokenBytes+1)},
	}
	v := newVerifier(t, hsConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(tt.tok, auth.KindConnect)
			assertReason(t, err, auth.ReasonMalformed)
		})
	}
}

// TestVerifyHugeTokenNoDecoding checks that an oversized token is refused
// before any decoding: refusing it allocates only the error. It does not
// call t.Parallel because AllocsPerRun counts allocations process-wide.
func TestVerifyHugeTokenNoDecoding(t *testing.T) {
	v := newVerifier(t, hsConfig())
	valid := segments(t, hs256(t, baseClaims()))
	huge := valid[0] + "." + b64(`{"sub":"`+strings.Repeat("a", 1<<20)+`"}`) + "." + valid[2]
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := v.Verify(huge, auth.KindConnect); err == nil {
			t.Fatal("huge token accepted")
		}
	})
	if allocs > 1 {
		t.Errorf("refusing a 1 MB token made %v allocations, want at most 1", allocs)
	}
}

func TestVerifyMaxTokenBytes(t *testing.T) {
	t.Parallel()
	tok := hs256(t, baseClaims())
	tests := []struct {
		name   string
		max    int
		wantOK bool
	}{
		{"exactly the token length", len(tok), true},
		{"one byte short", len(tok) - 1, false},
		{"default", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := hsConfig()
			cfg.MaxTokenBytes = tt.max
			_, err := newVerifier(t, cfg).Verify(tok, auth.KindConnect)
			if tt.wantOK && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tt.wantOK {
				assertReason(t, err, auth.ReasonMalformed)
			}
		})
	}
}

// TestSignVerifyAlgorithms signs with each supported algorithm and checks
// that the verifier sees exactly the identity the signer reported.
func TestSignVerifyAlgorithms(t *testing.T) {
	t.Parallel()
	k := testKeys()
	tests := []struct {
		alg  string
		sc   auth.SignerConfig
		vc   auth.VerifierConfig
		kind auth.Kind
	}{
		{
			alg: "HS256",
			sc:  auth.SignerConfig{HMACSecret: testSecret},
			vc:  auth.VerifierConfig{HMACSecret: testSecret},
		},
		{
			alg: "EdDSA",
			sc:  auth.SignerConfig{PrivateKey: k.ed},
			vc:  auth.VerifierConfig{PublicKey: k.ed.Public()},
		},
		{
			alg: "ES256",
			sc:  auth.SignerConfig{PrivateKey: k.ec},
			vc:  auth.VerifierConfig{PublicKey: &k.ec.PublicKey},
		},
		{
			alg: "RS256",
			sc:  auth.SignerConfig{PrivateKey: k.rsa},
			vc:  auth.VerifierConfig{PublicKey: k.rsa.Public()},
		},
	}
	for _, tt := range tests {
		for _, kind := range []auth.Kind{auth.KindConnect, auth.KindSubscribe} {
			t.Run(fmt.Sprintf("%s/%s", tt.alg, kind), func(t *testing.T) {
				t.Parallel()
				sc, vc := tt.sc, tt.vc
				sc.Algorithm, vc.Algorithm = tt.alg, tt.alg
				sc.Issuer, vc.Issuer = "https://app.example", "https://app.example"
				sc.Now, vc.Now = fixedClock(t0), fixedClock(t0.Add(time.Minute))
				vc.RequireJTI = true
				signer, err := auth.NewSigner(sc)
				if err != nil {
					t.Fatalf("NewSigner: %v", err)
				}
				in := auth.Identity{
					User:     "alice",
					Session:  "sess-1",
					Tenant:   "acme",
					Groups:   []string{"staff"},
					Perms:    []string{"posts:read", "posts:write"},
					Channels: []string{"chat:lobby", "chat:alice#alice"},
				}
				tok, want, err := signer.Sign(in, kind, 5*time.Minute)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				header := unb64(t, segments(t, tok)[0])
				if !strings.Contains(header, `"alg":"`+tt.alg+`"`) {
					t.Errorf("header %s does not name %s", header, tt.alg)
				}
				got, err := newVerifier(t, vc).Verify(tok, kind)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("verified identity\n got %+v\nwant %+v", got, want)
				}
				if !got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(5*time.Minute)) {
					t.Errorf("iat %v exp %v, want %v and %v", got.IssuedAt, got.ExpiresAt, t0, t0.Add(5*time.Minute))
				}
				other := auth.KindSubscribe
				if kind == auth.KindSubscribe {
					other = auth.KindConnect
				}
				_, err = newVerifier(t, vc).Verify(tok, other)
				assertReason(t, err, auth.ReasonKind)
			})
		}
	}
}

func TestNewVerifierConfig(t *testing.T) {
	t.Parallel()
	k := testKeys()
	tests := []struct {
		name    string
		cfg     auth.VerifierConfig
		wantErr bool
	}{
		{"HS256 32-byte secret", auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret}, false},
		{"EdDSA", auth.VerifierConfig{Algorithm: "EdDSA", PublicKey: k.ed.Public()}, false},
		{"ES256", auth.VerifierConfig{Algorithm: "ES256", PublicKey: &k.ec.PublicKey}, false},
		{"RS256", auth.VerifierConfig{Algorithm: "RS256", PublicKey: &k.rsa.PublicKey}, false},
		{"no algorithm", auth.VerifierConfig{HMACSecret: testSecret}, true},
		{"alg none", auth.VerifierConfig{Algorithm: "none", HMACSecret: testSecret}, true},
		{"HS512", auth.VerifierConfig{Algorithm: "HS512", HMACSecret: testSecret}, true},
		{"lower-case hs256", auth.VerifierConfig{Algorithm: "hs256", HMACSecret: testSecret}, true},
		{"PS256", auth.VerifierConfig{Algorithm: "PS256", PublicKey: &k.rsa.PublicKey}, true},
		{"HS256 31-byte secret", auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret[:31]}, true},
		{"HS256 no secret", auth.VerifierConfig{Algorithm: "HS256"}, true},
		{"HS256 public key only", auth.VerifierConfig{Algorithm: "HS256", PublicKey: &k.rsa.PublicKey}, true},
		{"RS256 1024-bit key", auth.VerifierConfig{Algorithm: "RS256", PublicKey: &k.rsa1024.PublicKey}, true},
		{"RS256 ECDSA key", auth.VerifierConfig{Algorithm: "RS256", PublicKey: &k.ec.PublicKey}, true},
		{"RS256 no key", auth.VerifierConfig{Algorithm: "RS256", HMACSecret: testSecret}, true},
		{"RS256 private key", auth.VerifierConfig{Algorithm: "RS256", PublicKey: k.rsa}, true},
		{"ES256 P-384 key", auth.VerifierConfig{Algorithm: "ES256", PublicKey: &k.ec384.PublicKey}, true},
		{"ES256 RSA key", auth.VerifierConfig{Algorithm: "ES256", PublicKey: &k.rsa.PublicKey}, true},
		{"EdDSA pointer key", auth.VerifierConfig{Algorithm: "EdDSA", PublicKey: ptr(k.ed.Public().(ed25519.PublicKey))}, true},
		{"EdDSA short key", auth.VerifierConfig{Algorithm: "EdDSA", PublicKey: ed25519.PublicKey(make([]byte, 16))}, true},
		{"negative leeway", auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret, Leeway: -time.Second}, true},
		{"negative lifetime", auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret, MaxLifetime: -time.Second}, true},
		{"negative max bytes", auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret, MaxTokenBytes: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.NewVerifier(tt.cfg)
			if !tt.wantErr {
				if err != nil || v == nil {
					t.Fatalf("NewVerifier: %v", err)
				}
				if v.Algorithm() != tt.cfg.Algorithm {
					t.Errorf("Algorithm() = %q", v.Algorithm())
				}
				return
			}
			if err == nil {
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

func ptr[T any](v T) *T { return &v }

// TestVerifierCopiesSecret checks that changing the caller's secret after
// construction does not change what the verifier accepts.
func TestVerifierCopiesSecret(t *testing.T) {
	t.Parallel()
	secret := append([]byte(nil), testSecret...)
	v := newVerifier(t, auth.VerifierConfig{Algorithm: "HS256", HMACSecret: secret, Now: fixedClock(t0)})
	for i := range secret {
		secret[i] = 'x'
	}
	if _, err := v.Verify(hs256(t, baseClaims()), auth.KindConnect); err != nil {
		t.Fatalf("Verify after caller mutated secret: %v", err)
	}
}

// TestVerifyExpiryFollowsClock drives the verifier's clock across the
// token's expiry.
func TestVerifyExpiryFollowsClock(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	cfg := hsConfig()
	cfg.Now = clock.Now
	v := newVerifier(t, cfg)
	tok := hs256(t, baseClaims())
	if _, err := v.Verify(tok, auth.KindConnect); err != nil {
		t.Fatalf("Verify before expiry: %v", err)
	}
	clock.Advance(5*time.Minute - time.Second)
	if _, err := v.Verify(tok, auth.KindConnect); err != nil {
		t.Fatalf("Verify one second before expiry: %v", err)
	}
	clock.Advance(time.Second)
	_, err := v.Verify(tok, auth.KindConnect)
	assertReason(t, err, auth.ReasonExpired)
}

func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, hsConfig())
	good := hs256(t, baseClaims())
	bad := hs256(t, with(baseClaims(), map[string]any{"kind": "subscribe"}))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 50 {
				tok, wantOK := good, true
				if i%2 == 1 {
					tok, wantOK = bad, false
				}
				_, err := v.Verify(tok, auth.KindConnect)
				if (err == nil) != wantOK {
					t.Errorf("Verify: err = %v, want ok = %v", err, wantOK)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestTokenError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     *auth.TokenError
		wantMsg string
		wantIs  []error
	}{
		{
			name:    "with cause",
			err:     &auth.TokenError{Reason: auth.ReasonExpired, Err: jwt.ErrTokenExpired},
			wantMsg: "auth: invalid token: expired: token is expired",
			wantIs:  []error{auth.ErrInvalidToken, jwt.ErrTokenExpired},
		},
		{
			name:    "without cause",
			err:     &auth.TokenError{Reason: auth.ReasonKind},
			wantMsg: "auth: invalid token: kind",
			wantIs:  []error{auth.ErrInvalidToken},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tt.wantMsg)
			}
			wrapped := fmt.Errorf("connect: %w", tt.err)
			for _, target := range tt.wantIs {
				if !errors.Is(wrapped, target) {
					t.Errorf("errors.Is(%v, %v) = false", wrapped, target)
				}
			}
			if errors.Is(wrapped, auth.ErrReplayed) {
				t.Error("unexpected match of ErrReplayed")
			}
			if got := auth.ReasonOf(wrapped); got != tt.err.Reason {
				t.Errorf("ReasonOf = %q, want %q", got, tt.err.Reason)
			}
		})
	}
	if got := auth.ReasonOf(errors.New("other")); got != "" {
		t.Errorf("ReasonOf(non-token error) = %q", got)
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	v, err := auth.NewVerifier(hsConfig())
	if err != nil {
		b.Fatal(err)
	}
	tok := hs256(b, baseClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, auth.KindConnect); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHS256Parallel(b *testing.B) {
	v, err := auth.NewVerifier(hsConfig())
	if err != nil {
		b.Fatal(err)
	}
	tok := hs256(b, baseClaims())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok, auth.KindConnect); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
