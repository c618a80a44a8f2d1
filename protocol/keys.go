package protocol

import "errors"

// errUnknownKey is a key the frame schema does not have, compared
// byte-for-byte (encoding/json alone would match keys case-insensitively).
var errUnknownKey = errors.New("unknown field")

var errSyntax = errors.New("invalid JSON")

// Exact keys of the client frame schema.
var (
	envelopeKeys = []string{"id", "method", "params"}
	paramKeys    = []string{"token", "channel", "since", "name", "payload", "data", "view", "session", "csrf", "params", "ref"}
	sinceKeys    = []string{"offset", "epoch"}
)

// checkFrameKeys verifies, without allocating, that every object key of
// the frame's envelope, its params and params.since is one the schema
// defines, spelled exactly. Values of payload, data and a join's params are
// application data and are skipped. Structural validity is left to the
// decoder; the scan only has to find keys reliably.
func checkFrameKeys(b []byte) error {
	s := keyScanner{b: b}
	return s.object(envelopeKeys, func(s *keyScanner, key []byte) error {
		if string(key) == "params" {
			return s.valueOrObject(paramKeys, func(s *keyScanner, key []byte) error {
				if string(key) == "since" {
					return s.valueOrObject(sinceKeys, nil)
				}
				return s.skipValue()
			})
		}
		return s.skipValue()
	})
}

type keyScanner struct {
	b []byte
	i int
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
func (s *keyScanner) valueOrObject(keys []string, member func(*keyScanner, []byte) error) error {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '{' {
		return s.object(keys, member)
	}
	return s.skipValue()
}

// object scans an object whose keys must be in keys; member (or skipValue
// when nil) consumes each value.
func (s *keyScanner) object(keys []string, member func(*keyScanner, []byte) error) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return errSyntax
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		key, err := s.str()
		if err != nil {
			return err
		}
		if !known(keys, key) {
			return errUnknownKey
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errSyntax
		}
		s.i++
		if member != nil {
			err = member(s, key)
		} else {
			err = s.skipValue()
		}
		if err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return errSyntax
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

func known(keys []string, key []byte) bool {
	for _, k := range keys {
		if k == string(key) {
			return true
		}
	}
	return false
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
	return s.valueOrObject(keys, nil)
}
