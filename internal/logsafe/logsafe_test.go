package logsafe

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "alice", "alice"},
		{"newline forgery", "bob\nlevel=ERROR msg=forged", "bob\uFFFDlevel=ERROR msg=forged"},
		{"carriage return", "a\rb", "a\uFFFDb"},
		{"ansi", "\x1b[31mred\x1b[0m", "[31mred[0m"},
		{"bidi override", "abc\u202edcba", "abc\uFFFDdcba"},
		{"line separator", "a\u2028b", "a\uFFFDb"},
		{"nul", "a\x00b", "a\uFFFDb"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
		{"unicode kept", "zoë 日本", "zoë 日本"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x\n", 1<<19)
	got := String(big)
	if len(got) > MaxLen+len("…") {
		t.Fatalf("len = %d, want <= %d", len(got), MaxLen+3)
	}
	if strings.ContainsAny(got, "\n\r") {
		t.Fatal("newline survived")
	}
	if !strings.HasSuffix(got, "…") {
		t.Fatal("no truncation marker")
	}
}

// TestTruncateLimit: the content before "…" never exceeds the limit, even
// when the rune at the limit is multi-byte or becomes a 3-byte U+FFFD;
// the cut falls where the next rune would not fit whole.
func TestTruncateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"multi-byte rune across the limit", "ab" + strings.Repeat("日", 100), MaxLen, "ab" + strings.Repeat("日", 84) + "…"},
		{"replacements across the limit", strings.Repeat("\x00", 300), MaxLen, strings.Repeat("\uFFFD", 85) + "…"},
		{"invalid bytes across the limit", strings.Repeat("\xff", 300), MaxLen, strings.Repeat("\uFFFD", 85) + "…"},
		{"rune ends exactly at the limit", "ab日c", 5, "ab日…"},
		{"rune would end one past the limit", "ab日", 4, "ab…"},
		{"replacement would pass the limit", "ab\ncd", 4, "ab…"},
		{"emoji at the limit", "zoë 日本 \U0001F600", 13, "zoë 日本 …"},
		{"fits exactly", "ab日", 5, "ab日"},
		{"ESC takes no room", "abc\x1b", 3, "abc"},
		{"zero limit", "日", 0, "…"},
		{"ascii at the limit", "abcdef", 3, "abc…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Truncate(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if content := strings.TrimSuffix(got, "…"); len(content) > tt.max {
				t.Errorf("Truncate(%q, %d): %d bytes of content", tt.in, tt.max, len(content))
			}
		})
	}
}

func TestStringIdempotent(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"plain", "zoë \uFFFD ok", "a\nb", strings.Repeat("é", 300), strings.Repeat("x", 300), "\x1b[1m\u202e" + strings.Repeat("日", 200),
	} {
		once := String(in)
		if twice := String(once); twice != once {
			t.Errorf("String(String(%.20q)) = %.40q, want %.40q", in, twice, once)
		}
	}
}

func BenchmarkString(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"clean", "alice@example.com"},
		{"dirty", "bob\nlevel=ERROR msg=forged \x1b[31m"},
		{"1MiB", strings.Repeat("A", 1<<20)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				String(bc.in)
			}
		})
	}
}
