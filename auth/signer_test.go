package auth_test

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
)

func TestNewSignerConfig(t *testing.T) {
	t.Parallel()
	k := testKeys()
	tests := []struct {
		name    string
		cfg     auth.SignerConfig
		wantErr bool
	}{
		{"HS256", auth.SignerConfig{Algorithm: "HS256", HMACSecret: testSecret}, false},
		{"EdDSA", auth.SignerConfig{Algorithm: "EdDSA", PrivateKey: k.ed}, false},
		{"ES256", auth.SignerConfig{Algorithm: "ES256", PrivateKey: k.ec}, false},
		{"RS256", auth.SignerConfig{Algorithm: "RS256", PrivateKey: k.rsa}, false},
		{"no algorithm", auth.SignerConfig{HMACSecret: testSecret}, true},
		{"none", auth.SignerConfig{Algorithm: "none"}, true},
		{"HS512", auth.SignerConfig{Algorithm: "HS512", HMACSecret: testSecret}, true},
		{"HS256 short secret", auth.SignerConfig{Algorithm: "HS256", HMACSecret: []byte("short")}, true},
		{"RS256 1024-bit key", auth.SignerConfig{Algorithm: "RS256", PrivateKey: k.rsa1024}, true},
		{"RS256 ed25519 key", auth.SignerConfig{Algorithm: "RS256", PrivateKey: k.ed}, true},
		{"ES256 P-384 key", auth.SignerConfig{Algorithm: "ES256", PrivateKey: k.ec384}, true},
		{"EdDSA RSA key", auth.SignerConfig{Algorithm: "EdDSA", PrivateKey: k.rsa}, true},
		{"EdDSA no key", auth.SignerConfig{Algorithm: "EdDSA"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := auth.NewSigner(tt.cfg)
			if !tt.wantErr {
				if err != nil || s == nil {
					t.Fatalf("NewSigner: %v", err)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidConfig) {
				t.Fatalf("NewSigner error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func newHSSigner(t testing.TB) *auth.Signer {
	t.Helper()
	s, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: testSecret, Now: fixedClock(t0)})
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func TestSignRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		id   auth.Identity
		kind auth.Kind
		ttl  time.Duration
	}{
		{"zero ttl", auth.Identity{User: "alice"}, auth.KindConnect, 0},
		{"negative ttl", auth.Identity{User: "alice"}, auth.KindConnect, -time.Second},
		{"no user", auth.Identity{}, auth.KindConnect, time.Minute},
		{"no kind", auth.Identity{User: "alice"}, "", time.Minute},
	}
	s := newHSSigner(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, _, err := s.Sign(tt.id, tt.kind, tt.ttl)
			if err == nil || tok != "" {
				t.Fatalf("Sign = %q, %v; want an error", tok, err)
			}
			if !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("error %q lacks the auth: prefix", err)
			}
		})
	}
}

func TestSignIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		id      auth.Identity
		ttl     time.Duration
		wantJTI string // empty: random
		wantExp time.Time
	}{
		{"random jti", auth.Identity{User: "alice"}, 5 * time.Minute, "", t0.Add(5 * time.Minute)},
		{"given jti kept", auth.Identity{User: "alice", TokenID: "fixed"}, time.Minute, "fixed", t0.Add(time.Minute)},
		{"sub-second ttl rounds up", auth.Identity{User: "alice"}, 500 * time.Millisecond, "", t0.Add(time.Second)},
		{"fractional ttl rounds up", auth.Identity{User: "alice"}, 1500 * time.Millisecond, "", t0.Add(2 * time.Second)},
		{"given times ignored", auth.Identity{User: "alice", IssuedAt: t0.Add(-time.Hour), ExpiresAt: t0.Add(time.Hour)}, time.Minute, "", t0.Add(time.Minute)},
		{"empty slices dropped", auth.Identity{User: "alice", Groups: []string{}, Channels: []string{}}, time.Minute, "", t0.Add(time.Minute)},
	}
	s, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: testSecret, Now: fixedClock(t0.Add(300 * time.Millisecond))})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, auth.VerifierConfig{Algorithm: "HS256", HMACSecret: testSecret, Now: fixedClock(t0), RequireJTI: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, id, err := s.Sign(tt.id, auth.KindConnect, tt.ttl)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if tt.wantJTI != "" && id.TokenID != tt.wantJTI {
				t.Errorf("TokenID = %q, want %q", id.TokenID, tt.wantJTI)
			}
			if tt.wantJTI == "" {
				raw, err := base64.RawURLEncoding.DecodeString(id.TokenID)
				if err != nil || len(raw) != 16 {
					t.Errorf("TokenID %q is not 128 bits of base64url (%v)", id.TokenID, err)
				}
			}
			if !id.IssuedAt.Equal(t0) {
				t.Errorf("IssuedAt = %v, want %v", id.IssuedAt, t0)
			}
			if !id.ExpiresAt.Equal(tt.wantExp) {
				t.Errorf("ExpiresAt = %v, want %v", id.ExpiresAt, tt.wantExp)
			}
			got, err := v.Verify(tok, auth.KindConnect)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(got, id) {
				t.Errorf("verifier sees %+v, signer reported %+v", got, id)
			}
		})
	}
}

func TestSignRandomTokenIDsDiffer(t *testing.T) {
	t.Parallel()
	s := newHSSigner(t)
	seen := make(map[string]bool)
	for range 100 {
		_, id, err := s.Sign(auth.Identity{User: "alice"}, auth.KindConnect, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id.TokenID] {
			t.Fatalf("token id %q repeated", id.TokenID)
		}
		seen[id.TokenID] = true
	}
}

func TestSignDoesNotAliasCaller(t *testing.T) {
	t.Parallel()
	s := newHSSigner(t)
	in := auth.Identity{User: "alice", Channels: []string{"chat:a"}}
	_, id, err := s.Sign(in, auth.KindSubscribe, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	in.Channels[0] = "chat:b"
	if id.Channels[0] != "chat:a" {
		t.Errorf("returned identity aliases the caller's slice: %v", id.Channels)
	}
}

func TestGenerateSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		n       int
		wantErr bool
	}{
		{"32 bytes", 32, false},
		{"64 bytes", 64, false},
		{"zero", 0, true},
		{"negative", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := auth.GenerateSecret(tt.n)
			if tt.wantErr {
				if err == nil {
					t.Fatal("GenerateSecret succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := auth.GenerateSecret(tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != tt.n || string(a) == string(b) {
				t.Errorf("secrets %x and %x: want %d distinct random bytes", a, b, tt.n)
			}
		})
	}
}
