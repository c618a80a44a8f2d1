package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the cost parameters of Argon2id. A zero field takes the value
// of the same field in [DefaultParams], so Params{} hashes with the defaults
// and tests may write Params{Memory: 1024, Time: 1}.
type Params struct {
	// Memory is the memory cost in KiB; at least 8 per thread and at most
	// 262144 (256 MiB).
	Memory uint32
	// Time is the number of passes over the memory, 1 to 10.
	Time uint32
	// Threads is the degree of parallelism (lanes), 1 to 16.
	Threads uint8
	// SaltLen is the length of the random salt in bytes, 8 to 64.
	SaltLen uint32
	// KeyLen is the length of the derived key in bytes, 16 to 64.
	KeyLen uint32
}

// DefaultParams follow the OWASP Password Storage Cheat Sheet's first
// recommendation for Argon2id: m=19456 (19 MiB), t=2, p=1, with a 16-byte
// salt and a 32-byte key. One hash takes tens of milliseconds on a current
// server core. [Verify] reports needsRehash for hashes made with other
// parameters. Treat it as a constant.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on the parameters accepted by [Hash] and read by [Verify]. The upper
// bounds keep a hostile or corrupted hash from costing more than a few
// hundred megabytes and a few seconds.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 10
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
	// maxPHCLen bounds the PHC string before it is split; the longest
	// valid one is well under 200 bytes.
	maxPHCLen = 256
)

// MaxPasswordBytes is the longest password, in bytes, that [Hash] and
// [Verify] accept; longer ones get [ErrTooLong]. [Policy] usually refuses
// long passwords earlier, by character count.
const MaxPasswordBytes = 4096

// withDefaults fills the zero fields of p from DefaultParams.
func (p Params) withDefaults() Params {
	d := DefaultParams
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	return p
}

// validate checks p against the bounds; it does not apply defaults.
func (p Params) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: threads %d not in [1, %d]", ErrParams, p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("%w: memory %d KiB not in [%d, %d]", ErrParams, p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: time %d not in [1, %d]", ErrParams, p.Time, maxTime)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("%w: salt length %d not in [%d, %d]", ErrParams, p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("%w: key length %d not in [%d, %d]", ErrParams, p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// b64 is the PHC encoding of salts and hashes: standard alphabet, no
// padding, and (Strict) no stray bits in the last character, so every value
// has exactly one encoding.
var b64 = base64.RawStdEncoding.Strict()

// Hash hashes password with Argon2id, a fresh random salt and p (zero fields
// taken from [DefaultParams]), and returns the PHC string
// "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>". It fails with
// [ErrParams] when p is out of range and with [ErrTooLong] when password is
// longer than [MaxPasswordBytes]. Hash does not apply a [Policy].
func Hash(password string, p Params) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", fmt.Errorf("%w: more than %d bytes", ErrTooLong, MaxPasswordBytes)
	}
	p = p.withDefaults()
	if err := p.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("identity: reading random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches the Argon2id PHC string phc, as
// made by [Hash]. The string is parsed strictly before any hashing: another
// algorithm or version gives [ErrUnsupported], a malformed string
// [ErrMalformed], parameters out of range [ErrParams] (so a hostile
// "m=4294967295" is refused at once). The keys are compared in constant
// time. A wrong password is ok == false with a nil error.
//
// needsRehash is true only when ok is true and the hash's parameters (memory,
// time, threads, salt or key length) differ from [DefaultParams]: the caller
// should then store a fresh Hash of the password it just verified.
func Verify(password, phc string) (ok bool, needsRehash bool, err error) {
	return verify(password, phc, DefaultParams)
}

// verify is Verify with the parameters a hash should have given by target.
func verify(password, phc string, target Params) (ok, needsRehash bool, err error) {
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, false, err
	}
	if len(password) > MaxPasswordBytes {
		return false, false, fmt.Errorf("%w: more than %d bytes", ErrTooLong, MaxPasswordBytes)
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != target.withDefaults(), nil
}

// parsePHC parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash" and checks every
// bound before anything is allocated in proportion to the parameters.
func parsePHC(s string) (p Params, salt, key []byte, err error) {
	if len(s) > maxPHCLen {
		return Params{}, nil, nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxPHCLen)
	}
	parts := strings.Split(s, "$")
	if len(parts) < 2 || parts[0] != "" {
		return Params{}, nil, nil, ErrMalformed
	}
	if parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrUnsupported
	}
	if len(parts) != 6 {
		return Params{}, nil, nil, fmt.Errorf("%w: want 5 fields", ErrMalformed)
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return Params{}, nil, nil, fmt.Errorf("%w: missing version", ErrMalformed)
	}
	if n, ok := parseDecimal(v); !ok || n != argon2.Version {
		return Params{}, nil, nil, ErrUnsupported
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: want parameters m, t, p", ErrMalformed)
	}
	var vals [3]uint64
	for i, name := range [3]string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(fields[i], name)
		if !ok {
			return Params{}, nil, nil, fmt.Errorf("%w: want parameters m, t, p", ErrMalformed)
		}
		if vals[i], ok = parseDecimal(digits); !ok {
			return Params{}, nil, nil, fmt.Errorf("%w: bad number in %q", ErrMalformed, name)
		}
	}
	// Range-check before narrowing so that huge values cannot wrap around.
	if vals[0] > maxMemory || vals[1] > maxTime || vals[2] > maxThreads {
		return Params{}, nil, nil, fmt.Errorf("%w: m=%d,t=%d,p=%d", ErrParams, vals[0], vals[1], vals[2])
	}
	p = Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])} // #nosec G115 -- range-checked just above

	if len(parts[4]) > b64.EncodedLen(maxSaltLen) || len(parts[5]) > b64.EncodedLen(maxKeyLen) {
		return Params{}, nil, nil, fmt.Errorf("%w: salt or hash too long", ErrParams)
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: salt: %v", ErrMalformed, err)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: hash: %v", ErrMalformed, err)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key)) // #nosec G115 -- decoded from strings capped above at maxSaltLen and maxKeyLen
	if err := p.validate(); err != nil {
		return Params{}, nil, nil, err
	}
	return p, salt, key, nil
}

// parseDecimal parses a canonical unsigned decimal: ASCII digits only, no
// sign, no leading zero, at most 10 digits.
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
