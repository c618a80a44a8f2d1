package identity

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Default lengths of a [Policy], in characters (Unicode code points).
const (
	DefaultMinLength = 12
	DefaultMaxLength = 128
)

// Policy decides which new passwords are acceptable. Its zero value is the
// default policy: 12 to 128 characters and the checks listed on Check.
//
// Following NIST SP 800-63B there are no composition rules (no "one digit,
// one symbol"); spaces and any Unicode are allowed. Lengths are counted in
// code points without Unicode normalisation.
type Policy struct {
	// MinLength is the fewest characters allowed; zero means
	// DefaultMinLength (12). NIST's floor is 8.
	MinLength int
	// MaxLength is the most characters allowed; zero means
	// DefaultMaxLength (128). Passwords over MaxPasswordBytes bytes are
	// refused whatever its value.
	MaxLength int
	// Words are context-specific words that a password must not contain,
	// compared case-insensitively, such as the name of the service
	// ("livegate"). Words shorter than 3 characters are ignored.
	Words []string
}

func (p Policy) minLength() int {
	if p.MinLength == 0 {
		return DefaultMinLength
	}
	return p.MinLength
}

func (p Policy) maxLength() int {
	if p.MaxLength == 0 {
		return DefaultMaxLength
	}
	return p.MaxLength
}

// Check reports whether password is acceptable for user, returning nil or
// the first broken rule, wrapped with details:
//
//   - [ErrTooLong]: more than MaxLength characters (checked first and
//     cheaply, since long inputs are a denial-of-service vector);
//   - [ErrEncoding]: not valid UTF-8;
//   - [ErrTooShort]: fewer than MinLength characters;
//   - [ErrRepeated]: one character, or a pattern of up to four, repeated
//     ("aaaaaaaaaaaa", "abcabcabcabc");
//   - [ErrContainsUser]: equals or contains the user name, the local part of
//     an e-mail address used as user name, or a part of the name at least 4
//     characters long ("john" and "smith" of "john.smith");
//   - [ErrContainsWord]: contains one of Words;
//   - [ErrCommon]: is on the embedded common-password list, possibly with
//     digits or symbols before or after it ("Password2024!").
//
// All comparisons ignore case. user may be empty to skip the user checks.
func (p Policy) Check(user, password string) error {
	maxLen, minLen := p.maxLength(), p.minLength()
	if len(password) > MaxPasswordBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLong, MaxPasswordBytes)
	}
	if !utf8.ValidString(password) {
		return ErrEncoding
	}
	n := utf8.RuneCountInString(password)
	if n > maxLen {
		return fmt.Errorf("%w: at most %d characters", ErrTooLong, maxLen)
	}
	if n < minLen {
		return fmt.Errorf("%w: at least %d characters", ErrTooShort, minLen)
	}
	lower := strings.ToLower(password)
	if isRepeated(lower) {
		return ErrRepeated
	}
	if containsUser(lower, user) {
		return ErrContainsUser
	}
	for _, w := range p.Words {
		w = strings.ToLower(strings.TrimSpace(w))
		if utf8.RuneCountInString(w) >= 3 && strings.Contains(lower, w) {
			return ErrContainsWord
		}
	}
	if isCommon(lower) {
		return ErrCommon
	}
	return nil
}

// maxPeriod is the longest unit that isRepeated looks for.
const maxPeriod = 4

// isRepeated reports whether s consists of a unit of at most maxPeriod
// runes repeated at least twice.
func isRepeated(s string) bool {
	r := []rune(s)
	for period := 1; period <= maxPeriod && 2*period <= len(r); period++ {
		if len(r)%period != 0 {
			continue
		}
		same := true
		for i := period; i < len(r); i++ {
			if r[i] != r[i-period] {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// containsUser reports whether lower, a lower-cased password, equals or
// contains user or a significant part of it.
func containsUser(lower, user string) bool {
	u := strings.ToLower(strings.TrimSpace(user))
	if u == "" {
		return false
	}
	if lower == u {
		return true
	}
	candidates := []string{u}
	if local, _, ok := strings.Cut(u, "@"); ok {
		candidates = append(candidates, local)
	}
	if parts := strings.FieldsFunc(u, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}); len(parts) > 1 {
		for _, part := range parts {
			if utf8.RuneCountInString(part) >= 4 {
				candidates = append(candidates, part)
			}
		}
	}
	for _, c := range candidates {
		if utf8.RuneCountInString(c) >= 3 && strings.Contains(lower, c) {
			return true
		}
	}
	return false
}
