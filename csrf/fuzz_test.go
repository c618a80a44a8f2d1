package csrf_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/livegate/livegate/csrf"
)

// fuzzEnv carries the run's random key and the tokens minted with it
// from the fuzzing coordinator to its worker processes, which inherit
// its environment, so that every process knows the same minted tokens.
// Nothing committed to the corpus can be signed with the key.
const fuzzEnv = "LIVEGATE_FUZZ_CSRF"

func allowAll(*http.Request, string) bool { return true }

// fuzzProtector returns a Protector with the run's random key and the
// tokens minted with it.
func fuzzProtector(f *testing.F) (*csrf.Protector, []string) {
	if keyHex, toks, ok := strings.Cut(os.Getenv(fuzzEnv), ";"); ok {
		k, err := hex.DecodeString(keyHex)
		if err == nil && len(k) == 32 {
			p, err := csrf.New(k, csrf.Options{AllowOrigin: allowAll})
			if err != nil {
				f.Fatal(err)
			}
			minted := strings.Split(toks, ",")
			for _, tok := range minted {
				if err := p.Verify(tok, tok); err != nil {
					f.Fatalf("inherited token %q does not verify: %v", tok, err)
				}
			}
			return p, minted
		}
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		f.Fatal(err)
	}
	p, err := csrf.New(k, csrf.Options{AllowOrigin: allowAll})
	if err != nil {
		f.Fatal(err)
	}
	var minted []string
	for range 4 {
		tok, _ := issue(f, p)
		minted = append(minted, tok)
	}
	f.Setenv(fuzzEnv, hex.EncodeToString(k)+";"+strings.Join(minted, ","))
	return p, minted
}

// FuzzVerify checks Protector.Verify and CheckToken on arbitrary cookie
// and token strings, each also paired with itself (the only way a token
// can pass): a pair is accepted only when cookie and token are the same
// token minted by this Protector; refusals are ErrNoToken exactly when a
// side is empty and ErrBadToken otherwise; a Protector with another key,
// which minted nothing, refuses everything. Only the minted spelling of
// a token verifies: the 3 other spellings of its random half's last
// character (whose 2 low bits are unused) are refused.
func FuzzVerify(f *testing.F) {
	p, mintedList := fuzzProtector(f)
	minted := map[string]bool{}
	for _, tok := range mintedList {
		minted[tok] = true
	}
	otherKey := make([]byte, 32)
	if _, err := rand.Read(otherKey); err != nil {
		f.Fatal(err)
	}
	other, err := csrf.New(otherKey, csrf.Options{AllowOrigin: allowAll})
	if err != nil {
		f.Fatal(err)
	}
	a, b := mintedList[0], mintedList[1]
	av, as, _ := strings.Cut(a, ".")
	bv, bs, _ := strings.Cut(b, ".")
	f.Add(a, a)
	f.Add(a, b)
	f.Add(a, "")
	f.Add("", a)
	f.Add(av+"."+bs, av+"."+bs)
	f.Add(bv+"."+as, bv+"."+as)
	f.Add(a+"=", a+"=")
	f.Add(av+"=."+as, av+"=."+as)
	f.Add(a+".", a+".")
	f.Add(" "+a, a)
	f.Add(strings.ToUpper(a), strings.ToUpper(a))
	f.Add(av, av)
	f.Add(as, as)
	f.Add(".", ".")
	f.Add("", "")
	f.Add(av+"."+base64.RawStdEncoding.EncodeToString([]byte(as)), av)
	f.Add(respell(a), respell(a))
	f.Add(av[:20]+"\r"+av[20:]+"."+as, av[:20]+"\r"+av[20:]+"."+as)
	f.Add(av+"\n."+as, av+"\n."+as)
	f.Fuzz(func(t *testing.T, cookie, token string) {
		for _, pair := range [][2]string{{cookie, token}, {token, token}, {cookie, cookie}} {
			c, tok := pair[0], pair[1]
			err := p.Verify(c, tok)
			switch {
			case err == nil:
				if c != tok || !minted[tok] {
					t.Fatalf("Verify(%q, %q) accepted a token the Protector did not mint", c, tok)
				}
			case c == "" || tok == "":
				if !errors.Is(err, csrf.ErrNoToken) {
					t.Fatalf("Verify(%q, %q) = %v, want ErrNoToken", c, tok, err)
				}
			case !errors.Is(err, csrf.ErrBadToken):
				t.Fatalf("Verify(%q, %q) = %v, want ErrBadToken", c, tok, err)
			case c == tok && minted[tok]:
				t.Fatalf("Verify refused minted token %q: %v", tok, err)
			}
			if err := other.Verify(c, tok); err == nil {
				t.Fatalf("a Protector with another key accepted (%q, %q)", c, tok)
			}
			// The same through a request's Cookie header.
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("Cookie", "livegate_csrf="+c)
			if err := p.CheckToken(r, tok); err == nil && !minted[tok] {
				t.Fatalf("CheckToken(cookie %q, %q) accepted a token the Protector did not mint", c, tok)
			}
		}
	})
}
