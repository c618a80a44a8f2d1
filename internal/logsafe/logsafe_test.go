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
