package jsonlimit

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// TestFoldRuneMatchesEqualFold checks every rune: folding is constant on
// each case-folding orbit, and agrees with bytes.EqualFold, which is what
// encoding/json uses to match names.
func TestFoldRuneMatchesEqualFold(t *testing.T) {
	t.Parallel()
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		f := foldRune(r)
		if got := foldRune(unicode.SimpleFold(r)); got != f {
			t.Fatalf("foldRune(SimpleFold(%U)) = %U, want %U", r, got, f)
		}
		if !bytes.EqualFold([]byte(string(r)), []byte(string(f))) {
			t.Fatalf("EqualFold(%U, foldRune = %U) is false", r, f)
		}
	}
}

// TestPlainWord checks the word-at-a-time scan against the byte test.
func TestPlainWord(t *testing.T) {
	t.Parallel()
	base := []byte("abcdefgh")
	for pos := range 8 {
		for b := range 256 {
			w := bytes.Clone(base)
			w[pos] = byte(b)
			if got, want := plainWord(binary.LittleEndian.Uint64(w)), plainByte(byte(b)); got != want {
				t.Fatalf("plainWord(%q) = %v, want %v", w, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var w [8]byte
	for range 1 << 20 {
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		want := true
		for _, b := range w {
			want = want && plainByte(b)
		}
		if got := plainWord(binary.LittleEndian.Uint64(w[:])); got != want {
			t.Fatalf("plainWord(%q) = %v, want %v", w, got, want)
		}
	}
}

func TestCheckerFitsOnStack(t *testing.T) {
	t.Parallel()
	// Check's state is a fixed-size local; keep it small enough that
	// zeroing it is cheap next to a 200-byte frame.
	if n := int(unsafe.Sizeof(checker{})); n > 4096 {
		t.Errorf("checker is %d bytes, want <= 4096", n)
	}
}
