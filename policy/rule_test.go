package policy_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/livegate/livegate/policy"
)

func ruleNS(name, rule string) policy.NamespaceConfig {
	return policy.NamespaceConfig{Name: name, Subscribe: policy.Access{Mode: policy.ModeAuthenticated, Rule: rule}}
}

func TestRules(t *testing.T) {
	t.Parallel()
	s := mustNew(t, policy.Config{
		Roles: testRoles,
		Namespaces: []policy.NamespaceConfig{
			ruleNS("docs", `channel.namespace == "docs" && hasPerm("docs:read") && request.ip startsWith "10."`),
			ruleNS("grp", `inGroup("viewer")`),
			ruleNS("grplist", `"viewer" in subject.groups`),
			ruleNS("permlist", `"docs:read" in subject.perms`),
			ruleNS("chan", `channel.name == "chan:x#alice,bob" && channel.base == "x" && channel.users == ["alice", "bob"]`),
			ruleNS("own", `channel.base == subject.user`),
			ruleNS("who", `subject.tenant == "acme" && subject.session == "s1" && request.origin == "https://app.example"`),
			ruleNS("index", `channel.users[3] == "x"`),
			ruleNS("never", `false`),
			{Name: "mixed", Subscribe: policy.Access{Mode: policy.ModeToken, AnyPerms: []string{"docs:read"}, Rule: `request.ip == "10.0.0.1"`}},
		},
	})
	reader := policy.Subject{User: "alice", Perms: []string{"docs:read"}}
	viewer := policy.Subject{User: "alice", Groups: []string{"viewer"}}
	admin := policy.Subject{User: "alice", Groups: []string{"admin"}}
	inside := policy.RequestAttrs{IP: "10.1.2.3"}
	outside := policy.RequestAttrs{IP: "192.168.1.1"}
	tests := []struct {
		name    string
		sub     policy.Subject
		channel string
		req     policy.RequestAttrs
		token   bool
		want    error
	}{
		{"example allows", reader, "docs:a", inside, false, nil},
		{"example wrong ip", reader, "docs:a", outside, false, policy.ErrDenied},
		{"example no perm", policy.Subject{User: "alice", Perms: []string{"docs:write"}}, "docs:a", inside, false, policy.ErrDenied},
		{"example perm via role", viewer, "docs:a", inside, false, nil},
		{"example perm via wildcard", policy.Subject{User: "alice", Perms: []string{"docs:*"}}, "docs:a", inside, false, nil},
		{"example anonymous", policy.Subject{Perms: []string{"docs:read"}}, "docs:a", inside, false, policy.ErrDenied},
		{"inGroup direct", viewer, "grp:a", inside, false, nil},
		{"inGroup inherited", admin, "grp:a", inside, false, nil},
		{"inGroup missing", reader, "grp:a", inside, false, policy.ErrDenied},
		{"groups expanded", admin, "grplist:a", inside, false, nil},
		{"groups missing", policy.Subject{User: "alice", Groups: []string{"staff"}}, "grplist:a", inside, false, policy.ErrDenied},
		{"perms effective", admin, "permlist:a", inside, false, nil},
		{"perms missing", policy.Subject{User: "alice", Perms: []string{"docs:write"}}, "permlist:a", inside, false, policy.ErrDenied},
		{"channel attributes", reader, "chan:x#alice,bob", inside, false, nil},
		{"channel attributes differ", reader, "chan:x#bob,alice", inside, false, policy.ErrDenied},
		{"own channel", reader, "own:alice", inside, false, nil},
		{"other's channel", reader, "own:bob", inside, false, policy.ErrDenied},
		{"subject and request", policy.Subject{User: "a", Tenant: "acme", Session: "s1"}, "who:a",
			policy.RequestAttrs{Origin: "https://app.example"}, false, nil},
		{"other tenant", policy.Subject{User: "a", Tenant: "evil", Session: "s1"}, "who:a",
			policy.RequestAttrs{Origin: "https://app.example"}, false, policy.ErrDenied},
		{"runtime error denies", reader, "index:a#alice", inside, false, policy.ErrDenied},
		{"false", reader, "never:a", inside, false, policy.ErrDenied},
		{"mixed all hold", reader, "mixed:a", policy.RequestAttrs{IP: "10.0.0.1"}, true, nil},
		{"mixed rule fails", reader, "mixed:a", inside, true, policy.ErrDenied},
		{"mixed token missing", reader, "mixed:a", policy.RequestAttrs{IP: "10.0.0.1"}, false, policy.ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: tt.sub, Channel: tt.channel, Request: tt.req, TokenGranted: tt.token})
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Authorize(%q) = %v, want %v", tt.channel, err, tt.want)
			}
		})
	}
}

// TestRulesConcurrent checks that concurrent evaluations never see each
// other's subject, channel or request.
func TestRulesConcurrent(t *testing.T) {
	t.Parallel()
	s := mustNew(t, policy.Config{
		Roles: testRoles,
		Namespaces: []policy.NamespaceConfig{
			ruleNS("own", `channel.base == subject.user && request.ip == "10.0.0." + subject.user && (subject.user != "u1" || inGroup("viewer"))`),
		},
	})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				user := fmt.Sprintf("u%d", (g+i)%4)
				sub := policy.Subject{User: user}
				if user == "u1" {
					sub.Groups = []string{"admin"}
				}
				ok := policy.Check{Subject: sub, Channel: "own:" + user, Request: policy.RequestAttrs{IP: "10.0.0." + user}}
				if _, _, err := s.Authorize(policy.OpSubscribe, ok); err != nil {
					errs <- fmt.Errorf("%s denied: %w", user, err)
					return
				}
				bad := ok
				bad.Channel = "own:x" + user
				if _, _, err := s.Authorize(policy.OpSubscribe, bad); !errors.Is(err, policy.ErrDenied) {
					errs <- fmt.Errorf("%s allowed on %s", user, bad.Channel)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
