package policy_test

import (
	"testing"

	"github.com/livegate/livegate/policy"
)

func BenchmarkAuthorize(b *testing.B) {
	s := mustNew(b, policy.Config{
		Roles: testRoles,
		Namespaces: []policy.NamespaceConfig{
			{Name: "room", Subscribe: policy.Authenticated},
			{Name: "perm", Subscribe: policy.Access{Mode: policy.ModeAuthenticated, Groups: []string{"viewer"}, AllPerms: []string{"docs:read", "posts:read"}}},
			{Name: "team", TenantScoped: true, Subscribe: policy.Authenticated},
			ruleNS("docs", `channel.namespace == "docs" && hasPerm("docs:read") && request.ip startsWith "10."`),
			ruleNS("grp", `"viewer" in subject.groups && "docs:read" in subject.perms`),
		},
	})
	reader := policy.Subject{User: "alice", Tenant: "acme", Perms: []string{"docs:read"}}
	admin := policy.Subject{User: "alice", Tenant: "acme", Groups: []string{"admin"}}
	req := policy.RequestAttrs{IP: "10.0.0.1", Origin: "https://app.example"}
	cases := []struct {
		name    string
		sub     policy.Subject
		channel string
	}{
		{"authenticated", reader, "room:lobby"},
		{"user limited", reader, "room:dm#bob,alice"},
		{"groups and perms via roles", admin, "perm:a"},
		{"tenant", reader, "team:lobby"},
		{"rule", reader, "docs:a"},
		{"rule with roles", admin, "docs:a"},
		{"rule expanded lists", admin, "grp:a"},
	}
	for _, c := range cases {
		check := policy.Check{Subject: c.sub, Channel: c.channel, Request: req}
		if _, _, err := s.Authorize(policy.OpSubscribe, check); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Authorize(policy.OpSubscribe, check); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAuthorizeParallel(b *testing.B) {
	s := mustNew(b, policy.Config{Namespaces: []policy.NamespaceConfig{
		ruleNS("docs", `channel.namespace == "docs" && hasPerm("docs:read") && request.ip startsWith "10."`),
	}})
	check := policy.Check{
		Subject: policy.Subject{User: "alice", Perms: []string{"docs:read"}},
		Channel: "docs:a",
		Request: policy.RequestAttrs{IP: "10.0.0.1"},
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Authorize(policy.OpSubscribe, check); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkPermMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !policy.PermMatch("posts:*:own", "posts:edit:own") {
			b.Fatal("no match")
		}
	}
}

func BenchmarkGuardAllow(b *testing.B) {
	s := mustNew(b, policy.Config{Roles: testRoles})
	g, err := s.CompileGuard(policy.Access{Mode: policy.ModeAuthenticated, Groups: []string{"editor"}})
	if err != nil {
		b.Fatal(err)
	}
	sub := policy.Subject{User: "alice", Groups: []string{"admin"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Allow(sub, policy.RequestAttrs{}); err != nil {
			b.Fatal(err)
		}
	}
}
