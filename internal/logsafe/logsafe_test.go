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
