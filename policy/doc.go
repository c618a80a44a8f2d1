// Package policy decides what a connection may touch: the channel name
// grammar, the event name guard, and per-namespace rules for subscribing and
// client publishing. Everything is denied unless a rule allows it.
//
// Start with New: it takes a Config of namespaces and RBAC roles, validates
// all of it, compiles every ABAC rule once, and returns an immutable *Set
// that is safe for concurrent use.
//
//	s, err := policy.New(policy.Config{
//		Roles: []policy.Role{
//			{Name: "editor", Perms: []string{"docs:read", "docs:write"}},
//			{Name: "admin", Inherits: []string{"editor"}, Perms: []string{"docs:*"}},
//		},
//		Namespaces: []policy.NamespaceConfig{
//			{Name: "room", Subscribe: policy.Authenticated},
//			{Name: "docs", TenantScoped: true, Subscribe: policy.Access{
//				Mode:     policy.ModeAuthenticated,
//				AnyPerms: []string{"docs:read"},
//				Rule:     `request.ip startsWith "10."`,
//			}},
//		},
//	})
//
// Set.Authorize decides a subscribe or publish and returns the internal
// channel name to hand to the broker. Set.CompileGuard compiles an Access
// for checks that are not about a channel, such as event handlers.
//
// # Access
//
// An Access lists conditions that must all hold: a Mode (deny, any
// authenticated connection, or a subscription token for the exact channel),
// optionally a user-limited channel, group membership (any of), permissions
// (any of and all of), and an ABAC rule. The zero Access denies.
//
// # Roles and permissions
//
// A subject's groups are also role names. A role grants permissions and
// includes every role it inherits, transitively. Permissions are
// ':'-separated segments; granted permissions may use '*' as a whole
// segment (see PermMatch).
//
// # Rules
//
// Rules are expr (github.com/expr-lang/expr) expressions that must yield a
// bool. They see:
//
//	subject  {user, session, tenant string; groups, perms []string}
//	channel  {name, namespace, base string; users []string}
//	request  {ip, origin string}
//	hasPerm(p string) bool   // PermMatch over the effective permissions
//	inGroup(g string) bool   // group membership, role-expanded
//
// subject.groups and subject.perms are role-expanded. channel fields carry
// the name as the client wrote it and are empty for guards.
//
// # Tenants
//
// A tenant-scoped namespace is addressed by the client as "ns:name" but
// lives internally under the connection's tenant, as "ns:@tenant/name".
// '@' and '/' are outside the client channel grammar and ValidTenant
// forbids them in tenants, so no client-chosen name can reach another
// tenant's channel. External maps an internal name back.
package policy
