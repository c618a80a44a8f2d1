package policy_test

import (
	"slices"
	"testing"

	"github.com/livegate/livegate/policy"
)

func TestPermMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		granted, required string
		want              bool
	}{
		{"posts:read", "posts:read", true},
		{"posts:read", "posts:write", false},
		{"posts:read", "posts:read:own", false},
		{"posts:read:own", "posts:read", false},
		{"posts", "posts", true},
		{"posts", "posts:read", false},

		// Trailing wildcard: one or more remaining segments.
		{"posts:*", "posts:read", true},
		{"posts:*", "posts:read:own", true},
		{"posts:*", "posts", false},
		{"posts:*", "postsx:read", false},
		{"posts:*", "xposts:read", false},
		{"posts:*", "post:read", false},
		{"posts:read:*", "posts:read:own", true},
		{"posts:read:*", "posts:read", false},
		{"posts:read:*", "posts:write:own", false},

		// "*" alone matches everything.
		{"*", "posts", true},
		{"*", "posts:read:own", true},

		// Middle wildcard: exactly one segment.
		{"posts:*:own", "posts:edit:own", true},
		{"posts:*:own", "posts:edit:all", false},
		{"posts:*:own", "posts:own", false},
		{"posts:*:own", "posts:a:b:own", false},
		{"posts:*:own", "posts:edit:own:x", false},
		{"*:read", "posts:read", true},
		{"*:read", "posts:write", false},
		{"*:read", "read", false},
		{"*:*", "a:b", true},
		{"*:*", "a:b:c", true},
		{"*:*", "a", false},

		// Required permissions are literal.
		{"posts:read", "posts:*", false},
		{"posts:*", "posts:*", true},
		{"*", "*", true},

		// No partial-segment globbing; invalid patterns never match.
		{"post*", "posts:read", false},
		{"post*", "post*", false},
		{"posts:re*", "posts:read", false},
		{"p*:read", "posts:read", false},
		{"**", "posts", false},
		{"posts:**", "posts:read", false},
		{"", "posts", false},
		{"posts::read", "posts::read", false},
		{"posts:", "posts:", false},
		{":posts", "posts", false},
		{"posts:*", "posts:", false},
		{"posts:*", "posts:a b", false},
		{"posts:read", "", false},
		{"*", "", false},
		{"*", "a::b", false},
		{"*", "café", false},
		{"posts:*:own:", "posts:x:own:", false},
		{"posts:*:", "posts:x:y", false},
	}
	for _, tt := range tests {
		t.Run(tt.granted+" vs "+tt.required, func(t *testing.T) {
			t.Parallel()
			if got := policy.PermMatch(tt.granted, tt.required); got != tt.want {
				t.Fatalf("PermMatch(%q, %q) = %v, want %v", tt.granted, tt.required, got, tt.want)
			}
		})
	}
}

func TestValidPerm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p                 string
		granted, required bool
	}{
		{"posts:read", true, true},
		{"a-b_c.d:e", true, true},
		{"posts:*", true, false},
		{"*", true, false},
		{"posts:*:own", true, false},
		{"post*", false, false},
		{"*posts", false, false},
		{"posts::read", false, false},
		{"", false, false},
		{"posts:read/x", false, false},
	}
	for _, tt := range tests {
		if got := policy.ValidPerm(tt.p, true); got != tt.granted {
			t.Errorf("ValidPerm(%q, true) = %v", tt.p, got)
		}
		if got := policy.ValidPerm(tt.p, false); got != tt.required {
			t.Errorf("ValidPerm(%q, false) = %v", tt.p, got)
		}
	}
}

func TestEffective(t *testing.T) {
	t.Parallel()
	s := mustNew(t, policy.Config{Roles: testRoles})
	tests := []struct {
		name string
		sub  policy.Subject
		want []string
	}{
		{"none", policy.Subject{User: "a"}, nil},
		{"claims only, deduplicated", policy.Subject{Perms: []string{"x:y", "x:y", "z"}}, []string{"x:y", "z"}},
		{"unknown group", policy.Subject{Groups: []string{"staff"}}, nil},
		{"role chain", policy.Subject{Perms: []string{"x:y", "docs:read"}, Groups: []string{"admin", "staff"}},
			[]string{"x:y", "docs:read", "admin:panel", "posts:*", "docs:write"}},
		{"two roles overlap", policy.Subject{Groups: []string{"viewer", "editor"}},
			[]string{"docs:read", "posts:*", "docs:write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := s.Effective(tt.sub); !slices.Equal(got, tt.want) {
				t.Fatalf("Effective = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInGroupHasPerm(t *testing.T) {
	t.Parallel()
	s := mustNew(t, policy.Config{Roles: testRoles})
	admin := policy.Subject{User: "a", Groups: []string{"admin"}}
	editor := policy.Subject{User: "a", Groups: []string{"editor"}}
	for _, g := range []string{"admin", "editor", "viewer"} {
		if !s.InGroup(admin, g) {
			t.Errorf("admin not in %q", g)
		}
	}
	if s.InGroup(editor, "admin") {
		t.Error("editor in admin")
	}
	if !s.HasPerm(admin, "docs:read") || !s.HasPerm(admin, "posts:x:y") {
		t.Error("admin lacks inherited permissions")
	}
	if s.HasPerm(editor, "admin:panel") {
		t.Error("editor has admin:panel")
	}
}
