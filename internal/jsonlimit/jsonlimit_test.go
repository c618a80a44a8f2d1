package jsonlimit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/livegate/livegate/internal/jsonlimit"
)

// defaults returns the zero Limits with its defaults spelled out, for the
// reference comparisons.
func defaults() jsonlimit.Limits {
	return jsonlimit.Limits{
		MaxDepth:  jsonlimit.DefaultMaxDepth,
		MaxKeys:   jsonlimit.DefaultMaxKeys,
		MaxArray:  jsonlimit.DefaultMaxArray,
		MaxString: jsonlimit.DefaultMaxString,
		MaxTokens: jsonlimit.DefaultMaxTokens,
	}
}

func wantErr(t *testing.T, err, want error) *jsonlimit.Error {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Check = %v, want nil", err)
		}
		return nil
	}
	if !errors.Is(err, want) {
		t.Fatalf("Check = %v, want %v", err, want)
	}
	var e *jsonlimit.Error
	if !errors.As(err, &e) {
		t.Fatalf("Check = %T, want *jsonlimit.Error", err)
	}
	return e
}

// corpus returns valid UTF-8 inputs on which Check with the default limits
// must agree exactly with json.Valid.
func corpus() []string {
	return []string{
		// Scalars and whitespace.
		`0`, `-0`, `1`, `-1`, `10`, `1234567890`, `0.5`, `-0.5`, `1.0`, `1e5`, `1E5`, `1e+5`, `1e-5`,
		`1E-0005`, `0e0`, `0E+0`, `-0.0e-0`, `123.456e789`, `1e400`, `-1e-400`, `5e-324`,
		`123456789012345678901234567890123456789`, `0.000000000000000000000000000001`,
		`01`, `-01`, `00`, `+1`, `.5`, `1.`, `-`, `--1`, `-.5`, `1e`, `1e+`, `1e-`, `1E`, `1.e5`,
		`0x10`, `1_000`, `1.5.5`, `1e5e5`, `1e5.5`, `Infinity`, `-Infinity`, `NaN`, `nan`, `0-`,
		`true`, `false`, `null`, `True`, `FALSE`, `nul`, `nulll`, `tru`, `truee`, `t`, `undefined`,
		` 1 `, "\t\n\r 1\r\n\t", "\v1", "\f1", "1\f", "\u00a01", "\ufeff1", ``, ` `, "\n",
		`1 2`, `1,`, `,1`, `1 x`, `"a" "b"`, `[] []`, `{}{}`, `nullnull`,
		// Strings.
		`""`, `"a"`, `"hello, world"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u0000"`,
		`"\u001f"`, `"\u00e9"`, `"\u00E9"`, `"\uD83D\uDE00"`, `"\ud83d\ude00"`, `"\ud800"`,
		`"\udfff"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud800\ud800"`, `"\ud800x"`, `"\uFFFF"`,
		`"\ufffd"`, `"é"`, `"日本語"`, `"😀"`, "\"\u2028\u2029\"", "\"\x7f\"", "\"\ufffd\"",
		`"`, `"a`, `"\"`, `"\`, `"\a"`, `"\x41"`, `"\U0041"`, `"\u"`, `"\u12"`, `"\u123"`,
		`"\u12G4"`, `"\u 123"`, `"\'"`, `"\0"`, `'a'`, "\"a\nb\"", "\"\t\"", "\"\x00\"",
		"\"\x1f\"", "\"\r\"", `"\uD83D\u"`, `"\uD83D\uDE0"`, `"\uD83D\"`, `"a"b"`,
		// Arrays.
		`[]`, `[ ]`, `[1]`, `[1,2]`, `[ 1 , 2 ]`, `[[]]`, `[[],[]]`, `[{}]`, `[null,true,false]`,
		`[1,]`, `[,1]`, `[,]`, `[1,,2]`, `[`, `]`, `[1`, `[1,`, `[1 2]`, `[1:2]`, `[}`, `[[]`,
		`[]]`, `[1]]`, `[[1]`, `[-]`, `["a",]`, "[1\n,\n2\n]",
		// Objects.
		`{}`, `{ }`, `{"a":1}`, `{"a" : 1}`, `{ "a" : 1 , "b" : 2 }`, `{"a":{"b":{"c":{}}}}`,
		`{"a":[1,{"b":null}]}`, `{"":0}`, `{"\u0000":0}`, `{"a":1,}`, `{,"a":1}`, `{"a"}`,
		`{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{1:1}`, `{"a":1 "b":2}`, `{"a":1;"b":2}`,
		`{`, `}`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,`, `{]`, `{"a":1]`, `[1}`, `{null:1}`,
		`{"a":1}}`, `{"a"::1}`, `{"a":1,,"b":2}`, `{"a":{"a":{"a":{"a":1,"a":2}}}}`,
		// Comments and other extensions.
		`// c` + "\n1", `/* c */ 1`, `1 // c`, `[1 /* c */]`, `{"a":1 # c}`, `#1`,
		// Documents.
		`{"id":"1","method":"publish","params":{"channel":"chat:room","data":{"text":"hi","n":[1,2.5e3,-0]}}}`,
		`{"id":2,"method":"subscribe","params":{"channel":"news","since":{"offset":42,"epoch":"x"}}}`,
		`[{"a":[{"b":[{"c":[]}]}]}]`,
	}
}

func TestCheckMatchesValid(t *testing.T) {
	t.Parallel()
	for _, in := range corpus() {
		if !utf8.ValidString(in) {
			t.Fatalf("corpus entry %q is not UTF-8", in)
		}
		err := defaults().Check([]byte(in))
		if err != nil && !errors.Is(err, jsonlimit.ErrSyntax) {
			t.Errorf("Check(%q) = %v, want nil or ErrSyntax", in, err)
			continue
		}
		if got, want := err == nil, json.Valid([]byte(in)); got != want {
			t.Errorf("Check(%q) = %v, but json.Valid = %v", in, err, want)
		}
	}
}

// TestRandomDocuments compares Check with encoding/json on generated and
// mutated documents, under the defaults and under tight random limits.
func TestRandomDocuments(t *testing.T) {
	t.Parallel()
	g := newGen(1)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	var accepted, refused int
	for range n {
		data := g.doc()
		lim := defaults()
		if g.r.IntN(2) == 0 {
			lim = jsonlimit.Limits{
				MaxDepth:  1 + g.r.IntN(6),
				MaxKeys:   1 + g.r.IntN(6),
				MaxArray:  1 + g.r.IntN(6),
				MaxString: 1 + g.r.IntN(40),
				MaxTokens: 1 + g.r.IntN(40),
			}
		}
		if compare(t, lim, data) {
			accepted++
		} else {
			refused++
		}
	}
	if accepted < n/10 || refused < n/10 {
		t.Errorf("accepted %d, refused %d: generator is unbalanced", accepted, refused)
	}
}

// compare checks Check(data) against json.Valid and the reference
// statistics, and reports whether Check accepted. lim must not have zero
// fields.
func compare(t *testing.T, lim jsonlimit.Limits, data []byte) bool {
	t.Helper()
	err := lim.Check(data)
	valid := json.Valid(data)
	if err != nil {
		var e *jsonlimit.Error
		if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(data) {
			t.Fatalf("Check(%q) = %#v: want *Error with offset in [0, %d]", data, err, len(data))
		}
	}
	if err == nil && !valid {
		t.Fatalf("Check(%q) = nil, but json.Valid = false", data)
	}
	if !valid || !utf8.Valid(data) {
		// Invalid UTF-8 in a string is refused by Check but not by
		// json.Valid; the implication above is all that holds.
		return err == nil
	}
	if errors.Is(err, jsonlimit.ErrSyntax) {
		t.Fatalf("Check(%q) = %v, but json.Valid = true", data, err)
	}
	s, rerr := measure(data)
	if rerr != nil {
		t.Fatalf("measure(%q): %v", data, rerr)
	}
	v := s.violations(lim)
	switch {
	case len(v) == 0 && err != nil:
		t.Fatalf("Check(%q) = %v, want nil (stats %+v, limits %+v)", data, err, s, lim)
	case len(v) > 0 && !isAny(err, v):
		t.Fatalf("Check(%q) = %v, want one of %v (stats %+v, limits %+v)", data, err, v, s, lim)
	}
	return err == nil
}

func TestInvalidUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"lone continuation", "\"\x80\""},
		{"bad start byte", "\"\xff\""},
		{"overlong slash", "\"\xc0\xaf\""},
		{"overlong nul", "\"\xc0\x80\""},
		{"overlong 3 byte", "\"\xe0\x80\xaf\""},
		{"encoded surrogate", "\"\xed\xa0\x80\""},
		{"above U+10FFFF", "\"\xf4\x90\x80\x80\""},
		{"truncated 2 byte", "\"\xc3\""},
		{"truncated 4 byte", "\"\xf0\x9f\x98\""},
		{"latin1", "\"caf\xe9\""},
		{"in depth 1 key", "{\"\xff\":1}"},
		{"in depth 3 key", "{\"a\":{\"b\":{\"\xff\":1}}}"},
		{"in nested value", "[[[[\"ok\",\"\xfe\"]]]]"},
		{"after escape", "\"\\n\xff\""},
		{"after long ascii run", "\"" + strings.Repeat("a", 100) + "\xff\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !json.Valid([]byte(tt.in)) {
				t.Fatalf("json.Valid(%q) = false; the case should show a stricter Check", tt.in)
			}
			e := wantErr(t, jsonlimit.Limits{}.Check([]byte(tt.in)), jsonlimit.ErrSyntax)
			if !strings.Contains(e.Error(), "UTF-8") {
				t.Errorf("error %q does not mention UTF-8", e)
			}
		})
	}
	// Valid multi-byte text, including U+FFFD itself, is fine.
	wantErr(t, jsonlimit.Limits{}.Check([]byte("\"\ufffd é 日本 😀 \u2028\"")), nil)
	// Bytes >= 0x80 outside strings are a syntax error for both.
	wantErr(t, jsonlimit.Limits{}.Check([]byte("[1,\xff]")), jsonlimit.ErrSyntax)
}

// nest returns n opening brackets, inner, and n closing ones.
func nest(n int, inner string) string {
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// object returns an object with n members "k0".."k(n-1)" whose values are v.
func object(n int, v string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", fmt.Sprint("k", i), v)
	}
	b.WriteByte('}')
	return b.String()
}

// array returns an array of n copies of v.
func array(n int, v string) string {
	if n == 0 {
		return "[]"
	}
	return "[" + strings.Repeat(v+",", n-1) + v + "]"
}

// tokens returns an array of arrays of zeros with exactly n tokens (n >= 1),
// no array longer than 4000.
func tokens(n int) string {
	var parts []string
	for rest := n - 1; rest > 0; {
		k := min(rest, 4000) // 1 for the inner array, k-1 zeros
		parts = append(parts, array(k-1, "0"))
		rest -= k
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestLimits(t *testing.T) {
	t.Parallel()
	var zero jsonlimit.Limits
	tests := []struct {
		name string
		lim  jsonlimit.Limits
		in   string
		want error
		off  int // expected offset when want != nil; -1 to skip
	}{
		{"depth at default", zero, nest(32, "1"), nil, 0},
		{"depth over default", zero, nest(33, "1"), jsonlimit.ErrDepth, 32},
		{"depth objects at default", zero, strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32), nil, 0},
		{"depth objects over default", zero, strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33), jsonlimit.ErrDepth, 32 * 5},
		{"depth at custom", jsonlimit.Limits{MaxDepth: 3}, nest(3, ""), nil, 0},
		{"depth over custom", jsonlimit.Limits{MaxDepth: 3}, nest(4, ""), jsonlimit.ErrDepth, 3},
		{"depth at cap", jsonlimit.Limits{MaxDepth: 1000}, nest(128, ""), nil, 0},
		{"depth over cap", jsonlimit.Limits{MaxDepth: 1000}, nest(129, ""), jsonlimit.ErrDepth, 128},
		{"depth negative is default", jsonlimit.Limits{MaxDepth: -1}, nest(33, ""), jsonlimit.ErrDepth, 32},
		{"scalar has depth 0", jsonlimit.Limits{MaxDepth: 1}, `"x"`, nil, 0},

		{"keys at default depth 3", zero, `[[` + object(256, "0") + `]]`, nil, 0},
		{"keys over default depth 3", zero, `[[` + object(257, "0") + `]]`, jsonlimit.ErrKeys, -1},
		{"keys at dedup cap depth 1", zero, object(64, "0"), nil, 0},
		{"keys over dedup cap depth 1", zero, object(65, "0"), jsonlimit.ErrKeys, len(object(64, "0"))},
		{"keys over dedup cap depth 2", zero, `[` + object(65, "0") + `]`, jsonlimit.ErrKeys, -1},
		{"keys at custom", jsonlimit.Limits{MaxKeys: 3}, object(3, "0"), nil, 0},
		{"keys over custom", jsonlimit.Limits{MaxKeys: 3}, object(4, "0"), jsonlimit.ErrKeys, len(`{"k0":0,"k1":0,"k2":0,`)},
		{"keys over custom deep", jsonlimit.Limits{MaxKeys: 3}, `[[[` + object(4, "0") + `]]]`, jsonlimit.ErrKeys, -1},
		{"keys large custom still capped at depth 1", jsonlimit.Limits{MaxKeys: 1000}, object(65, "0"), jsonlimit.ErrKeys, -1},
		{"keys large custom depth 3", jsonlimit.Limits{MaxKeys: 1000}, `[[` + object(1000, "0") + `]]`, nil, 0},

		{"array at default", zero, array(4096, "0"), nil, 0},
		{"array over default", zero, array(4097, "0"), jsonlimit.ErrArray, 1 + 2*4096},
		{"array at custom", jsonlimit.Limits{MaxArray: 1}, `[ 1 ]`, nil, 0},
		{"array over custom", jsonlimit.Limits{MaxArray: 1}, `[1, 2]`, jsonlimit.ErrArray, 4},
		{"array empty", jsonlimit.Limits{MaxArray: 1}, `[]`, nil, 0},
		{"array nested counts separately", jsonlimit.Limits{MaxArray: 2}, `[[1,2],[3,4]]`, nil, 0},

		{"string at default", zero, `"` + strings.Repeat("x", 64<<10) + `"`, nil, 0},
		{"string over default", zero, `"` + strings.Repeat("x", 64<<10+1) + `"`, jsonlimit.ErrString, 0},
		{"string at custom", jsonlimit.Limits{MaxString: 8}, `"12345678"`, nil, 0},
		{"string over custom", jsonlimit.Limits{MaxString: 8}, `"123456789"`, jsonlimit.ErrString, 0},
		{"string escapes as written at", jsonlimit.Limits{MaxString: 12}, `"\u00e9\u00e9"`, nil, 0},
		{"string escapes as written over", jsonlimit.Limits{MaxString: 11}, `"\u00e9\u00e9"`, jsonlimit.ErrString, 0},
		{"string escape straddles limit", jsonlimit.Limits{MaxString: 7}, `"12345\n"`, nil, 0},
		{"string escape crosses limit", jsonlimit.Limits{MaxString: 6}, `"12345\n"`, jsonlimit.ErrString, 0},
		{"string pair crosses limit", jsonlimit.Limits{MaxString: 11}, `"\ud83d\ude00"`, jsonlimit.ErrString, 0},
		{"string utf8 at", jsonlimit.Limits{MaxString: 4}, `"😀"`, nil, 0},
		{"string utf8 over", jsonlimit.Limits{MaxString: 3}, `"😀"`, jsonlimit.ErrString, 0},
		{"string in array offset", jsonlimit.Limits{MaxString: 2}, `["ab", "abc"]`, jsonlimit.ErrString, 7},
		{"key depth 1 at", jsonlimit.Limits{MaxString: 3}, `{"abc":1}`, nil, 0},
		{"key depth 1 over", jsonlimit.Limits{MaxString: 3}, `{"abcd":1}`, jsonlimit.ErrString, 1},
		{"key depth 1 escapes over", jsonlimit.Limits{MaxString: 11}, `{"\u0041\u0042":1}`, jsonlimit.ErrString, 1},
		{"key depth 3 at", jsonlimit.Limits{MaxString: 3}, `[[{"abc":1}]]`, nil, 0},
		{"key depth 3 over", jsonlimit.Limits{MaxString: 3}, `[[{"abcd":1}]]`, jsonlimit.ErrString, 3},

		{"tokens at default", zero, tokens(16384), nil, 0},
		{"tokens over default", zero, tokens(16385), jsonlimit.ErrTokens, -1},
		{"tokens at custom", jsonlimit.Limits{MaxTokens: 5}, `[1,2,3,4]`, nil, 0},
		{"tokens over custom", jsonlimit.Limits{MaxTokens: 5}, `[1,2,3,4,5]`, jsonlimit.ErrTokens, 9},
		{"tokens count keys", jsonlimit.Limits{MaxTokens: 4}, `{"a":[1]}`, nil, 0},
		{"tokens count keys over", jsonlimit.Limits{MaxTokens: 4}, `{"a":[1],"b":2}`, jsonlimit.ErrTokens, 9},
		{"tokens scalar", jsonlimit.Limits{MaxTokens: 1}, `true`, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !json.Valid([]byte(tt.in)) {
				t.Fatalf("test input is not valid JSON")
			}
			e := wantErr(t, tt.lim.Check([]byte(tt.in)), tt.want)
			if e != nil && tt.off >= 0 && e.Offset != tt.off {
				t.Errorf("Offset = %d, want %d (%v)", e.Offset, tt.off, e)
			}
		})
	}
}

func TestStringLimitBeforeEnd(t *testing.T) {
	t.Parallel()
	// An over-long string is refused as soon as the limit is passed, even
	// if it is never terminated.
	wantErr(t, jsonlimit.Limits{MaxString: 8}.Check([]byte(`"123456789`)), jsonlimit.ErrString)
	wantErr(t, jsonlimit.Limits{MaxString: 8}.Check([]byte(`{"123456789`)), jsonlimit.ErrString)
	wantErr(t, jsonlimit.Limits{MaxString: 9}.Check([]byte(`"123456789`)), jsonlimit.ErrSyntax)
}

// TestAdversarial feeds hostile 60 KiB frames to the default limits.
func TestAdversarial(t *testing.T) {
	t.Parallel()
	const size = 60 << 10
	fill := func(head, unit, tail string) []byte {
		n := (size - len(head) - len(tail)) / len(unit)
		return []byte(head + strings.Repeat(unit, n) + tail)
	}
	var keys strings.Builder
	keys.WriteByte('{')
	for i := 0; keys.Len() < size; i++ {
		fmt.Fprintf(&keys, `"%x":1,`, i)
	}
	keysFlood := []byte(strings.TrimSuffix(keys.String(), ",") + "}")
	deepKeys := []byte(`{"a":{"b":` + string(keysFlood) + "}}")

	tests := []struct {
		name string
		lim  jsonlimit.Limits
		in   []byte
		want error
		off  int // -1 to skip
	}{
		{"open brackets", jsonlimit.Limits{}, fill("", "[", ""), jsonlimit.ErrDepth, 32},
		{"open braces", jsonlimit.Limits{}, fill("", `{"":`, ""), jsonlimit.ErrDepth, 32 * 4},
		{"mixed nesting", jsonlimit.Limits{}, fill("", `[{"a":`, ""), jsonlimit.ErrDepth, 16 * 6},
		{"keys flood depth 1", jsonlimit.Limits{}, keysFlood, jsonlimit.ErrKeys, -1},
		{"keys flood depth 3", jsonlimit.Limits{}, deepKeys, jsonlimit.ErrKeys, -1},
		{"same key flood", jsonlimit.Limits{}, fill("{", `"a":1,`, `"a":1}`), jsonlimit.ErrDuplicateKey, 7},
		{"giant array", jsonlimit.Limits{}, fill("[", "0,", "0]"), jsonlimit.ErrArray, 1 + 2*4096},
		{"giant array of arrays", jsonlimit.Limits{}, fill("[", "[],", "[]]"), jsonlimit.ErrArray, 1 + 3*4096},
		{"huge string", jsonlimit.Limits{MaxString: 4096}, fill(`"`, "x", `"`), jsonlimit.ErrString, 0},
		{"huge escaped string", jsonlimit.Limits{MaxString: 4096}, fill(`"`, `\u0000`, `"`), jsonlimit.ErrString, 0},
		{"huge key", jsonlimit.Limits{MaxString: 4096}, fill(`{"`, "x", `":1}`), jsonlimit.ErrString, 1},
		{"token storm", jsonlimit.Limits{}, fill("[", "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],", "[]]"), jsonlimit.ErrTokens, -1},
		{"object token storm", jsonlimit.Limits{}, fill(`{"a":[`, `{},`, `{}]}`), jsonlimit.ErrArray, -1},
		{"empty containers", jsonlimit.Limits{}, fill("[", "[[[[[[]]]]]],", "[]]"), jsonlimit.ErrTokens, -1},
		{"whitespace", jsonlimit.Limits{}, fill("", " \t\r\n", "1"), nil, 0},
		{"long number", jsonlimit.Limits{}, fill("1", "0", ""), nil, 0},
		{"unterminated string", jsonlimit.Limits{}, fill(`"`, "x", ""), jsonlimit.ErrSyntax, size},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if len(tt.in) < size-64 || len(tt.in) > size+64 {
				t.Fatalf("input is %d bytes, want about %d", len(tt.in), size)
			}
			e := wantErr(t, tt.lim.Check(tt.in), tt.want)
			if e != nil && tt.off >= 0 && e.Offset != tt.off {
				t.Errorf("Offset = %d, want %d (%v)", e.Offset, tt.off, e)
			}
		})
	}
}

func TestDuplicateKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want error
		off  int
	}{
		{"exact depth 1", `{"a":1,"a":2}`, jsonlimit.ErrDuplicateKey, 7},
		{"envelope", `{"id":1,"method":"x","params":{},"method":"y"}`, jsonlimit.ErrDuplicateKey, 33},
		{"ascii case depth 1", `{"id":1,"ID":2}`, jsonlimit.ErrDuplicateKey, 8},
		{"mixed case depth 1", `{"method":1,"mEtHoD":2}`, jsonlimit.ErrDuplicateKey, 12},
		{"escaped depth 1", `{"a":1,"\u0061":2}`, jsonlimit.ErrDuplicateKey, 7},
		{"escaped and case depth 1", `{"ID":1,"\u0069\u0064":2}`, jsonlimit.ErrDuplicateKey, 8},
		{"escaped slash", `{"a/b":1,"a\/b":2}`, jsonlimit.ErrDuplicateKey, 9},
		{"kelvin sign", `{"k":1,"\u212a":2}`, jsonlimit.ErrDuplicateKey, 7},
		{"kelvin sign raw", "{\"K\":1,\"\u212a\":2}", jsonlimit.ErrDuplicateKey, 7},
		{"long s", "{\"S\":1,\"\u017f\":2}", jsonlimit.ErrDuplicateKey, 7},
		{"non-ascii case", `{"é":1,"É":2}`, jsonlimit.ErrDuplicateKey, 8},
		{"surrogate pair vs raw", "{\"😀\":1,\"\\ud83d\\ude00\":2}", jsonlimit.ErrDuplicateKey, 10},
		{"lone surrogates both U+FFFD", `{"\ud800":1,"\udc00":2}`, jsonlimit.ErrDuplicateKey, 12},
		{"lone surrogate vs U+FFFD", "{\"\ufffd\":1,\"\\ud800\":2}", jsonlimit.ErrDuplicateKey, 9},
		{"empty keys", `{"":1,"":2}`, jsonlimit.ErrDuplicateKey, 6},
		{"not adjacent", `{"a":1,"b":2,"c":3,"A":4}`, jsonlimit.ErrDuplicateKey, 19},
		{"exact depth 2", `{"params":{"x":1,"x":2}}`, jsonlimit.ErrDuplicateKey, 17},
		{"case depth 2", `{"params":{"channel":1,"Channel":2}}`, jsonlimit.ErrDuplicateKey, 23},
		{"depth 2 under array", `[{"a":1,"A":2}]`, jsonlimit.ErrDuplicateKey, 8},
		{"second depth 2 object", `[{"a":1},{"a":1,"a":2}]`, jsonlimit.ErrDuplicateKey, 16},

		{"distinct", `{"a":1,"b":2,"ab":3,"ba":4,"":5,"a ":6}`, nil, 0},
		{"prefix", `{"a":1,"ab":2}`, nil, 0},
		{"prefix reversed", `{"ab":1,"a":2}`, nil, 0},
		{"same key in sibling objects", `[{"a":1},{"a":1}]`, nil, 0},
		{"same key at depths 1 and 2", `{"a":{"a":{"a":1}}}`, nil, 0},
		{"lone high and low after pair", `{"\ud83d\ude00":1,"\ud83d":2,"\ude00":3}`, jsonlimit.ErrDuplicateKey, 29},
		{"pair vs lone surrogate", `{"\ud83d\ude00":1,"\ud83d":2}`, nil, 0},
		{"ss and SS but not sharp s", `{"ss":1,"ß":2,"SS":3}`, jsonlimit.ErrDuplicateKey, 15},
		{"sigma forms", `{"σ":1,"ς":2}`, jsonlimit.ErrDuplicateKey, 8},
		{"depth 3 exact allowed", `{"params":{"data":{"x":1,"x":2}}}`, nil, 0},
		{"depth 3 case allowed", `{"params":{"data":{"x":1,"X":2}}}`, nil, 0},
		{"depth 3 under arrays allowed", `[[{"a":1,"a":2}]]`, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := wantErr(t, jsonlimit.Limits{}.Check([]byte(tt.in)), tt.want)
			if e != nil && e.Offset != tt.off {
				t.Errorf("Offset = %d, want %d (%v)", e.Offset, tt.off, e)
			}
		})
	}
}

// TestDuplicateKeysDifferential shows the parser differential that the
// duplicate check closes: encoding/json silently takes the last of two
// keys that fold together, so a validator that read the first would be
// fooled.
func TestDuplicateKeysDifferential(t *testing.T) {
	t.Parallel()
	in := []byte(`{"method":"subscribe","\u004detho\u0064":"publish"}`)
	var env struct{ Method string }
	if err := json.Unmarshal(in, &env); err != nil {
		t.Fatal(err)
	}
	if env.Method != "publish" {
		t.Fatalf("encoding/json chose %q; the test premise changed", env.Method)
	}
	wantErr(t, jsonlimit.Limits{}.Check(in), jsonlimit.ErrDuplicateKey)
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	err := jsonlimit.Limits{}.Check([]byte(`{"secret-token":tru}`))
	e := wantErr(t, err, jsonlimit.ErrSyntax)
	if e.Offset != 16 {
		t.Errorf("Offset = %d, want 16", e.Offset)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "jsonlimit: invalid JSON") || !strings.HasSuffix(msg, " at offset 16") {
		t.Errorf("message = %q", msg)
	}
	if strings.Contains(msg, "secret") || strings.Contains(msg, "tru") {
		t.Errorf("message %q quotes the input", msg)
	}
	if got := (&jsonlimit.Error{Err: jsonlimit.ErrDepth, Offset: 7}).Error(); got != "jsonlimit: nesting too deep at offset 7" {
		t.Errorf("message = %q", got)
	}
	if got := errors.Unwrap(err); got != jsonlimit.ErrSyntax {
		t.Errorf("Unwrap = %v", got)
	}
	// A truncated document is reported at its end.
	e = wantErr(t, jsonlimit.Limits{}.Check([]byte(`[1,`)), jsonlimit.ErrSyntax)
	if e.Offset != 3 {
		t.Errorf("Offset = %d, want 3", e.Offset)
	}
}

// worstAccepted returns a frame of about 60 KiB that the default limits
// accept but that exercises every slow path: full-width envelope objects
// with escaped, case-varied keys, maximum nesting, escapes and non-ASCII
// text in strings.
func worstAccepted() []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := range 64 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"\u004B%02d":{`, i) // "K00" ... escaped
		for j := range 30 {
			if j > 0 {
				b.WriteByte(',')
			}
			switch j {
			case 0:
				fmt.Fprintf(&b, `"deep":%s`, nest(30, `"\ud83d\ude00é"`))
			default:
				fmt.Fprintf(&b, `"Key\u00e9_%02d":"a\"\\\n日%d"`, j, j)
			}
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func TestZeroAllocs(t *testing.T) {
	big := worstAccepted()
	if len(big) < 50<<10 || len(big) > 64<<10 {
		t.Fatalf("worst-case frame is %d bytes", len(big))
	}
	if err := (jsonlimit.Limits{}).Check(big); err != nil {
		t.Fatalf("worst-case frame refused: %v", err)
	}
	if !json.Valid(big) {
		t.Fatal("worst-case frame is not valid JSON")
	}
	cases := []struct {
		name string
		in   []byte
		max  float64
	}{
		{"accepted 60 KiB worst case", big, 0},
		{"accepted event", []byte(eventFrame), 0},
		// A refusal allocates the *Error it returns, and nothing else.
		{"refused 60 KiB brackets", []byte(strings.Repeat("[", 60<<10)), 1},
		{"refused 60 KiB keys", []byte(object(5000, "1")), 1},
		{"refused 60 KiB tokens", []byte(tokens(30000)), 1},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(50, func() { _ = jsonlimit.Limits{}.Check(c.in) }); n > c.max {
			t.Errorf("%s: %v allocations per Check, want <= %v", c.name, n, c.max)
		}
	}
}
