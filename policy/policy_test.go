package policy_test

import (
	"errors"
	"fmt"
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

func TestSetDenyByDefault(t *testing.T) {
	t.Parallel()
	s, err := policy.NewSet(
		policy.NamespaceConfig{Name: "room", Subscribe: policy.SubscribeAuthenticated},
		policy.NamespaceConfig{Name: "closed"},
		policy.NamespaceConfig{Name: "chat", Subscribe: policy.SubscribeAuthenticated, ClientPublish: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	alice := policy.Subject{User: "alice"}
	tests := []struct {
		name    string
		sub     policy.Subject
		channel string
		publish bool
		want    error
	}{
		{"room subscribe", alice, "room:a", false, nil},
		{"room publish refused", alice, "room:a", true, policy.ErrDenied},
		{"chat publish", alice, "chat:a", true, nil},
		{"unknown namespace", alice, "secret:a", false, policy.ErrUnknownNamespace},
		{"deny namespace", alice, "closed:a", false, policy.ErrDenied},
		{"anonymous", policy.Subject{}, "room:a", false, policy.ErrDenied},
		{"user limited allowed", alice, "room:dm#alice,bob", false, nil},
		{"user limited cross-user", alice, "room:dm#bob,carol", false, policy.ErrDenied},
		{"user limited prefix trick", alice, "room:dm#alice2", false, policy.ErrDenied},
		{"invalid", alice, "room:<x>", false, policy.ErrInvalidChannel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.publish {
				_, err = s.CanPublish(tt.sub, tt.channel)
			} else {
				_, err = s.CanSubscribe(tt.sub, tt.channel)
			}
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewSetRejectsBadNamespaces(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"", "a b", "a#b", "a:b", "dup"} {
		ns := []policy.NamespaceConfig{{Name: n}}
		if n == "dup" {
			ns = append(ns, policy.NamespaceConfig{Name: n})
		}
		if _, err := policy.NewSet(ns...); err == nil {
			t.Errorf("NewSet(%q) succeeded", n)
		}
	}
}

func ExampleSet_CanSubscribe() {
	s, _ := policy.NewSet(policy.NamespaceConfig{Name: "room", Subscribe: policy.SubscribeAuthenticated})
	_, err := s.CanSubscribe(policy.Subject{User: "alice"}, "room:lobby")
	fmt.Println(err)
	_, err = s.CanSubscribe(policy.Subject{User: "alice"}, "admin:lobby")
	fmt.Println(err)
	// Output:
	// <nil>
	// policy: unknown namespace
}
