package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/livegate/livegate/policy"
)

func TestValidChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ch string
		ok       bool
	}{
		{"simple", "room:lobby", true},
		{"all chars", "a-b_c.d:e:f-1", true},
		{"user limited", "dm:chat#alice,bob", true},
		{"max length", "r:" + strings.Repeat("x", 126), true},
		{"too long", "r:" + strings.Repeat("x", 127), false},
		{"empty", "", false},
		{"no namespace", "lobby", false},
		{"empty namespace", ":lobby", false},
		{"empty name", "room:", false},
		{"space", "room:a b", false},
		{"script", "room:<script>", false},
		{"bidi", "room:a\u202eb", false},
		{"nul", "room:a\x00", false},
		{"newline", "room:a\n", false},
		{"slash", "room:a/b", false},
		{"hash in namespace", "ro#om:a", false},
		{"empty user list", "dm:chat#", false},
		{"empty user", "dm:chat#alice,,bob", false},
		{"comma without hash", "room:a,b", false},
		{"comma in name before hash", "dm:alice,bob#carol", false},
		{"comma as the name before hash", "a:,#x", false},
		{"comma at the end of the name before hash", "a:b,#x", false},
		{"comma in namespace", "a,b:c#x", false},
		{"leading comma in users", "dm:chat#,alice", false},
		{"trailing comma in users", "dm:chat#alice,", false},
		{"two hashes", "dm:a#b#c", false},
		{"unicode", "room:café", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := policy.ValidChannel(tt.ch)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidChannel(%q) = %v, want ok=%v", tt.ch, err, tt.ok)
			}
			if err != nil && !errors.Is(err, policy.ErrInvalidChannel) {
				t.Fatalf("error %v is not ErrInvalidChannel", err)
			}
		})
	}
}

func TestValidEventName(t *testing.T) {
	t.Parallel()
	good := []string{"say", "a", "say_hello", "x1", "a" + strings.Repeat("b", 63)}
	bad := []string{"", "__class__", "_private", "Increment", "a-b", "constructor_" + strings.Repeat("x", 60),
		"__proto__", "a" + strings.Repeat("b", 64), "a\x00b", "a b", "1abc", "sày", "say\n"}
	for _, n := range good {
		if !policy.ValidEventName(n) {
			t.Errorf("ValidEventName(%q) = false, want true", n)
		}
	}
	for _, n := range bad {
		if policy.ValidEventName(n) {
			t.Errorf("ValidEventName(%q) = true, want false", n)
		}
	}
}

func TestNewSetRejectsBadNamespaces(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"", "a b", "a#b", "a:b", "a,b", "a@b", "a/b", "dup"} {
		ns := []policy.NamespaceConfig{{Name: n}}
		if n == "dup" {
			ns = append(ns, policy.NamespaceConfig{Name: n})
		}
		if _, err := policy.NewSet(ns...); err == nil {
			t.Errorf("NewSet(%q) succeeded", n)
		}
	}
}

func TestJoinLeaveRequiresPresence(t *testing.T) {
	t.Parallel()
	if _, err := policy.NewSet(policy.NamespaceConfig{Name: "room", JoinLeave: true}); err == nil {
		t.Fatal("JoinLeave without Presence accepted")
	}
	s, err := policy.NewSet(policy.NamespaceConfig{Name: "room", Presence: true, JoinLeave: true})
	if err != nil {
		t.Fatal(err)
	}
	if ns, err := s.Lookup("room:a"); err != nil || !ns.Presence || !ns.JoinLeave {
		t.Fatalf("Lookup = %+v, %v", ns, err)
	}
}
