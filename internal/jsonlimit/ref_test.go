package jsonlimit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/livegate/livegate/internal/jsonlimit"
)

// refStats measures a document with encoding/json's tokenizer, as an
// independent reference for the limits Check enforces.
type refStats struct {
	depth   int  // deepest nesting
	keys    int  // most members of an object deeper than DedupDepth
	envKeys int  // most members of an object at depth <= DedupDepth
	array   int  // most elements of an array
	str     int  // longest string or key, in raw bytes between the quotes
	tokens  int  // values plus keys
	dup     bool // fold-equal keys in one object at depth <= DedupDepth
}

type refFrame struct {
	obj       bool
	expectKey bool
	n         int
	keys      []string
}

// measure returns the statistics of data, which must be valid JSON.
func measure(data []byte) (refStats, error) {
	var s refStats
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*refFrame
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return s, err
		}
		end := dec.InputOffset()
		var top *refFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if str, ok := tok.(string); ok {
			// The raw string is the first '"' after the previous token
			// up to the byte before end.
			open := prev + int64(bytes.IndexByte(data[prev:], '"'))
			s.str = max(s.str, int(end-open-2))
			if top != nil && top.obj && top.expectKey {
				s.tokens++
				top.expectKey = false
				top.n++
				d := len(stack)
				if d <= jsonlimit.DedupDepth {
					s.envKeys = max(s.envKeys, top.n)
					for _, k := range top.keys {
						if strings.EqualFold(k, str) {
							s.dup = true
						}
					}
					top.keys = append(top.keys, str)
				} else {
					s.keys = max(s.keys, top.n)
				}
				prev = end
				continue
			}
		}
		prev = end
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		// A value.
		s.tokens++
		if top != nil {
			if top.obj {
				top.expectKey = true
			} else {
				top.n++
				s.array = max(s.array, top.n)
			}
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &refFrame{obj: d == '{', expectKey: d == '{'})
			s.depth = max(s.depth, len(stack))
		}
	}
}

// violations returns the errors Check may report for a document with
// statistics s under limits l (already normalised by the caller).
func (s refStats) violations(l jsonlimit.Limits) []error {
	var errs []error
	if s.depth > l.MaxDepth {
		errs = append(errs, jsonlimit.ErrDepth)
	}
	if s.keys > l.MaxKeys || s.envKeys > min(l.MaxKeys, jsonlimit.DedupMaxKeys) {
		errs = append(errs, jsonlimit.ErrKeys)
	}
	if s.array > l.MaxArray {
		errs = append(errs, jsonlimit.ErrArray)
	}
	if s.str > l.MaxString {
		errs = append(errs, jsonlimit.ErrString)
	}
	if s.tokens > l.MaxTokens {
		errs = append(errs, jsonlimit.ErrTokens)
	}
	if s.dup {
		errs = append(errs, jsonlimit.ErrDuplicateKey)
	}
	return errs
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// gen generates random documents. Keys include case and escape variants
// that encoding/json treats as the same field name.
type gen struct {
	r                        *rand.Rand
	unique                   int
	keys, strs, nums, spaces []string
	mut                      []byte
}

func newGen(seed uint64) *gen {
	return &gen{
		r: rand.New(rand.NewPCG(seed, 1)),
		keys: []string{
			`a`, `A`, `\u0061`, `\u0041`, `b`, `id`, `ID`, `Id`, `\u0069d`, `method`, `Method`,
			`params`, `k`, `K`, `\u212a`, "\u212a", `s`, `S`, "\u017f", `\u017F`, `é`, `É`, `\u00e9`,
			`\u00C9`, `\ud800`, `\udc00`, `\ufffd`, "\ufffd", `\ud83d\ude00`, "😀", `a\"`, `a\\`,
			`\/`, `/`, ``, ` `, `\t`, "\u2028", `ß`, `ẞ`, `σ`, `Σ`, `ς`,
		},
		strs: []string{
			``, `x`, `hello world`, `\n`, `\"`, `\\`, `\/`, `\b\f\n\r\t`, `\u0000`, `\u001F`,
			`\u00e9`, `\uD83D\uDE00`, `\ud800`, `\udfff`, `\ud800\u0041`, `\udc00\ud800`, `é`,
			"日本語", "😀", "\u2028\u2029", "\x7f", `abcdefghijklmnopqrstuvwxyz0123456789`,
		},
		nums: []string{
			`0`, `-0`, `1`, `-1`, `12.5`, `0.0`, `1e10`, `1E+2`, `1e-2`, `-0.0e-0`, `1e400`,
			`123456789012345678901234567890`, `3.141592653589793`, `5e-324`,
		},
		spaces: []string{``, ``, ``, ` `, "\t", "\n", "\r\n", `  `},
		mut:    []byte("[]{}\",:\\ 0123456789.eE+-tfnulrsa\x00\x01\x1f\x7f\x80\xbf\xc3\xe2\xed\xf0\xff"),
	}
}

func (g *gen) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g *gen) space(b []byte) []byte { return append(b, g.pick(g.spaces)...) }

func (g *gen) value(b []byte, depth int) []byte {
	b = g.space(b)
	k := g.r.IntN(10)
	if depth > 7 {
		k = 4 + g.r.IntN(6)
	}
	switch k {
	case 0, 1:
		b = append(b, '{')
		n := g.r.IntN(6)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = g.space(b)
			b = append(b, '"')
			if g.r.IntN(2) == 0 {
				b = append(b, g.pick(g.keys)...)
			} else {
				g.unique++
				b = strconv.AppendInt(append(b, 'u'), int64(g.unique), 10)
			}
			b = append(b, '"')
			b = g.space(b)
			b = append(b, ':')
			b = g.value(b, depth+1)
		}
		b = g.space(b)
		return append(b, '}')
	case 2, 3:
		b = append(b, '[')
		n := g.r.IntN(7)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = g.value(b, depth+1)
		}
		b = g.space(b)
		return append(b, ']')
	case 4, 5:
		b = append(b, '"')
		for range g.r.IntN(4) {
			b = append(b, g.pick(g.strs)...)
		}
		return append(b, '"')
	case 6, 7:
		return append(b, g.pick(g.nums)...)
	default:
		return append(b, g.pick([]string{"true", "false", "null"})...)
	}
}

// doc returns a random document: valid, or valid then mutated.
func (g *gen) doc() []byte {
	b := g.space(g.value(nil, 0))
	if len(b) == 0 || g.r.IntN(2) == 0 {
		return b
	}
	for range 1 + g.r.IntN(3) {
		i := g.r.IntN(len(b) + 1)
		switch g.r.IntN(4) {
		case 0: // insert
			b = append(b[:i], append([]byte{g.mut[g.r.IntN(len(g.mut))]}, b[i:]...)...)
		case 1: // delete
			if i < len(b) {
				b = append(b[:i], b[i+1:]...)
			}
		case 2: // replace
			if i < len(b) {
				b[i] = g.mut[g.r.IntN(len(g.mut))]
			}
		default: // truncate
			b = b[:i]
		}
		if len(b) == 0 {
			break
		}
	}
	return b
}
