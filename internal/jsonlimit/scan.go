package jsonlimit

import (
	"encoding/binary"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// checker holds the state of one Check call. It lives on the caller's
// stack: all of its storage is fixed-size.
type checker struct {
	data    []byte
	lim     Limits // normalised
	envKeys int    // member limit at depth <= DedupDepth
	depth   int
	tokens  int
	isObj   [MaxDepthCap + 1]bool
	count   [MaxDepthCap + 1]int32 // members or elements so far, per depth

	// The keys so far of the open object at each depth 1..DedupDepth:
	// the offset of the byte after the opening quote, and a hash of the
	// decoded, case-folded key.
	keyStart [DedupDepth][DedupMaxKeys]int
	keyHash  [DedupDepth][DedupMaxKeys]uint32
}

func fail(err error, off int) error { return &Error{Err: err, Offset: off} }

func syntax(off int, reason string) error {
	return &Error{Err: ErrSyntax, Offset: off, reason: reason}
}

// skipSpace returns the offset of the first non-whitespace byte at or after i.
func skipSpace(data []byte, i int) int {
	for ; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return i
		}
	}
	return i
}

// run checks c.data. It is a loop over values with an explicit stack of
// open containers, so hostile nesting cannot grow the goroutine stack.
func (c *checker) run() error {
	data := c.data
	n := len(data)
	i := 0
	var err error
	for {
		// A value starts at or after i.
		i = skipSpace(data, i)
		if i >= n {
			return syntax(n, "unexpected end of input")
		}
		c.tokens++
		if c.tokens > c.lim.MaxTokens {
			return fail(ErrTokens, i)
		}
		switch b := data[i]; b {
		case '{', '[':
			if c.depth >= c.lim.MaxDepth {
				return fail(ErrDepth, i)
			}
			c.depth++
			d := c.depth
			c.isObj[d] = b == '{'
			c.count[d] = 0
			i = skipSpace(data, i+1)
			if i < n && data[i] == b+2 { // '}' or ']'
				c.depth--
				i++
				break
			}
			if b == '{' {
				if i, err = c.key(i); err != nil {
					return err
				}
			} else {
				c.count[d] = 1 // MaxArray >= 1
			}
			continue
		case '"':
			if i, err = c.str(i); err != nil {
				return err
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if i, err = number(data, i); err != nil {
				return err
			}
		case 't':
			if i, err = literal(data, i, "true"); err != nil {
				return err
			}
		case 'f':
			if i, err = literal(data, i, "false"); err != nil {
				return err
			}
		case 'n':
			if i, err = literal(data, i, "null"); err != nil {
				return err
			}
		default:
			return syntax(i, "invalid character looking for a value")
		}

		// A value ended at i: close containers until a ',' asks for the
		// next member or element.
		for {
			i = skipSpace(data, i)
			if c.depth == 0 {
				if i != n {
					return syntax(i, "invalid character after top-level value")
				}
				return nil
			}
			if i >= n {
				return syntax(n, "unexpected end of input")
			}
			d := c.depth
			b := data[i]
			if b == ',' {
				i++
				if c.isObj[d] {
					if i, err = c.key(i); err != nil {
						return err
					}
				} else {
					c.count[d]++
					if int(c.count[d]) > c.lim.MaxArray {
						return fail(ErrArray, skipSpace(data, i))
					}
				}
				break
			}
			if c.isObj[d] && b == '}' || !c.isObj[d] && b == ']' {
				c.depth--
				i++
				continue
			}
			if c.isObj[d] {
				return syntax(i, "expected ',' or '}' after object member")
			}
			return syntax(i, "expected ',' or ']' after array element")
		}
	}
}

// key checks an object key and the ':' after it, starting at or after i,
// and returns the offset after the ':'.
func (c *checker) key(i int) (int, error) {
	data := c.data
	i = skipSpace(data, i)
	if i >= len(data) {
		return 0, syntax(i, "unexpected end of input")
	}
	if data[i] != '"' {
		return 0, syntax(i, "expected string for object key")
	}
	d := c.depth
	c.count[d]++
	limit := c.lim.MaxKeys
	if d <= DedupDepth {
		limit = c.envKeys
	}
	if int(c.count[d]) > limit {
		return 0, fail(ErrKeys, i)
	}
	c.tokens++
	if c.tokens > c.lim.MaxTokens {
		return 0, fail(ErrTokens, i)
	}
	var err error
	if d <= DedupDepth {
		i, err = c.uniqueKey(i)
	} else {
		i, err = c.str(i)
	}
	if err != nil {
		return 0, err
	}
	i = skipSpace(data, i)
	if i >= len(data) {
		return 0, syntax(i, "unexpected end of input")
	}
	if data[i] != ':' {
		return 0, syntax(i, "expected ':' after object key")
	}
	return i + 1, nil
}

// Masks for the word-at-a-time string scan.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether none of the 8 bytes of w needs attention in a
// string: all are ASCII, not control characters, not '"' and not '\\'.
// The classic "has zero byte" tests never miss a match; a false alarm
// only sends the scan to the byte loop.
func plainWord(w uint64) bool {
	q := w ^ '"'*ones
	s := w ^ '\\'*ones
	t := (w - 0x20*ones) &^ w // a byte < 0x20
	t |= (q - ones) &^ q      // a byte == '"'
	t |= (s - ones) &^ s      // a byte == '\\'
	return (t|w)&highs == 0   // w: a byte >= 0x80
}

// plainByte is plainWord for one byte.
func plainByte(b byte) bool {
	return b >= 0x20 && b < utf8.RuneSelf && b != '"' && b != '\\'
}

// str checks the string whose opening quote is at i and returns the offset
// after its closing quote.
func (c *checker) str(i int) (int, error) {
	data := c.data
	start := i
	i++
	// lim is the latest offset of the closing quote.
	lim := len(data)
	if c.lim.MaxString < lim-i {
		lim = i + c.lim.MaxString
	}
	for {
		for i+8 <= lim && plainWord(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		for i < lim && plainByte(data[i]) {
			i++
		}
		if i >= len(data) {
			return 0, syntax(len(data), "unexpected end of input in string")
		}
		if data[i] == '"' {
			if i > lim {
				return 0, fail(ErrString, start)
			}
			return i + 1, nil
		}
		if i >= lim {
			return 0, fail(ErrString, start)
		}
		_, size, reason := decodeRune(data, i)
		if size == 0 {
			return 0, syntax(i, reason)
		}
		i += size
	}
}

// FNV-1a parameters.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

// uniqueKey checks the key whose opening quote is at i, like str, and
// refuses it if it equals an earlier key of the same object at depth
// <= DedupDepth. It returns the offset after the closing quote.
func (c *checker) uniqueKey(i int) (int, error) {
	data := c.data
	start := i
	i++
	h := uint32(fnvOffset)
	for {
		if i >= len(data) {
			return 0, syntax(len(data), "unexpected end of input in string")
		}
		if b := data[i]; plainByte(b) {
			if i-start-1 >= c.lim.MaxString {
				return 0, fail(ErrString, start)
			}
			if 'a' <= b && b <= 'z' {
				b -= 'a' - 'A'
			}
			h = (h ^ uint32(b)) * fnvPrime
			i++
			continue
		}
		if data[i] == '"' {
			if i-start-1 > c.lim.MaxString {
				return 0, fail(ErrString, start)
			}
			break
		}
		if i-start-1 >= c.lim.MaxString {
			return 0, fail(ErrString, start)
		}
		r, size, reason := decodeRune(data, i)
		if size == 0 {
			return 0, syntax(i, reason)
		}
		i += size
		h = (h ^ uint32(foldRune(r))) * fnvPrime // #nosec G115 -- a decoded rune is in [0, 0x10FFFF]
	}
	starts, hashes := &c.keyStart[c.depth-1], &c.keyHash[c.depth-1]
	k := int(c.count[c.depth]) - 1 // this key's index; k < DedupMaxKeys
	for j, hj := range hashes[:k] {
		if hj == h && equalKeys(data, starts[j], start+1) {
			return 0, fail(ErrDuplicateKey, start)
		}
	}
	starts[k], hashes[k] = start+1, h
	return i + 1, nil
}

// equalKeys reports whether the already-checked keys whose contents start
// at a and b decode to the same string under case folding.
func equalKeys(data []byte, a, b int) bool {
	for {
		ea, eb := data[a] == '"', data[b] == '"'
		if ea || eb {
			return ea && eb
		}
		ra, na, _ := decodeRune(data, a)
		rb, nb, _ := decodeRune(data, b)
		if ra != rb && foldRune(ra) != foldRune(rb) {
			return false
		}
		a += na
		b += nb
	}
}

// foldRune maps r to a canonical member of its case-folding orbit, exactly
// as encoding/json folds names: ASCII letters to upper case, other runes
// to the smallest rune of their orbit. Two runes fold to the same value
// iff bytes.EqualFold considers them equal.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// decodeRune decodes one character of string content at data[i], which is
// not the closing quote. It returns the rune as encoding/json would decode
// it and the number of input bytes used, or size 0 and a reason if the
// input is invalid there.
func decodeRune(data []byte, i int) (r rune, size int, reason string) {
	b := data[i]
	switch {
	case b < 0x20:
		return 0, 0, "control character in string"
	case b >= utf8.RuneSelf:
		r, size = utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, 0, "invalid UTF-8 in string"
		}
		return r, size, ""
	case b != '\\':
		return rune(b), 1, ""
	}
	if i+1 >= len(data) {
		return 0, 0, "unexpected end of input in string"
	}
	switch data[i+1] {
	case '"', '\\', '/':
		return rune(data[i+1]), 2, ""
	case 'b':
		return '\b', 2, ""
	case 'f':
		return '\f', 2, ""
	case 'n':
		return '\n', 2, ""
	case 'r':
		return '\r', 2, ""
	case 't':
		return '\t', 2, ""
	case 'u':
		r = hex4(data, i+2)
		if r < 0 {
			return 0, 0, "invalid \\u escape in string"
		}
		if utf16.IsSurrogate(r) {
			// A valid pair is one character; anything else leaves a
			// lone surrogate, which RFC 8259 allows and encoding/json
			// decodes to U+FFFD.
			if i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
				if dec := utf16.DecodeRune(r, hex4(data, i+8)); dec != unicode.ReplacementChar {
					return dec, 12, ""
				}
			}
			return unicode.ReplacementChar, 6, ""
		}
		return r, 6, ""
	}
	return 0, 0, "invalid escape in string"
}

// hex4 decodes the four hex digits at data[i:], or returns -1.
func hex4(data []byte, i int) rune {
	if i+4 > len(data) {
		return -1
	}
	var r rune
	for _, b := range data[i : i+4] {
		switch {
		case '0' <= b && b <= '9':
			b -= '0'
		case 'a' <= b && b <= 'f':
			b -= 'a' - 10
		case 'A' <= b && b <= 'F':
			b -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(b)
	}
	return r
}

// number checks the number starting at i and returns the offset after it.
// What follows is checked by the caller.
func number(data []byte, i int) (int, error) {
	n := len(data)
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= n:
		return 0, syntax(i, "unexpected end of input in number")
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return 0, syntax(i, "invalid character in number")
	}
	if i < n && data[i] == '.' {
		i++
		if i >= n || !isDigit(data[i]) {
			return 0, syntax(i, "expected digit after decimal point")
		}
		i = digits(data, i+1)
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n || !isDigit(data[i]) {
			return 0, syntax(i, "expected digit in exponent")
		}
		i = digits(data, i+1)
	}
	return i, nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func digits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

// literal checks that want is at data[i:] and returns the offset after it.
func literal(data []byte, i int, want string) (int, error) {
	if len(data)-i < len(want) || string(data[i:i+len(want)]) != want {
		return 0, syntax(i, "invalid literal")
	}
	return i + len(want), nil
}
