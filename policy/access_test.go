package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/livegate/livegate/policy"
)

// testRoles: admin inherits editor, which inherits viewer.
var testRoles = []policy.Role{
	{Name: "viewer", Perms: []string{"docs:read"}},
	{Name: "editor", Inherits: []string{"viewer"}, Perms: []string{"posts:*", "docs:write"}},
	{Name: "admin", Inherits: []string{"editor"}, Perms: []string{"admin:panel"}},
}

func mustNew(t testing.TB, cfg policy.Config) *policy.Set {
	t.Helper()
	s, err := policy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func auth(mod func(*policy.Access)) policy.Access {
	a := policy.Access{Mode: policy.ModeAuthenticated}
	mod(&a)
	return a
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	s := mustNew(t, policy.Config{
		Roles: testRoles,
		Namespaces: []policy.NamespaceConfig{
			{Name: "closed"},
			{Name: "room", Subscribe: policy.SubscribeAuthenticated},
			{Name: "pubonly", Publish: policy.Authenticated},
			{Name: "chat", Subscribe: policy.Authenticated, Publish: policy.Authenticated},
			{Name: "tok", Subscribe: policy.Access{Mode: policy.ModeToken}},
			{Name: "dm", Subscribe: auth(func(a *policy.Access) { a.UserLimited = true })},
			{Name: "ed", Subscribe: auth(func(a *policy.Access) { a.Groups = []string{"editor"} })},
			{Name: "adm", Subscribe: auth(func(a *policy.Access) { a.Groups = []string{"admin"} })},
			{Name: "staff", Subscribe: auth(func(a *policy.Access) { a.Groups = []string{"nobody", "staff"} })},
			{Name: "anyp", Subscribe: auth(func(a *policy.Access) { a.AnyPerms = []string{"posts:read", "billing:read"} })},
			{Name: "allp", Subscribe: auth(func(a *policy.Access) { a.AllPerms = []string{"docs:read", "docs:write"} })},
			{Name: "both", Subscribe: auth(func(a *policy.Access) {
				a.Groups = []string{"staff"}
				a.AllPerms = []string{"docs:read"}
			})},
		},
	})
	alice := policy.Subject{User: "alice"}
	in := func(groups ...string) policy.Subject { return policy.Subject{User: "alice", Groups: groups} }
	with := func(perms ...string) policy.Subject { return policy.Subject{User: "alice", Perms: perms} }
	tests := []struct {
		name    string
		op      policy.Op
		sub     policy.Subject
		channel string
		token   bool
		want    error
	}{
		{"zero access subscribe", policy.OpSubscribe, alice, "closed:a", false, policy.ErrDenied},
		{"zero access publish", policy.OpPublish, alice, "closed:a", false, policy.ErrDenied},
		{"zero access with token", policy.OpSubscribe, alice, "closed:a", true, policy.ErrDenied},
		{"unknown op", policy.Op(7), alice, "chat:a", true, policy.ErrDenied},
		{"room subscribe", policy.OpSubscribe, alice, "room:a", false, nil},
		{"publish denied when only subscribe set", policy.OpPublish, alice, "room:a", false, policy.ErrDenied},
		{"subscribe denied when only publish set", policy.OpSubscribe, alice, "pubonly:a", false, policy.ErrDenied},
		{"publish only", policy.OpPublish, alice, "pubonly:a", false, nil},
		{"chat publish", policy.OpPublish, alice, "chat:a", false, nil},
		{"anonymous", policy.OpSubscribe, policy.Subject{}, "room:a", false, policy.ErrDenied},
		{"anonymous with groups", policy.OpSubscribe, policy.Subject{Groups: []string{"admin"}}, "adm:a", false, policy.ErrDenied},
		{"unknown namespace", policy.OpSubscribe, alice, "secret:a", false, policy.ErrUnknownNamespace},
		{"invalid channel", policy.OpSubscribe, alice, "room:<x>", false, policy.ErrInvalidChannel},

		{"token mode without token", policy.OpSubscribe, alice, "tok:a", false, policy.ErrDenied},
		{"token mode with token", policy.OpSubscribe, alice, "tok:a", true, nil},
		{"token mode anonymous with token", policy.OpSubscribe, policy.Subject{}, "tok:a", true, policy.ErrDenied},
		{"token does not open publish", policy.OpPublish, alice, "tok:a", true, policy.ErrDenied},

		{"user limited own", policy.OpSubscribe, alice, "dm:x#alice,bob", false, nil},
		{"user limited other users", policy.OpSubscribe, alice, "dm:x#bob,carol", false, policy.ErrDenied},
		{"user limited prefix trick", policy.OpSubscribe, alice, "dm:x#alice2", false, policy.ErrDenied},
		{"user limited required", policy.OpSubscribe, alice, "dm:x", false, policy.ErrDenied},
		{"hash channel still lists user", policy.OpSubscribe, alice, "room:x#bob", false, policy.ErrDenied},
		{"hash channel listing user", policy.OpSubscribe, alice, "room:x#bob,alice", false, nil},

		{"group direct", policy.OpSubscribe, in("editor"), "ed:a", false, nil},
		{"group inherited", policy.OpSubscribe, in("admin"), "ed:a", false, nil},
		{"group below required", policy.OpSubscribe, in("viewer"), "ed:a", false, policy.ErrDenied},
		{"editor is not admin", policy.OpSubscribe, in("editor"), "adm:a", false, policy.ErrDenied},
		{"admin is admin", policy.OpSubscribe, in("admin"), "adm:a", false, nil},
		{"group name prefix", policy.OpSubscribe, in("editorx"), "ed:a", false, policy.ErrDenied},
		{"no groups", policy.OpSubscribe, alice, "ed:a", false, policy.ErrDenied},
		{"groups any-of, not a role", policy.OpSubscribe, in("x", "staff"), "staff:a", false, nil},
		{"groups any-of, none", policy.OpSubscribe, in("x", "staffer"), "staff:a", false, policy.ErrDenied},

		{"any perms second", policy.OpSubscribe, with("billing:read"), "anyp:a", false, nil},
		{"any perms wildcard", policy.OpSubscribe, with("posts:*"), "anyp:a", false, nil},
		{"any perms via role", policy.OpSubscribe, in("editor"), "anyp:a", false, nil},
		{"any perms via inherited role", policy.OpSubscribe, in("admin"), "anyp:a", false, nil},
		{"any perms none", policy.OpSubscribe, with("docs:read", "billing:write"), "anyp:a", false, policy.ErrDenied},
		{"any perms role without them", policy.OpSubscribe, in("viewer"), "anyp:a", false, policy.ErrDenied},
		{"all perms", policy.OpSubscribe, with("docs:write", "docs:read"), "allp:a", false, nil},
		{"all perms wildcard", policy.OpSubscribe, with("docs:*"), "allp:a", false, nil},
		{"all perms own and inherited", policy.OpSubscribe, in("editor"), "allp:a", false, nil},
		{"all perms role and claim", policy.OpSubscribe, policy.Subject{User: "a", Groups: []string{"viewer"}, Perms: []string{"docs:write"}}, "allp:a", false, nil},
		{"all perms one missing", policy.OpSubscribe, with("docs:read"), "allp:a", false, policy.ErrDenied},
		{"all perms role missing one", policy.OpSubscribe, in("viewer"), "allp:a", false, policy.ErrDenied},
		{"groups and perms", policy.OpSubscribe, policy.Subject{User: "a", Groups: []string{"staff", "viewer"}}, "both:a", false, nil},
		{"groups without perms", policy.OpSubscribe, in("staff"), "both:a", false, policy.ErrDenied},
		{"perms without groups", policy.OpSubscribe, in("viewer"), "both:a", false, policy.ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns, internal, err := s.Authorize(tt.op, policy.Check{Subject: tt.sub, Channel: tt.channel, TokenGranted: tt.token})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Authorize(%v, %q) = %v, want nil", tt.op, tt.channel, err)
				}
				if internal != tt.channel || ns.Name != policy.Namespace(tt.channel) {
					t.Fatalf("Authorize = (%q, %q), want (%q, %q)", ns.Name, internal, policy.Namespace(tt.channel), tt.channel)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Authorize(%v, %q) = %v, want %v", tt.op, tt.channel, err, tt.want)
			}
			if internal != "" {
				t.Fatalf("internal name %q returned with an error", internal)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestSetIsolatedFromConfig(t *testing.T) {
	t.Parallel()
	groups := []string{"staff"}
	s := mustNew(t, policy.Config{Namespaces: []policy.NamespaceConfig{
		{Name: "staff", Subscribe: policy.Access{Mode: policy.ModeAuthenticated, Groups: groups}},
	}})
	groups[0] = "guest" // the caller mutates its config after New
	ns, _ := s.Lookup("staff:a")
	if ns.Subscribe.Groups[0] != "staff" {
		t.Fatalf("Lookup returns the caller's slice: %q", ns.Subscribe.Groups)
	}
	ns.Subscribe.Groups[0] = "guest" // and the returned copy
	_, _, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: policy.Subject{User: "a", Groups: []string{"guest"}}, Channel: "staff:a"})
	if !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("mutating the config changed the policy: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	ns := func(a policy.Access) []policy.NamespaceConfig {
		return []policy.NamespaceConfig{{Name: "docs", Subscribe: a}}
	}
	rule := func(r string) []policy.NamespaceConfig {
		return ns(policy.Access{Mode: policy.ModeAuthenticated, Rule: r})
	}
	tests := []struct {
		name string
		cfg  policy.Config
		want string // the culprit, named in the error
	}{
		{"unknown inherited role", policy.Config{Roles: []policy.Role{{Name: "a", Inherits: []string{"ghost"}}}}, `"ghost"`},
		{"role cycle", policy.Config{Roles: []policy.Role{
			{Name: "a", Inherits: []string{"b"}}, {Name: "b", Inherits: []string{"c"}}, {Name: "c", Inherits: []string{"a"}},
		}}, "a -> b -> c -> a"},
		{"role self cycle", policy.Config{Roles: []policy.Role{{Name: "a", Inherits: []string{"a"}}}}, "a -> a"},
		{"duplicate role", policy.Config{Roles: []policy.Role{{Name: "a"}, {Name: "a"}}}, `"a"`},
		{"invalid role name", policy.Config{Roles: []policy.Role{{Name: "a b"}}}, `"a b"`},
		{"empty role name", policy.Config{Roles: []policy.Role{{Name: ""}}}, `role ""`},
		{"partial glob perm", policy.Config{Roles: []policy.Role{{Name: "a", Perms: []string{"post*"}}}}, `"post*"`},
		{"partial glob segment", policy.Config{Roles: []policy.Role{{Name: "a", Perms: []string{"posts:re*"}}}}, `"posts:re*"`},
		{"empty segment", policy.Config{Roles: []policy.Role{{Name: "a", Perms: []string{"posts::read"}}}}, `"posts::read"`},
		{"trailing colon", policy.Config{Roles: []policy.Role{{Name: "a", Perms: []string{"posts:"}}}}, `"posts:"`},
		{"empty perm", policy.Config{Roles: []policy.Role{{Name: "a", Perms: []string{""}}}}, `""`},
		{"space in perm", policy.Config{Roles: []policy.Role{{Name: "a", Perms: []string{"posts: read"}}}}, `"posts: read"`},
		{"wildcard required perm", policy.Config{Namespaces: ns(policy.Access{Mode: policy.ModeAuthenticated, AnyPerms: []string{"posts:*"}})}, `"posts:*"`},
		{"invalid all perm", policy.Config{Namespaces: ns(policy.Access{Mode: policy.ModeAuthenticated, AllPerms: []string{"post*"}})}, `"post*"`},
		{"invalid group", policy.Config{Namespaces: ns(policy.Access{Mode: policy.ModeAuthenticated, Groups: []string{""}})}, `group ""`},
		{"conditions with deny mode", policy.Config{Namespaces: ns(policy.Access{Groups: []string{"admin"}})}, "mode is deny"},
		{"invalid mode", policy.Config{Namespaces: ns(policy.Access{Mode: 9})}, "invalid mode"},
		{"invalid publish access", policy.Config{Namespaces: []policy.NamespaceConfig{{Name: "docs", Publish: policy.Access{Mode: -1}}}}, "publish"},
		{"rule syntax error", policy.Config{Namespaces: rule(`subject.user ==`)}, "rule"},
		{"rule not bool", policy.Config{Namespaces: rule(`subject.user`)}, "rule"},
		{"rule int", policy.Config{Namespaces: rule(`1 + 2`)}, "rule"},
		{"rule unknown variable", policy.Config{Namespaces: rule(`secret == "x"`)}, "secret"},
		{"rule unknown field", policy.Config{Namespaces: rule(`subject.password == "x"`)}, "password"},
		{"rule type error", policy.Config{Namespaces: rule(`subject.user > 3`)}, "rule"},
		{"rule hasPerm arg type", policy.Config{Namespaces: rule(`hasPerm(1)`)}, "rule"},
		{"rule hasPerm invalid perm", policy.Config{Namespaces: rule(`hasPerm("post*")`)}, `"post*"`},
		{"rule inGroup invalid", policy.Config{Namespaces: rule(`inGroup("a b")`)}, `"a b"`},
		{"rule too large", policy.Config{Namespaces: rule(strings.Repeat(`subject.user == "x" || `, 60) + "true")}, "rule"},
		{"rule over custom limit", policy.Config{MaxRuleNodes: 5, Namespaces: rule(`subject.user == "a" && subject.tenant == "b"`)}, "rule"},
		{"negative node limit", policy.Config{MaxRuleNodes: -1}, "MaxRuleNodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := policy.New(tt.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "policy: ") || strings.Contains(msg[len("policy: "):], "policy: ") {
				t.Errorf("error %q: want exactly one package prefix", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %s", msg, tt.want)
			}
			if len(tt.cfg.Namespaces) > 0 && !strings.Contains(msg, `namespace "docs"`) {
				t.Errorf("error %q does not name the namespace", msg)
			}
		})
	}
}

func TestNewAcceptsRuleWithinLimit(t *testing.T) {
	t.Parallel()
	// Same shape as "rule over custom limit" above, with the default limit.
	mustNew(t, policy.Config{Namespaces: []policy.NamespaceConfig{{Name: "docs", Subscribe: policy.Access{
		Mode: policy.ModeAuthenticated, Rule: `subject.user == "a" && subject.tenant == "b"`,
	}}}})
	// A role that inherits through a diamond is not a cycle.
	mustNew(t, policy.Config{Roles: []policy.Role{
		{Name: "base"}, {Name: "l", Inherits: []string{"base"}}, {Name: "r", Inherits: []string{"base"}},
		{Name: "top", Inherits: []string{"l", "r"}},
	}})
}

func TestGuard(t *testing.T) {
	t.Parallel()
	s := mustNew(t, policy.Config{Roles: testRoles})
	alice := policy.Subject{User: "alice"}
	admin := policy.Subject{User: "alice", Groups: []string{"admin"}}
	tests := []struct {
		name   string
		access policy.Access
		sub    policy.Subject
		req    policy.RequestAttrs
		want   error
	}{
		{"deny", policy.Deny, alice, policy.RequestAttrs{}, policy.ErrDenied},
		{"authenticated", policy.Authenticated, alice, policy.RequestAttrs{}, nil},
		{"anonymous", policy.Authenticated, policy.Subject{}, policy.RequestAttrs{}, policy.ErrDenied},
		{"group inherited", auth(func(a *policy.Access) { a.Groups = []string{"viewer"} }), admin, policy.RequestAttrs{}, nil},
		{"group missing", auth(func(a *policy.Access) { a.Groups = []string{"viewer"} }), alice, policy.RequestAttrs{}, policy.ErrDenied},
		{"perm via role", auth(func(a *policy.Access) { a.AllPerms = []string{"posts:delete"} }), admin, policy.RequestAttrs{}, nil},
		{"perm missing", auth(func(a *policy.Access) { a.AnyPerms = []string{"billing:read"} }), admin, policy.RequestAttrs{}, policy.ErrDenied},
		{"rule allows", auth(func(a *policy.Access) { a.Rule = `request.origin == "https://app.example" && channel.name == ""` }), alice,
			policy.RequestAttrs{Origin: "https://app.example"}, nil},
		{"rule denies", auth(func(a *policy.Access) { a.Rule = `request.origin == "https://app.example"` }), alice,
			policy.RequestAttrs{Origin: "https://evil.example"}, policy.ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, err := s.CompileGuard(tt.access)
			if err != nil {
				t.Fatal(err)
			}
			err = g.Allow(tt.sub, tt.req)
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Allow = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCompileGuardRejects(t *testing.T) {
	t.Parallel()
	s := mustNew(t, policy.Config{})
	for _, a := range []policy.Access{
		{Mode: policy.ModeToken},
		{Mode: policy.ModeAuthenticated, UserLimited: true},
		{Mode: policy.ModeAuthenticated, Rule: `channel.name`},
		{Mode: policy.ModeAuthenticated, AnyPerms: []string{"x*"}},
		{Rule: `true`},
	} {
		if _, err := s.CompileGuard(a); err == nil || !strings.HasPrefix(err.Error(), "policy: guard: ") {
			t.Errorf("CompileGuard(%+v) = %v, want a policy: guard: error", a, err)
		}
	}
	var g *policy.Guard
	if err := g.Allow(policy.Subject{User: "a"}, policy.RequestAttrs{}); !errors.Is(err, policy.ErrDenied) {
		t.Errorf("nil Guard allowed: %v", err)
	}
}

func TestModeString(t *testing.T) {
	t.Parallel()
	for m, want := range map[policy.Mode]string{policy.ModeDeny: "deny", policy.ModeAuthenticated: "authenticated", policy.ModeToken: "token", 9: "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
	if policy.OpSubscribe.String() != "subscribe" || policy.OpPublish.String() != "publish" {
		t.Error("Op.String")
	}
}
