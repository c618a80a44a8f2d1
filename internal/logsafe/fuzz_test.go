package logsafe_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/livegate/livegate/internal/logsafe"
)

const ellipsis = "…"

// forbidden reports whether r may not appear in a sanitised string:
// control characters (C0, DEL, C1, including ESC, CR, LF and NEL), the
// line and paragraph separators, and the bidi controls (marks,
// embeddings, overrides, isolates). It is written from the Unicode
// properties, independently of the package's own list.
func forbidden(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.In(r, unicode.Zl, unicode.Zp) || unicode.Is(unicode.Bidi_Control, r)
}

// sanitised is the string Truncate makes of s when nothing is cut, per
// the package documentation: ESC dropped, every other forbidden rune and
// every invalid byte replaced by U+FFFD. The package also replaces U+FEFF
// (zero-width no-break space, a stray byte order mark).
func sanitised(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == 0x1b:
		case forbidden(r) || r == utf8.RuneError || r == '\ufeff':
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FuzzSanitize checks String and Truncate on any input and limit against
// an independent model (forbidden runes from the Unicode properties, the
// documented replacement rules), going beyond FuzzTruncate's invariants:
// the output is valid UTF-8 with no forbidden rune, so it is one log line
// that cannot hide or reorder text; it is exactly the sanitised input, or
// a prefix of it of at most max bytes followed by "…", cut only where the
// next rune would not fit whole, never before (so String("ab" + 100 ×
// "日"), whose 85th "日" would end at byte 257, keeps 84 of them: 254
// bytes before the "…"); clean inputs within the limit come back
// unchanged; String is Truncate at MaxLen; zero and negative limits
// behave as 0; and sanitising the output again changes nothing.
func FuzzSanitize(f *testing.F) {
	f.Add("alice", 256)
	f.Add("bob\nlevel=ERROR msg=forged", 256)
	f.Add("\x1b[31mred\x1b[0m\r\n", 5)
	f.Add("abc\u202edcba\u2066x\u2069\u200f\u061c", 256)
	f.Add("a\u2028b\u2029c\u0085d\ufeff", 3)
	f.Add("a\xffb\xc3(\xed\xa0\x80", 4)
	f.Add("zoë 日本 \U0001F600", 7)
	f.Add("ab"+strings.Repeat("日", 100), 256)
	f.Add(strings.Repeat("\x00", 300), 256)
	f.Add(strings.Repeat("\xff", 300), 256)
	f.Add(strings.Repeat("x\n", 1000), 256)
	f.Add("abc\x1b", 3)
	f.Add("…already…", 0)
	f.Add("x", -1)
	f.Add("0", -14) // once panicked in strings.Builder.Grow
	f.Fuzz(func(t *testing.T, s string, n int) {
		n %= 1 << 16
		check(t, s, n, logsafe.Truncate(s, n))
		check(t, s, logsafe.MaxLen, logsafe.String(s))
		if got, want := logsafe.String(s), logsafe.Truncate(s, logsafe.MaxLen); got != want {
			t.Fatalf("String(%q) = %q, Truncate(s, MaxLen) = %q", s, got, want)
		}
	})
}

func check(t *testing.T, s string, n int, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("Truncate(%q, %d) = %q: invalid UTF-8", s, n, out)
	}
	for _, r := range out {
		if forbidden(r) {
			t.Fatalf("Truncate(%q, %d) = %q: contains %U", s, n, out, r)
		}
	}
	if strings.ContainsAny(out, "\n\r\x1b") {
		t.Fatalf("Truncate(%q, %d) = %q: line break or ESC", s, n, out)
	}
	limit := max(n, 0)
	full := sanitised(s)
	uncut := out == full && len(full) <= limit
	prefix, marked := strings.CutSuffix(out, ellipsis)
	cut := false
	if marked && len(prefix) < len(full) && strings.HasPrefix(full, prefix) && len(prefix) <= limit {
		// prefix is valid UTF-8, so it ends between two runes of full.
		_, next := utf8.DecodeRuneInString(full[len(prefix):])
		cut = len(prefix)+next > limit
	}
	if !uncut && !cut {
		t.Fatalf("Truncate(%q, %d) = %q (%d bytes): neither the sanitised %q within the limit nor a prefix of it cut where the next rune would pass the limit", s, n, out, len(out), full)
	}
	if len(out) > limit+len(ellipsis) {
		t.Fatalf("Truncate(%q, %d) = %q: %d bytes, more than the limit and the marker", s, n, out, len(out))
	}
	if len(full) <= limit && out != full {
		t.Fatalf("Truncate(%q, %d) = %q, want %q uncut", s, n, out, full)
	}
	if isClean(s) && len(s) <= n && out != s {
		t.Fatalf("Truncate(%q, %d) = %q: clean input changed", s, n, out)
	}
	if again := logsafe.Truncate(out, len(out)); again != out {
		t.Fatalf("Truncate(%q) = %q, sanitising it again gives %q", s, out, again)
	}
}

// isClean reports whether s is printable ASCII.
func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
