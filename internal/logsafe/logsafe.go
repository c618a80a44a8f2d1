// Package logsafe makes user-controlled strings safe to put in logs: control
// characters, ANSI escapes, line and paragraph separators and bidi overrides
// are replaced, and the result is truncated, so a value can never forge a
// log line or hide text. Handler applies this to every record of a
// slog.Logger, so no call site can forget it.
package logsafe

import (
	"strings"
	"unicode/utf8"
)

// MaxLen is the default maximum length in bytes of a sanitised string,
// before the truncation marker.
const MaxLen = 256

// String returns s sanitised and truncated to MaxLen bytes.
func String(s string) string { return Truncate(s, MaxLen) }

// Truncate returns s sanitised and cut to at most max bytes of content;
// a cut string ends in "…" (which is not counted), placed where the next
// character would not fit whole. A string that needs no change is
// returned as is, without allocating.
func Truncate(s string, max int) string {
	if max < 0 {
		max = 0
	}
	if len(s) <= max && safe(s) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), max) + len("…"))
	for i := 0; i < len(s); {
		room := max - b.Len()
		// Copy a run of printable ASCII at once, as much as fits.
		j, end := i, min(len(s), i+room)
		for j < end && s[j] >= 0x20 && s[j] < 0x7f {
			j++
		}
		if j > i {
			b.WriteString(s[i:j])
			i = j
			continue
		}
		// One rune: what it becomes, and the input bytes it takes.
		var out string
		size := 1
		switch c := s[i]; {
		case c >= 0x20 && c < 0x7f:
			out = s[i : i+1] // printable, but no room left
		case c == 0x1b:
			// drop ESC; the rest of an ANSI sequence is then inert text
		case c < utf8.RuneSelf:
			out = "\uFFFD" // other C0 controls and DEL
		default:
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
				out = "\uFFFD"
			} else {
				out = s[i : i+size]
			}
		}
		// Never split a rune nor exceed max: cut before one that does
		// not fit whole.
		if len(out) > room {
			b.WriteString("…")
			return b.String()
		}
		b.WriteString(out)
		i += size
	}
	return b.String()
}

// safe reports whether s is valid UTF-8 without any rune Truncate replaces
// or drops.
func safe(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			return false
		}
		i += size
	}
	return true
}

// unsafeRune reports whether r is a control character (C0, DEL, C1: all
// of Unicode category Cc) or a line separator, directional mark or bidi
// override that could break a line or disguise text.
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
	return false
}
