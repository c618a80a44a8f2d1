package protocol

import "errors"

// errUnknownKey is a key the frame schema does not have, compared
// byte-for-byte (encoding/json alone would match keys case-insensitively).
var errUnknownKey = errors.New("unknown field")

// errDuplicateKey is a key given twice in the envelope, params or since.
// encoding/json would let the last one win (merging repeated objects), so
// the frame would mean different things to different parsers.
var errDuplicateKey = errors.New("repeated field")

var errSyntax = errors.New("invalid JSON")

// Exact keys of the client frame schema. paramKeys are in the order of
// the p* parameter bits: key i of params is bit 1<<i.
var (
	envelopeKeys = []string{"id", "method", "params"}
	paramKeys    = []string{"token", "channel", "since", "name", "payload", "data", "view", "session", "csrf", "params", "ref", "batch"}
	sinceKeys    = []string{"offset", "epoch"}
)

// envelopeParams is the index of "params" in envelopeKeys; paramSince the
// index of "since" in paramKeys.
const (
	envelopeParams = 2
	paramSince     = 2
)

// checkFrameKeys verifies, without allocating, that every object key of
// the frame's envelope, its params and params.since is one the schema
// defines, spelled exactly, and given once. It returns the set of keys
// params has, whatever their values (null included), as a bitmask of
// paramKeys indexes (0 when params is absent or not an object). Values of
// payload, data and a join's params are application data and are
// skipped. Structural validity is left to the decoder; the scan only has
// to find keys reliably.
func checkFrameKeys(b []byte) (params uint64, err error) {
	s := keyScanner{b: b, unique: true}
	_, err = s.object(envelopeKeys, inEnvelope)
	return s.params, err
}

// Which object of the frame schema the scanner is in, so that it knows
// which member values hold objects to check in turn.
const (
	inOther    = iota // values are skipped
	inEnvelope        // "params" is checked against paramKeys
	inParams          // "since" is checked against sinceKeys
)

type keyScanner struct {
	b []byte
	i int
	// unique refuses a key repeated in an object checked against a key
	// list (which must then have at most 64 keys).
	unique bool
	// params is the key set of the frame's params (checkFrameKeys).
	params uint64
}

func (s *keyScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// valueOrObject checks an object's keys when the value is an object, and
// skips any other value (null, or a wrong type the decoder will refuse).
// It returns the object's key set (see object), 0 for other values.
func (s *keyScanner) valueOrObject(keys []string, in int) (uint64, error) {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '{' {
		return s.object(keys, in)
	}
	return 0, s.skipValue()
}

// object scans an object whose keys must be in keys; in says which
// schema object it is (the in* constants), so which values are objects
// to check in turn rather than skip. It returns the set of keys seen as
// a bitmask of their indexes in keys (only the first 64 are recorded);
// with s.unique a repeated key is an error. (No callbacks: s stays on
// the stack.)
func (s *keyScanner) object(keys []string, in int) (uint64, error) {
	var seen uint64
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return 0, errSyntax
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return 0, nil
	}
	for {
		s.ws()
		key, err := s.str()
		if err != nil {
			return 0, err
		}
		k := index(keys, key)
		if k < 0 {
			return 0, errUnknownKey
		}
		if k < 64 {
			bit := uint64(1) << k
			if s.unique && seen&bit != 0 {
				return 0, errDuplicateKey
			}
			seen |= bit
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return 0, errSyntax
		}
		s.i++
		switch {
		case in == inEnvelope && k == envelopeParams:
			s.params, err = s.valueOrObject(paramKeys, inParams)
		case in == inParams && k == paramSince:
			_, err = s.valueOrObject(sinceKeys, inOther)
		default:
			err = s.skipValue()
		}
		if err != nil {
			return 0, err
		}
		s.ws()
		if s.i >= len(s.b) {
			return 0, errSyntax
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return seen, nil
		default:
			return 0, errSyntax
		}
	}
}

// index returns the index of key in keys, or -1.
func index(keys []string, key []byte) int {
	for i, k := range keys {
		if k == string(key) {
			return i
		}
	}
	return -1
}

// str scans a string and returns its raw bytes between the quotes. A key
// with escapes never equals a schema key, which is what we want: the
// schema's keys are plain ASCII.
func (s *keyScanner) str() ([]byte, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, errSyntax
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			out := s.b[start:s.i]
			s.i++
			return out, nil
		case '\\':
			s.i += 2
		default:
			s.i++
		}
	}
	return nil, errSyntax
}

// skipValue skips one JSON value of any kind.
func (s *keyScanner) skipValue() error {
	s.ws()
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch s.b[s.i] {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, err := s.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return errSyntax
	default:
		// number, true, false, null: up to the next delimiter
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			s.i++
		}
		return nil
	}
}

// CheckObjectKeys reports an error unless data is a JSON object whose
// keys are all in keys, spelled exactly, or a non-object value (which the
// caller's decoder then judges). It does not allocate. Typed payload
// decoding uses it so that json.Unmarshal can stand in for a Decoder with
// DisallowUnknownFields.
func CheckObjectKeys(data []byte, keys []string) error {
	s := keyScanner{b: data}
	_, err := s.valueOrObject(keys, inOther)
	return err
}
