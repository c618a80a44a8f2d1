package ops

import "testing"

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := newID()
		if !validID(id) {
			t.Fatalf("newID() = %q, not a canonical UUIDv4", id)
		}
		if seen[id] {
			t.Fatalf("newID() repeated %q", id)
		}
		seen[id] = true
		if got := idFromChannel(Channel(id)); got != id {
			t.Fatalf("idFromChannel(Channel(%q)) = %q", id, got)
		}
	}
	for _, bad := range []string{
		"", "op", "00000000-0000-0000-0000-000000000000", // version 0
		"00000000-0000-4000-c000-000000000000",  // variant 110
		"00000000-0000-4000-8000-00000000000",   // short
		"00000000-0000-4000-8000-0000000000000", // long
		"0000000000000-4000-8000-000000000000",  // dash moved
		"AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA",  // upper case
		"00000000-0000-4000-8000-00000000000g",
	} {
		if validID(bad) {
			t.Errorf("validID(%q) = true", bad)
		}
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééééé", 10, "ééé…"}, // never cuts a rune: 6 + 3 bytes
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		if got := clip(tc.in, tc.max); got != tc.want || len(got) > tc.max {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
