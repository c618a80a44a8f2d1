package policy_test

import (
	"errors"
	"fmt"

	"github.com/livegate/livegate/policy"
)

func ExampleNew() {
	s, err := policy.New(policy.Config{
		Roles: []policy.Role{
			{Name: "viewer", Perms: []string{"docs:read"}},
			{Name: "editor", Inherits: []string{"viewer"}, Perms: []string{"docs:write"}},
		},
		Namespaces: []policy.NamespaceConfig{
			{Name: "room", Subscribe: policy.SubscribeAuthenticated},
			{Name: "docs", TenantScoped: true, Subscribe: policy.Access{
				Mode: policy.ModeAuthenticated,
				Rule: `channel.namespace == "docs" && hasPerm("docs:read") && request.ip startsWith "10."`,
			}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	editor := policy.Subject{User: "alice", Tenant: "acme", Groups: []string{"editor"}}
	office := policy.RequestAttrs{IP: "10.0.0.7"}

	_, internal, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: editor, Channel: "docs:plan", Request: office})
	fmt.Println(internal, err)
	fmt.Println(policy.External(internal))

	_, _, err = s.Authorize(policy.OpSubscribe, policy.Check{Subject: editor, Channel: "docs:plan", Request: policy.RequestAttrs{IP: "203.0.113.9"}})
	fmt.Println(errors.Is(err, policy.ErrDenied))

	_, _, err = s.Authorize(policy.OpPublish, policy.Check{Subject: editor, Channel: "room:lobby"})
	fmt.Println(errors.Is(err, policy.ErrDenied))

	_, _, err = s.Authorize(policy.OpSubscribe, policy.Check{Subject: editor, Channel: "admin:lobby"})
	fmt.Println(err)
	// Output:
	// docs:@acme/plan <nil>
	// docs:plan
	// true
	// true
	// policy: unknown namespace
}

func ExamplePermMatch() {
	fmt.Println(policy.PermMatch("posts:*", "posts:read"))
	fmt.Println(policy.PermMatch("posts:*", "posts:read:own"))
	fmt.Println(policy.PermMatch("posts:*", "posts"))
	fmt.Println(policy.PermMatch("posts:*:own", "posts:edit:own"))
	fmt.Println(policy.PermMatch("post*", "posts:read"))
	// Output:
	// true
	// true
	// false
	// true
	// false
}

func ExampleSet_CompileGuard() {
	s, _ := policy.New(policy.Config{Roles: []policy.Role{
		{Name: "admin", Inherits: []string{"editor"}},
		{Name: "editor"},
	}})
	g, err := s.CompileGuard(policy.Access{Mode: policy.ModeAuthenticated, Groups: []string{"editor"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.Allow(policy.Subject{User: "root", Groups: []string{"admin"}}, policy.RequestAttrs{}))
	fmt.Println(g.Allow(policy.Subject{User: "guest"}, policy.RequestAttrs{}))
	// Output:
	// <nil>
	// policy: denied: not in a required group
}

func ExampleSet_Internal() {
	s, _ := policy.New(policy.Config{Namespaces: []policy.NamespaceConfig{
		{Name: "team", TenantScoped: true, Subscribe: policy.Authenticated},
	}})
	_, internal, err := s.Internal("team:lobby", "acme")
	fmt.Println(internal, err)
	_, _, err = s.Internal("team:lobby", "")
	fmt.Println(err)
	// Output:
	// team:@acme/lobby <nil>
	// policy: denied: no valid tenant
}
