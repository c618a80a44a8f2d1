package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// errMemberName refuses a header or payload whose top-level member names
// are ambiguous: a name given twice, or a name that is not one of the
// names livegate reads but equals one of them under encoding/json's
// case-insensitive matching (strings.EqualFold, which also folds "ſ"
// U+017F to "s" and "K" U+212A to "k"). encoding/json would otherwise
// let the last such member win, so {"sub":"alice","Sub":"admin"} would
// verify as "admin" while every case-sensitive reader (RFC 7519 section
// 4: claim names are case-sensitive) sees "alice".
var errMemberName = errors.New("ambiguous member name")

// errDateRange refuses an "exp", "nbf" or "iat" that is not a finite
// number of seconds in [0, maxNumericDate]. golang-jwt converts the
// seconds to int64 without a range check, so a huge value would wrap.
var errDateRange = errors.New("date claim out of range")

// maxNumericDate is 9999-12-31T23:59:59Z, the latest date claim accepted.
const maxNumericDate = 253402300799

// claimNames are the payload members a livegate token is decoded from.
var claimNames = []string{
	"iss", "sub", "aud", "exp", "nbf", "iat", "jti",
	"sid", "tenant", "groups", "perms", "channels", "kind",
}

// headerNames are the header members the verifier reads or refuses.
var headerNames = []string{"alg", "kid", "typ", "crit"}

// checkMembers checks the top-level member names of the JSON object in
// data: each may appear once, and one that equals a name of names under
// strings.EqualFold must be exactly that name. It calls value, when not
// nil, with each member's name and raw value. data that is not a JSON
// object is not checked (the caller's decoding refuses it); data that is
// not valid JSON is refused.
func checkMembers(data []byte, names []string, value func(name string, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return nil
	}
	seen := make(map[string]struct{}, 16)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if _, dup := seen[name]; dup {
			return fmt.Errorf("%w: %q given twice", errMemberName, name)
		}
		seen[name] = struct{}{}
		for _, known := range names {
			if name != known && strings.EqualFold(name, known) {
				return fmt.Errorf("%w: %q is not %q", errMemberName, name, known)
			}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if value != nil {
			if err := value(name, raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDate refuses an "exp", "nbf" or "iat" value outside [0,
// maxNumericDate] seconds. null (absent) is allowed; the value is read the
// way golang-jwt reads it (a json.Number, which a numeric string also
// decodes to).
func checkDate(name string, raw json.RawMessage) error {
	switch name {
	case "exp", "nbf", "iat":
	default:
		return nil
	}
	if string(raw) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return fmt.Errorf("%w: %s is not a number", errDateRange, name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return fmt.Errorf("%w: %s is not a number of seconds in [0, %d]", errDateRange, name, maxNumericDate)
	}
	return nil
}

// UnmarshalJSON decodes the payload after refusing ambiguous member names
// (see errMemberName) and out-of-range dates (see errDateRange).
func (c *claims) UnmarshalJSON(data []byte) error {
	if err := checkMembers(data, claimNames, checkDate); err != nil {
		return err
	}
	type plain claims // without this method
	return json.Unmarshal(data, (*plain)(c))
}

// checkHeader refuses a token whose header has ambiguous member names.
// raw is the compact token, whose header segment the parser has already
// decoded once.
func (v *Verifier) checkHeader(raw string) error {
	seg, _, _ := strings.Cut(raw, ".")
	header, err := v.parser.DecodeSegment(seg)
	if err != nil {
		return err
	}
	return checkMembers(header, headerNames, nil)
}
