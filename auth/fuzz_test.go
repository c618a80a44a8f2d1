package auth_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate/auth"
)

// fuzzKeyEnv carries the run's random HS256 key from the fuzzing
// coordinator to its worker processes, which inherit its environment, so
// that every process mints the same tokens. The key is never written to
// the corpus: no committed input can be signed with it.
const fuzzKeyEnv = "LIVEGATE_FUZZ_HS256_KEY"

// fuzzKey returns the run's random key, creating it on first use.
func fuzzKey(f *testing.F) []byte {
	if k, err := hex.DecodeString(os.Getenv(fuzzKeyEnv)); err == nil && len(k) == 32 {
		return k
	}
	k := randomKey(f)
	f.Setenv(fuzzKeyEnv, hex.EncodeToString(k))
	return k
}

func randomKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

var allReasons = map[string]bool{
	auth.ReasonMalformed: true, auth.ReasonAlgorithm: true, auth.ReasonKey: true,
	auth.ReasonSignature: true, auth.ReasonExpired: true, auth.ReasonNoExpiry: true,
	auth.ReasonNotYetValid: true, auth.ReasonAudience: true, auth.ReasonIssuer: true,
	auth.ReasonKind: true, auth.ReasonLifetime: true, auth.ReasonSubject: true,
	auth.ReasonNoJTI: true, auth.ReasonReplayed: true, auth.ReasonRevoked: true,
}

// checkRefusal asserts that a refusal is a *TokenError matching
// ErrInvalidToken with a documented reason and an empty identity.
func checkRefusal(t *testing.T, token string, id auth.Identity, err error) {
	t.Helper()
	var te *auth.TokenError
	if !errors.Is(err, auth.ErrInvalidToken) || !errors.As(err, &te) || !allReasons[te.Reason] {
		t.Fatalf("Verify(%q) error %v: not a *TokenError with a known reason", token, err)
	}
	if !reflect.DeepEqual(id, auth.Identity{}) {
		t.Fatalf("Verify(%q) refused (%v) but returned identity %+v", token, err, id)
	}
}

type mintedToken struct {
	kind auth.Kind
	id   auth.Identity
}

// FuzzVerify feeds arbitrary strings to a verifier holding a random
// HS256 key and checks that only the tokens the test minted with that key
// are accepted, for the kind they were minted for and with the identity
// they were minted with; everything else is refused with a *TokenError.
// A second verifier, whose key signs nothing, must refuse every input.
// The minted tokens are seeds, so the fuzzer mutates valid tokens.
func FuzzVerify(f *testing.F) {
	key := fuzzKey(f)
	now := fixedClock(t0)
	v := newVerifier(f, auth.VerifierConfig{Algorithm: auth.AlgHS256, HMACSecret: key, Now: now})
	other := newVerifier(f, auth.VerifierConfig{Algorithm: auth.AlgHS256, HMACSecret: randomKey(f), Now: now})
	s, err := auth.NewSigner(auth.SignerConfig{Algorithm: auth.AlgHS256, HMACSecret: key, Now: now})
	if err != nil {
		f.Fatal(err)
	}
	minted := map[string]mintedToken{}
	for _, m := range []struct {
		id   auth.Identity
		kind auth.Kind
	}{
		{auth.Identity{User: "alice", TokenID: "j1"}, auth.KindConnect},
		{auth.Identity{User: "bob", Session: "s1", Tenant: "acme", Groups: []string{"admin"}, Perms: []string{"chat:*"}, TokenID: "j2"}, auth.KindConnect},
		{auth.Identity{User: "carol", Channels: []string{"room:a", "dm:x#carol,dave"}, TokenID: "j3"}, auth.KindSubscribe},
		{auth.Identity{User: "\u202eeve\n", TokenID: "j4"}, auth.KindConnect},
	} {
		tok, id, err := s.Sign(m.id, m.kind, 5*time.Minute)
		if err != nil {
			f.Fatal(err)
		}
		minted[tok] = mintedToken{m.kind, id}
		f.Add(tok)
	}
	// Seeds the key did not sign: other keys, alg none, alg confusion,
	// malformed compact forms.
	claims := baseClaims()
	f.Add(hs256(f, claims))
	f.Add(mint(f, jwt.SigningMethodHS384, key, claims))
	f.Add(mint(f, jwt.SigningMethodHS512, key, claims))
	f.Add(mint(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims))
	f.Add(mint(f, jwt.SigningMethodEdDSA, testKeys().ed, claims))
	for tok := range minted {
		p := strings.Split(tok, ".")
		f.Add(p[0] + "." + p[1] + ".")
		f.Add(p[0] + "." + p[1])
		f.Add(b64(`{"alg":"none","typ":"JWT"}`) + "." + p[1] + ".")
		f.Add(b64(`{"alg":"HS256","crit":["exp"]}`) + "." + p[1] + "." + p[2])
		f.Add(tok + "=")
		f.Add(tok + ".")
		f.Add(" " + tok)
		f.Add(tok + "\n")
		f.Add(p[0] + "." + p[1] + "." + p[2][:7] + "\r\n" + p[2][7:])
		break
	}
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add(strings.Repeat("A", 16<<10+1))

	f.Fuzz(func(t *testing.T, token string) {
		for _, kind := range []auth.Kind{auth.KindConnect, auth.KindSubscribe, "other"} {
			id, err := v.Verify(token, kind)
			if err != nil {
				checkRefusal(t, token, id, err)
				if m, ok := minted[token]; ok && m.kind == kind {
					t.Fatalf("Verify refused the minted token %q: %v", token, err)
				}
			} else {
				m, ok := minted[token]
				if !ok {
					t.Fatalf("Verify accepted a token the test did not mint: %q (identity %+v; key %x)", token, id, key)
				}
				if m.kind != kind || !reflect.DeepEqual(id, m.id) {
					t.Fatalf("Verify(%q, %q) = %+v, minted %+v for kind %q", token, kind, id, m.id, m.kind)
				}
			}
			id, err = other.Verify(token, kind)
			if err == nil {
				t.Fatalf("a verifier whose key signed nothing accepted %q as %+v", token, id)
			}
			checkRefusal(t, token, id, err)
		}
	})
}

// FuzzVerifyClaims signs arbitrary header and payload bytes with the
// verifier's key, so the signature always verifies and the fuzzer reaches
// the header and claim checks. Whatever Verify accepts must pass an
// independent reading of the token's rules (alg HS256 exactly, no crit,
// exp in the future, nbf and iat not, lifetime at most 1h, aud containing
// "livegate", non-empty sub, the expected kind, claim types) and yield the
// identity that reading predicts; whatever it predicts valid must be
// accepted. Member names are case-sensitive and unique: a header or
// payload repeating a name, or naming a member Verify reads in another
// case or Unicode folding ("Sub", "\u017fub"), is refused, and so are
// date claims outside [0, 253402300799] (year 9999). The same bytes signed with another key, or unsigned, are
// always refused.
func FuzzVerifyClaims(f *testing.F) {
	key := randomKey(f)
	now := fixedClock(t0)
	v := newVerifier(f, auth.VerifierConfig{Algorithm: auth.AlgHS256, HMACSecret: key, Now: now})
	otherKey := randomKey(f)

	header := `{"alg":"HS256","typ":"JWT"}`
	good := `{"sub":"alice","sid":"s","aud":"livegate","iat":1700000000,"exp":1700000300,"jti":"j","kind":"connect"}`
	for _, s := range [][2]string{
		{header, good},
		{`{"alg":"HS256","kid":"k1"}`, `{"sub":"a","aud":["x","livegate"],"exp":1700003600,"iat":1700000000,"kind":"subscribe","channels":["room:a"],"groups":[],"perms":null,"tenant":"t"}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700000300.9,"nbf":1699999999.5,"kind":"connect"}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700003600,"kind":"connect"}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700003601,"kind":"connect"}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700000000,"kind":"connect"}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700000300,"iat":1700000001,"kind":"connect"}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700000300,"nbf":1e300,"kind":"connect"}`},
		{header, `{"sub":"a","aud":"livegate","exp":"1700000300","kind":"connect"}`},
		{header, `{"sub":"a","aud":[""],"exp":1700000300,"kind":"connect"}`},
		{header, `{"sub":"","aud":"livegate","exp":1700000300,"kind":"connect"}`},
		{header, `{"sub":1,"aud":"livegate","exp":1700000300,"kind":"connect"}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700000300,"kind":"connect","\u017fub":"admin"}`},
		{header, `{"SUB":"admin","sub":"a","aud":"livegate","exp":1700000300,"kind":"connect"}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700000300,"kind":"connect","groups":[null]}`},
		{header, `{"sub":"a","aud":"livegate","exp":1700000300,"kind":"connect"} x`},
		{`{"alg":"none"}`, good},
		{`{"alg":"hs256"}`, good},
		{`{"alg":"HS256","crit":[]}`, good},
		{`{"alg":"HS256","kid":null}`, good},
		{`{"alg":"HS256","alg":"ES256"}`, good},
		{`{"alg":"ES256","alg":"HS256"}`, good},
		{`{"alg":"HS256","ALG":"none","\u212aid":1}`, good},
		{header, `{"sub":"a","aud":"livegate","exp":1700000300,"nbf":-1,"iat":"253402300800","kind":"connect","x":1,"x":2}`},
		{`null`, good},
		{header, `null`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}

	f.Fuzz(func(t *testing.T, header, payload []byte) {
		input := b64(string(header)) + "." + b64(string(payload))
		token := input + "." + hmacB64(key, input)
		for _, kind := range []auth.Kind{auth.KindConnect, auth.KindSubscribe} {
			want, why := expectedIdentity(header, payload, kind, t0)
			id, err := v.Verify(token, kind)
			switch {
			case err != nil && why == "":
				t.Fatalf("Verify(header %s, payload %s, %s) = %v, but the claims are valid: %+v", header, payload, kind, err, want)
			case err != nil:
				checkRefusal(t, token, id, err)
			case why != "":
				t.Fatalf("Verify(header %s, payload %s, %s) accepted %+v, but %s", header, payload, kind, id, why)
			case !reflect.DeepEqual(id, want):
				t.Fatalf("Verify(header %s, payload %s, %s) = %+v, want %+v", header, payload, kind, id, want)
			}
			for _, forged := range []string{input + "." + hmacB64(otherKey, input), input + ".", input} {
				id, err := v.Verify(forged, kind)
				if err == nil {
					t.Fatalf("Verify accepted %q, not signed with the key: %+v", forged, id)
				}
				checkRefusal(t, forged, id, err)
			}
		}
	})
}

func hmacB64(key []byte, input string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// expectedIdentity is an independent reading of a signed token's header
// and payload under the default HS256 verifier configuration at now: the
// identity Verify must return, or why it must refuse. Claim names are
// matched exactly, as RFC 7519 requires.
func expectedIdentity(header, payload []byte, kind auth.Kind, now time.Time) (id auth.Identity, why string) {
	id, why = readClaims(header, payload, kind, now)
	if why != "" {
		id = auth.Identity{}
	}
	return id, why
}

// claimNames are the payload members Verify reads; headerNames the
// header members.
var (
	claimNames  = []string{"sub", "sid", "tenant", "groups", "perms", "channels", "kind", "jti", "iss", "aud", "exp", "nbf", "iat"}
	headerNames = []string{"alg", "kid", "typ", "crit"}
)

// ambiguousName says why the top-level member names of the JSON object
// obj are ambiguous, or returns "": a name given twice, or a name of
// names in another case or Unicode folding ("Sub", "SUB", "\u017fub" with
// a long s), which encoding/json would match case-insensitively with the
// last match winning, while claim names are case-sensitive (RFC 7519
// section 4).
func ambiguousName(obj []byte, names []string) string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := tok.(string)
		if seen[k] {
			return fmt.Sprintf("member %q repeated", k)
		}
		seen[k] = true
		for _, name := range names {
			if k != name && strings.EqualFold(k, name) {
				return fmt.Sprintf("member %q is %q in another case", k, name)
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// maxDate is 9999-12-31T23:59:59Z, the latest date claim Verify accepts.
const maxDate = 253402300799

func readClaims(header, payload []byte, kind auth.Kind, now time.Time) (auth.Identity, string) {
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil || h == nil {
		return auth.Identity{}, "header is not a JSON object"
	}
	if why := ambiguousName(header, headerNames); why != "" {
		return auth.Identity{}, "header " + why
	}
	if alg, _ := h["alg"].(string); alg != auth.AlgHS256 {
		return auth.Identity{}, "alg is not HS256"
	}
	if _, ok := h["crit"]; ok {
		return auth.Identity{}, "crit header present"
	}
	if kid, ok := h["kid"]; ok {
		if _, isString := kid.(string); !isString {
			return auth.Identity{}, "kid is not a string"
		}
	}
	if !json.Valid(payload) {
		return auth.Identity{}, "payload is not one JSON value"
	}
	if why := ambiguousName(payload, claimNames); why != "" {
		return auth.Identity{}, "payload " + why
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil || c == nil {
		return auth.Identity{}, "payload is not a JSON object"
	}
	var id auth.Identity
	str := func(name string, dst *string) string {
		switch x := c[name].(type) {
		case nil:
		case string:
			*dst = x
		default:
			return name + " is not a string"
		}
		return ""
	}
	strs := func(name string, dst *[]string) string {
		switch x := c[name].(type) {
		case nil:
		case []any:
			out := make([]string, 0, len(x))
			for _, e := range x {
				switch e := e.(type) {
				case nil: // encoding/json leaves a null element as ""
					out = append(out, "")
				case string:
					out = append(out, e)
				default:
					return name + " has a non-string element"
				}
			}
			*dst = out
		default:
			return name + " is not an array"
		}
		return ""
	}
	// date returns a NumericDate claim as whole seconds (floor), with
	// present false when absent or null. A date must be a number of
	// seconds from 0 to maxDate: golang-jwt converts it to int64 without
	// a range check, so a larger one would wrap.
	date := func(name string) (secs float64, present bool, why string) {
		var s string
		switch x := c[name].(type) {
		case nil:
			return 0, false, ""
		case json.Number:
			s = string(x)
		case string: // golang-jwt reads a numeric string as a number
			s = x
		default:
			return 0, false, name + " is not a number"
		}
		fl, err := json.Number(s).Float64()
		if err != nil || !validNumber(s) {
			return 0, false, name + " is not a number"
		}
		if !(fl >= 0 && fl <= maxDate) {
			return 0, false, name + " is out of range"
		}
		return math.Floor(fl), true, ""
	}
	var iss, kindClaim string
	var aud []string
	for _, why := range []string{
		str("sub", &id.User), str("sid", &id.Session), str("tenant", &id.Tenant), str("jti", &id.TokenID),
		str("iss", &iss), str("kind", &kindClaim),
		strs("groups", &id.Groups), strs("perms", &id.Perms), strs("channels", &id.Channels),
	} {
		if why != "" {
			return auth.Identity{}, why
		}
	}
	switch x := c["aud"].(type) {
	case nil:
	case string:
		aud = []string{x}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return auth.Identity{}, "aud has a non-string element"
			}
			aud = append(aud, s)
		}
	default:
		return auth.Identity{}, "aud is not a string or array"
	}
	exp, hasExp, why := date("exp")
	if why != "" {
		return auth.Identity{}, why
	}
	nbf, hasNbf, why := date("nbf")
	if why != "" {
		return auth.Identity{}, why
	}
	iat, hasIat, why := date("iat")
	if why != "" {
		return auth.Identity{}, why
	}
	n := float64(now.Unix())
	switch {
	case !hasExp:
		return auth.Identity{}, "exp missing"
	case !(n < exp):
		return auth.Identity{}, "expired"
	case hasNbf && nbf > n:
		return auth.Identity{}, "nbf in the future"
	case hasIat && iat > n:
		return auth.Identity{}, "iat in the future"
	case !containsString(aud, auth.DefaultAudience):
		return auth.Identity{}, "aud does not contain livegate"
	case hasIat && exp-iat > auth.DefaultMaxLifetime.Seconds():
		return auth.Identity{}, "lifetime over 1h"
	case !hasIat && exp-n > auth.DefaultMaxLifetime.Seconds():
		return auth.Identity{}, "remaining lifetime over 1h"
	case id.User == "":
		return auth.Identity{}, "sub missing or empty"
	case auth.Kind(kindClaim) != kind:
		return auth.Identity{}, "kind mismatch"
	}
	id.ExpiresAt = time.Unix(int64(exp), 0)
	if hasIat {
		id.IssuedAt = time.Unix(int64(iat), 0)
	}
	return id, ""
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	var x json.Number
	return json.Unmarshal([]byte(s), &x) == nil && json.Valid([]byte(s))
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
