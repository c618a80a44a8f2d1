package identity_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/livegate/livegate/identity"
)

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		policy         identity.Policy
		user, password string
		want           error // nil: accepted
	}{
		{"good", identity.Policy{}, "alice", "correct-zebra-lantern-91", nil},
		{"good exactly 12", identity.Policy{}, "alice", "k7#Qm2!vXp9z", nil},
		{"good unicode and spaces", identity.Policy{}, "alice", "Tänzer im Schnee um 7", nil},
		{"good 128", identity.Policy{}, "alice", strings.Repeat("k7#Qm", 25) + "2!v", nil},
		{"good no user", identity.Policy{}, "", "correct-zebra-lantern-91", nil},
		{"too short", identity.Policy{}, "alice", "k7#Qm2!vXp9", identity.ErrTooShort},
		{"too short in runes", identity.Policy{}, "alice", "ééééééé", identity.ErrTooShort}, // 14 bytes, 7 runes
		{"empty", identity.Policy{}, "alice", "", identity.ErrTooShort},
		{"too long", identity.Policy{}, "alice", strings.Repeat("k7#Qm", 25) + "2!vX", identity.ErrTooLong},
		{"too long custom", identity.Policy{MaxLength: 20}, "alice", "correct-zebra-lantern-91", identity.ErrTooLong},
		{"over byte cap", identity.Policy{MaxLength: 10000}, "alice", strings.Repeat("k7#Qm", 1000), identity.ErrTooLong},
		{"short custom", identity.Policy{MinLength: 30}, "alice", "correct-zebra-lantern-91", identity.ErrTooShort},
		{"invalid utf-8", identity.Policy{}, "alice", "correct-zebra\xff-lantern", identity.ErrEncoding},
		{"common", identity.Policy{}, "alice", "1234567890qwerty", identity.ErrCommon},
		{"common any case", identity.Policy{}, "alice", "123456QWERTY", identity.ErrCommon},
		{"common with suffix", identity.Policy{}, "alice", "Password2024!", identity.ErrCommon},
		{"common with prefix and suffix", identity.Policy{}, "alice", "!!!iloveyou123", identity.ErrCommon},
		{"common short policy", identity.Policy{MinLength: 6}, "alice", "Dragon", identity.ErrCommon},
		{"common letmein", identity.Policy{MinLength: 6}, "alice", "LETMEIN", identity.ErrCommon},
		{"common qwertyuiop", identity.Policy{MinLength: 8}, "alice", "qwertyuiop", identity.ErrCommon},
		{"equals user", identity.Policy{}, "CorrectZebra12", "correctzebra12", identity.ErrContainsUser},
		{"contains user", identity.Policy{}, "alice", "my-ALICE-secret-key", identity.ErrContainsUser},
		{"contains e-mail local part", identity.Policy{}, "j.doe@example.com", "zebra-j.doe-lantern", identity.ErrContainsUser},
		{"contains name part", identity.Policy{}, "john.smithers", "zebra-smithers-91", identity.ErrContainsUser},
		{"short user only equality", identity.Policy{}, "al", "correct-zebra-lantern-al", nil},
		{"repeated char", identity.Policy{}, "alice", "aaaaaaaaaaaa", identity.ErrRepeated},
		{"repeated char any case", identity.Policy{}, "alice", "aAaAaAaAaAaA", identity.ErrRepeated},
		{"repeated unicode", identity.Policy{}, "alice", "éééééééééééé", identity.ErrRepeated},
		{"repeated pattern", identity.Policy{}, "alice", "abcabcabcabc", identity.ErrRepeated},
		{"repeated digits", identity.Policy{}, "alice", "121212121212", identity.ErrRepeated},
		{"long pattern allowed", identity.Policy{}, "alice", "q7x!zq7x!zq7x!z", nil}, // unit of 5
		{"forbidden word", identity.Policy{Words: []string{"LiveGate"}}, "alice", "zebra-livegate-91", identity.ErrContainsWord},
		{"short word ignored", identity.Policy{Words: []string{"91"}}, "alice", "correct-zebra-lantern-91", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Check(tt.user, tt.password)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check(%q, %q) = %v, want nil", tt.user, tt.password, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check(%q, %q) = %v, want %v", tt.user, tt.password, err, tt.want)
			}
		})
	}
}

func TestCommonPasswords(t *testing.T) {
	t.Parallel()
	if n := identity.CommonPasswords(); n < 30000 {
		t.Fatalf("CommonPasswords() = %d, want at least 30000", n)
	}
	// Some of the most frequent passwords in breach statistics.
	p := identity.Policy{MinLength: 1}
	for _, pw := range []string{"123456", "password", "qwerty123", "football", "abc123", "iloveyou", "admin", "welcome", "monkey", "sunshine"} {
		if err := p.Check("", pw); !errors.Is(err, identity.ErrCommon) {
			t.Errorf("Check(%q) = %v, want ErrCommon", pw, err)
		}
	}
}

func BenchmarkPolicyCheck(b *testing.B) {
	var p identity.Policy
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Check("alice", "correct-zebra-lantern-91"); err != nil {
			b.Fatal(err)
		}
	}
}
