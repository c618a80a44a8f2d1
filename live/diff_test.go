package live_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/protocol"
)

func TestDiffCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		old, cur   string
		start, end int
		insert     string
		changed    bool
	}{
		{"equal", "<p>1</p>", "<p>1</p>", 0, 0, "", false},
		{"empty to text", "", "abc", 0, 0, "abc", true},
		{"text to empty", "abc", "", 0, 3, "", true},
		{"counter", "<p>9</p>", "<p>10</p>", 3, 4, "10", true},
		{"append", "<li>a</li>", "<li>a</li><li>b</li>", 10, 10, "<li>b</li>", true},
		{"ambiguous repeat", "aa", "aaa", 2, 2, "a", true},
		// é is 2 bytes, 1 UTF-16 unit; offsets count units.
		{"after accent", "é1", "é2", 1, 2, "2", true},
		// 😀 is 4 bytes, 2 UTF-16 units (a surrogate pair).
		{"after emoji", "😀x", "😀y", 2, 3, "y", true},
		// Two emoji sharing their first three bytes: the splice must take
		// the whole character, never a partial UTF-8 sequence or half a
		// surrogate pair.
		{"emoji shared prefix", "a😀b", "a😁b", 1, 3, "😁", true},
		{"accent shared lead byte", "xéy", "xèy", 1, 2, "è", true},
		{"cjk", "世界", "世間", 1, 2, "間", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, changed := live.Diff(tt.old, tt.cur)
			if changed != tt.changed || p.Start != tt.start || p.End != tt.end || p.Insert != tt.insert {
				t.Fatalf("Diff(%q, %q) = %+v %v, want [%d,%d) %q %v", tt.old, tt.cur, p, changed, tt.start, tt.end, tt.insert, tt.changed)
			}
			got, err := live.Apply(tt.old, p)
			if err != nil || got != tt.cur {
				t.Fatalf("Apply = %q, %v; want %q", got, err, tt.cur)
			}
		})
	}
}

// applyUTF16 applies p the way a browser does: on the UTF-16 code units of
// a JavaScript string.
func applyUTF16(t *testing.T, old string, p protocol.Patch) string {
	t.Helper()
	u := utf16.Encode([]rune(old))
	if p.Start < 0 || p.End < p.Start || p.End > len(u) {
		t.Fatalf("patch %+v out of range for %d units", p, len(u))
	}
	for _, off := range []int{p.Start, p.End} {
		if off > 0 && off < len(u) && utf16.IsSurrogate(rune(u[off])) && u[off] >= 0xDC00 {
			t.Fatalf("patch %+v splits a surrogate pair", p)
		}
	}
	out := append(append(append([]uint16{}, u[:p.Start]...), utf16.Encode([]rune(p.Insert))...), u[p.End:]...)
	return string(utf16.Decode(out))
}

var alphabet = []string{"a", "b", "<", ">", "\"", "é", "è", "世", "界", "😀", "😁", "👍🏽", "\u2028", " "}

func randomString(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// mutate makes a random edit of s: insertions, deletions and replacements
// at rune boundaries, sometimes several.
func mutate(r *rand.Rand, s string) string {
	runes := []rune(s)
	for range 1 + r.IntN(3) {
		i := r.IntN(len(runes) + 1)
		j := min(len(runes), i+r.IntN(4))
		ins := []rune(randomString(r, r.IntN(4)))
		runes = append(append(append([]rune{}, runes[:i]...), ins...), runes[j:]...)
	}
	return string(runes)
}

// TestDiffProperty: for random pairs, applying the patch to the old
// string, both on UTF-8 (Apply) and on UTF-16 code units as the browser
// does, gives the new string; and the splice is minimal for one splice.
func TestDiffProperty(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		old := randomString(r, r.IntN(30))
		cur := old
		if r.IntN(10) > 0 {
			cur = mutate(r, old)
		}
		if r.IntN(5) == 0 {
			cur = randomString(r, r.IntN(30))
		}
		if r.IntN(3) == 0 {
			// Long shared head and tail, to exercise the word-wise scans.
			head := strings.Repeat("<li>row ok</li>", r.IntN(20)) + randomString(r, r.IntN(70))
			tail := randomString(r, r.IntN(70)) + strings.Repeat("<li>😀 é</li>", r.IntN(20))
			old, cur = head+old+tail, head+cur+tail
		}
		p, changed := live.Diff(old, cur)
		if changed != (old != cur) {
			t.Fatalf("Diff(%q, %q) changed = %v", old, cur, changed)
		}
		if !changed {
			continue
		}
		if got, err := live.Apply(old, p); err != nil || got != cur {
			t.Fatalf("Apply(%q, %+v) = %q, %v; want %q", old, p, got, err, cur)
		}
		if got := applyUTF16(t, old, p); got != cur {
			t.Fatalf("UTF-16 apply(%q, %+v) = %q; want %q", old, p, got, cur)
		}
		if !utf8.ValidString(p.Insert) {
			t.Fatalf("insert %q is not valid UTF-8", p.Insert)
		}
		// Minimality: the kept prefix and suffix cannot both grow by a
		// whole character.
		ou, cu := []rune(old), []rune(cur)
		pre := len([]rune(string(utf16.Decode(utf16.Encode(ou)[:p.Start]))))
		suf := len(ou) - len([]rune(string(utf16.Decode(utf16.Encode(ou)[:p.End]))))
		if pre < len(ou)-suf && pre < len(cu)-suf && ou[pre] == cu[pre] {
			t.Fatalf("Diff(%q, %q) = %+v: prefix not maximal", old, cur, p)
		}
	}
}

func TestApplyRejectsBadPatches(t *testing.T) {
	t.Parallel()
	for _, p := range []protocol.Patch{
		{Start: -1, End: 0}, {Start: 2, End: 1}, {Start: 0, End: 9},
		{Start: 1, End: 1}, // inside the surrogate pair of 😀
	} {
		if _, err := live.Apply("😀a", p); err == nil {
			t.Errorf("Apply(%+v) succeeded", p)
		}
	}
}

func TestDiffInvalidUTF8(t *testing.T) {
	t.Parallel()
	p, changed := live.Diff("a\xffb", "a\xffc")
	if !changed || p.Start != 2 || p.End != 3 || p.Insert != "c" {
		t.Fatalf("got %+v", p)
	}
}

func FuzzDiff(f *testing.F) {
	f.Add("<p>1</p>", "<p>2</p>")
	f.Add("a😀b", "a😁b")
	f.Add("", "世界")
	f.Fuzz(func(t *testing.T, old, cur string) {
		old, cur = strings.ToValidUTF8(old, "\uFFFD"), strings.ToValidUTF8(cur, "\uFFFD")
		p, changed := live.Diff(old, cur)
		if changed != (old != cur) {
			t.Fatalf("changed = %v", changed)
		}
		if !changed {
			return
		}
		if got := applyUTF16(t, old, p); got != cur {
			t.Fatalf("apply = %q, want %q", got, cur)
		}
	})
}
