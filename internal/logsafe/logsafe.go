// Package logsafe makes user-controlled strings safe to put in logs: control
// characters, ANSI escapes, line and paragraph separators and bidi overrides
// are replaced, and the result is truncated, so a value can never forge a
// log line or hide text.
package logsafe

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the default maximum length in bytes of a sanitised string,
// before the truncation marker.
const MaxLen = 256

// String returns s sanitised and truncated to MaxLen bytes.
func String(s string) string { return Truncate(s, MaxLen) }

// Truncate returns s sanitised and cut to at most max bytes of content;
// a cut string ends in "…".
func Truncate(s string, max int) string {
	if clean(s) && len(s) <= max {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), max) + 4)
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			return b.String()
		}
		switch {
		case r == utf8.RuneError:
			b.WriteRune('\uFFFD')
		case r == 0x1b:
			// drop ESC; the rest of an ANSI sequence is then inert text
		case unsafeRune(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c >= 0x80 {
			return false
		}
	}
	return true
}

func unsafeRune(r rune) bool {
	if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
		return true
	}
	switch r {
	case '\u2028', '\u2029', // line and paragraph separators
		'\u200e', '\u200f', '\u061c', // marks
		'\u202a', '\u202b', '\u202c', '\u202d', '\u202e', // embeddings and overrides
		'\u2066', '\u2067', '\u2068', '\u2069', // isolates
		'\ufeff':
		return true
	}
	return unicode.Is(unicode.Cc, r)
}
