package identity

import (
	_ "embed"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// commonData is the list of common passwords: lower case, sorted bytewise,
// one per line, '#' lines are comments. Its header names the sources.
//
//go:embed common_passwords.txt
var commonData string

// commonList is commonData split into a sorted slice on first use. The
// strings share commonData's memory; the slice costs about 0.5 MB.
var commonList = sync.OnceValue(func() []string {
	lines := strings.Split(commonData, "\n")
	list := make([]string, 0, len(lines))
	for _, l := range lines {
		if l != "" && l[0] != '#' {
			list = append(list, l)
		}
	}
	return list
})

// CommonPasswords reports how many passwords the embedded common list holds.
func CommonPasswords() int { return len(commonList()) }

// inCommonList reports whether lower (already lower-cased) is on the list.
func inCommonList(lower string) bool {
	_, found := slices.BinarySearch(commonList(), lower)
	return found
}

// minCoreRunes is the shortest core (the password with leading and trailing
// digits and symbols removed) looked up in the common list: shorter cores,
// such as "abc" in "abc83651902374", are too likely to be coincidences.
const minCoreRunes = 4

// isCommon reports whether lower, a lower-cased password, is a common
// password, or a common password with digits or symbols before or after it
// ("password2024!", "!!dragon99").
func isCommon(lower string) bool {
	if inCommonList(lower) {
		return true
	}
	core := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	return core != lower && utf8.RuneCountInString(core) >= minCoreRunes && inCommonList(core)
}
