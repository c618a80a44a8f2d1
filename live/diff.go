package live

import (
	"bytes"
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/livegate/livegate/protocol"
)

// diff finds the single splice turning old into cur: old[start:oldEnd] is
// replaced by cur[start:curEnd]. It keeps the longest common prefix, then
// the longest common suffix of what remains, and moves both cut points back
// to rune boundaries, so that the splice never splits a UTF-8 sequence
// (and so never a UTF-16 surrogate pair). Both inputs must be valid UTF-8.
func diff(old, cur []byte) (start, oldEnd, curEnd int) {
	n := min(len(old), len(cur))
	p := 0
	for p+64 <= n && bytes.Equal(old[p:p+64], cur[p:p+64]) { // vectorised
		p += 64
	}
	for p < n && old[p] == cur[p] {
		p++
	}
	for p > 0 && ((p < len(old) && !utf8.RuneStart(old[p])) || (p < len(cur) && !utf8.RuneStart(cur[p]))) {
		p--
	}
	s := 0
	for s+64 <= n-p && bytes.Equal(old[len(old)-s-64:len(old)-s], cur[len(cur)-s-64:len(cur)-s]) {
		s += 64
	}
	for s < n-p && old[len(old)-1-s] == cur[len(cur)-1-s] {
		s++
	}
	for s > 0 && (!utf8.RuneStart(old[len(old)-s]) || !utf8.RuneStart(cur[len(cur)-s])) {
		s--
	}
	return p, len(old) - s, len(cur) - s
}

// utf16Len returns the length of valid UTF-8 b in UTF-16 code units: one
// per rune, two for runes outside the Basic Multilingual Plane (4-byte
// sequences).
func utf16Len(b []byte) int {
	n := 0
	for len(b) >= 8 && binary.LittleEndian.Uint64(b)&0x8080808080808080 == 0 { // ASCII
		n += 8
		b = b[8:]
	}
	for _, c := range b {
		if c&0xC0 != 0x80 { // not a continuation byte: a rune starts
			n++
			if c >= 0xF0 {
				n++
			}
		}
	}
	return n
}

// makePatch computes the patch from old to cur, or reports that they are
// equal.
func makePatch(old, cur []byte) (p protocol.Patch, changed bool) {
	start, oldEnd, curEnd := diff(old, cur)
	if start == oldEnd && start == curEnd {
		return protocol.Patch{}, false
	}
	s16 := utf16Len(old[:start])
	return protocol.Patch{
		Start:  s16,
		End:    s16 + utf16Len(old[start:oldEnd]),
		Insert: string(cur[start:curEnd]),
	}, true
}

// Diff returns the patch (Start, End and Insert; Ref and Version are left
// zero) that turns the HTML old into cur, with offsets in UTF-16 code units,
// and false when they are equal. Invalid UTF-8 in either is first replaced
// by U+FFFD, as the wire encoding would.
func Diff(old, cur string) (protocol.Patch, bool) {
	return makePatch(validUTF8(old), validUTF8(cur))
}

func validUTF8(s string) []byte {
	b := []byte(s)
	if !utf8.Valid(b) {
		b = []byte(string([]rune(s))) // each invalid byte becomes U+FFFD
	}
	return b
}

// ErrBadPatch is returned by Apply for a patch whose range does not fit
// the HTML or splits a surrogate pair.
var ErrBadPatch = errors.New("live: patch does not apply")

// Apply returns html with p applied: the UTF-16 code units [p.Start, p.End)
// replaced by p.Insert. It is what a client does with each patch, for Go
// clients and tests.
func Apply(html string, p protocol.Patch) (string, error) {
	if p.Start < 0 || p.End < p.Start {
		return "", ErrBadPatch
	}
	start, ok := byteOffset(html, 0, 0, p.Start)
	if !ok {
		return "", ErrBadPatch
	}
	end, ok := byteOffset(html, start, p.Start, p.End)
	if !ok {
		return "", ErrBadPatch
	}
	return html[:start] + p.Insert + html[end:], nil
}

// byteOffset converts the UTF-16 offset want to a byte offset of s,
// starting the walk at byte from, which is at UTF-16 offset at.
func byteOffset(s string, from, at, want int) (int, bool) {
	i := from
	for at < want {
		if i >= len(s) {
			return 0, false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		at++
		if r > 0xFFFF {
			at++
		}
	}
	return i, at == want
}
