package ops

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
)

// Namespace is the channel namespace of operations: operation id's channel
// is "op:<id>". Configure it in the gateway's policy and register
// Manager.Authorizer for it.
const Namespace = "op"

// Channel returns the channel of operation id, "op:<id>".
func Channel(id string) string { return Namespace + ":" + id }

// idPattern matches the ids newID makes: UUIDv4 in canonical lower-case
// form. Anything else is refused before a store lookup.
var idPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// validID reports whether id could have been made by newID.
func validID(id string) bool { return len(id) == 36 && idPattern.MatchString(id) }

// idFromChannel returns the id of an operation channel, or "" if channel
// is not exactly "op:<id>".
func idFromChannel(channel string) string {
	id, ok := strings.CutPrefix(channel, Namespace+":")
	if !ok || !validID(id) {
		return ""
	}
	return id
}

// newID returns a random (version 4) UUID: 122 random bits from
// crypto/rand, so ids can be neither guessed nor enumerated.
func newID() string {
	var b [16]byte
	rand.Read(b[:])         // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10 (RFC 9562)
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
