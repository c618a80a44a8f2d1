package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/livegate/livegate/policy"
)

func tenantSet(t testing.TB) *policy.Set {
	return mustNew(t, policy.Config{Namespaces: []policy.NamespaceConfig{
		{Name: "team", TenantScoped: true, Subscribe: policy.Authenticated, Publish: policy.Authenticated},
		{Name: "docs", TenantScoped: true, Subscribe: policy.Access{Mode: policy.ModeAuthenticated, Rule: `channel.name == "docs:a" && subject.tenant != ""`}},
		{Name: "pub", Subscribe: policy.Authenticated},
	}})
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	s := tenantSet(t)
	a := policy.Subject{User: "alice", Tenant: "acme"}
	b := policy.Subject{User: "alice", Tenant: "beta"}
	_, ia, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: a, Channel: "team:lobby"})
	if err != nil {
		t.Fatal(err)
	}
	_, ib, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: b, Channel: "team:lobby"})
	if err != nil {
		t.Fatal(err)
	}
	if ia == ib {
		t.Fatalf("tenants share internal channel %q", ia)
	}
	if ia != "team:@acme/lobby" || ib != "team:@beta/lobby" {
		t.Fatalf("internal names %q, %q", ia, ib)
	}
	for _, in := range []string{ia, ib} {
		if got := policy.External(in); got != "team:lobby" {
			t.Errorf("External(%q) = %q", in, got)
		}
		if policy.ValidChannel(in) == nil {
			t.Errorf("internal name %q is a valid client channel", in)
		}
		if policy.Namespace(in) != "team" {
			t.Errorf("Namespace(%q) = %q", in, policy.Namespace(in))
		}
	}
	if policy.InternalTenant(ia) != "acme" || policy.InternalTenant("team:lobby") != "" {
		t.Error("InternalTenant")
	}
	// Rules see the client's name.
	if _, _, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: a, Channel: "docs:a"}); err != nil {
		t.Errorf("rule on tenant channel: %v", err)
	}
	// Shared namespaces are unaffected by the subject's tenant.
	_, in, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: a, Channel: "pub:news"})
	if err != nil || in != "pub:news" || policy.External(in) != in {
		t.Errorf("shared namespace: %q, %v", in, err)
	}
}

func TestTenantDenied(t *testing.T) {
	t.Parallel()
	s := tenantSet(t)
	tests := []struct {
		name, tenant, channel string
		op                    policy.Op
		want                  error
	}{
		{"missing tenant", "", "team:lobby", policy.OpSubscribe, policy.ErrNoTenant},
		{"missing tenant publish", "", "team:lobby", policy.OpPublish, policy.ErrNoTenant},
		{"slash in tenant", "acme/x", "team:lobby", policy.OpSubscribe, policy.ErrNoTenant},
		{"at in tenant", "a@b", "team:lobby", policy.OpSubscribe, policy.ErrNoTenant},
		{"colon in tenant", "a:b", "team:lobby", policy.OpSubscribe, policy.ErrNoTenant},
		{"hash in tenant", "a#b", "team:lobby", policy.OpSubscribe, policy.ErrNoTenant},
		{"space in tenant", "a b", "team:lobby", policy.OpSubscribe, policy.ErrNoTenant},
		{"long tenant", strings.Repeat("t", 65), "team:lobby", policy.OpSubscribe, policy.ErrNoTenant},
		{"another tenant's internal name", "acme", "team:@beta/lobby", policy.OpSubscribe, policy.ErrInvalidChannel},
		{"slash in channel", "acme", "team:beta/lobby", policy.OpSubscribe, policy.ErrInvalidChannel},
		{"at in channel", "acme", "team:@beta", policy.OpSubscribe, policy.ErrInvalidChannel},
		{"dot-dot path", "acme", "team:../beta/lobby", policy.OpSubscribe, policy.ErrInvalidChannel},
		{"internal name in other namespace", "acme", "pub:@beta/lobby", policy.OpSubscribe, policy.ErrInvalidChannel},
		{"user limited of other user", "acme", "team:dm#bob,carol", policy.OpSubscribe, policy.ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sub := policy.Subject{User: "alice", Tenant: tt.tenant}
			_, in, err := s.Authorize(tt.op, policy.Check{Subject: sub, Channel: tt.channel})
			if !errors.Is(err, tt.want) || in != "" {
				t.Fatalf("Authorize = (%q, %v), want %v", in, err, tt.want)
			}
			if errors.Is(tt.want, policy.ErrNoTenant) && !errors.Is(err, policy.ErrDenied) {
				t.Fatalf("ErrNoTenant does not wrap ErrDenied: %v", err)
			}
		})
	}
}

// TestTenantCraftedNames checks that names a client may legally write map
// inside the client's own tenant, and that no two (tenant, channel) pairs
// share an internal name.
func TestTenantCraftedNames(t *testing.T) {
	t.Parallel()
	s := tenantSet(t)
	tenants := []string{"a", "b", "a.b", "a-b", "ab", "b_a", "A", "..", "-", "team"}
	channels := []string{
		"team:x", "team:a", "team:b:x", "team:a:x", "team:-b-x", "team:.b.x",
		"team:x#alice", "team:b#alice", "team:a#alice,b", "team:ab", "team:b.x",
		"team:team:x", "team:_", "team:x:#alice",
	}
	seen := map[string]string{}
	for _, tenant := range tenants {
		for _, ch := range channels {
			sub := policy.Subject{User: "alice", Tenant: tenant}
			_, in, err := s.Authorize(policy.OpPublish, policy.Check{Subject: sub, Channel: ch})
			if err != nil {
				t.Fatalf("%s %s: %v", tenant, ch, err)
			}
			if !strings.HasPrefix(in, "team:@"+tenant+"/") || policy.InternalTenant(in) != tenant {
				t.Errorf("tenant %q channel %q maps to %q, outside its tenant", tenant, ch, in)
			}
			if policy.External(in) != ch {
				t.Errorf("External(%q) = %q, want %q", in, policy.External(in), ch)
			}
			key := tenant + " " + ch
			if other, dup := seen[in]; dup {
				t.Errorf("%q and %q share internal name %q", other, key, in)
			}
			seen[in] = key
		}
	}
}

func TestTenantUserLimited(t *testing.T) {
	t.Parallel()
	s := tenantSet(t)
	sub := policy.Subject{User: "alice", Tenant: "acme"}
	_, in, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: sub, Channel: "team:dm#alice,bob"})
	if err != nil {
		t.Fatal(err)
	}
	if in != "team:@acme/dm#alice,bob" || policy.External(in) != "team:dm#alice,bob" {
		t.Fatalf("internal %q", in)
	}
	if users, ok := policy.ChannelUsers(in); !ok || len(users) != 2 || users[0] != "alice" || users[1] != "bob" {
		t.Fatalf("ChannelUsers(%q) = %q, %v", in, users, ok)
	}
}

func TestInternal(t *testing.T) {
	t.Parallel()
	s := tenantSet(t)
	tests := []struct {
		name, channel, tenant, want string
		err                         error
	}{
		{"tenant scoped", "team:lobby", "acme", "team:@acme/lobby", nil},
		{"tenant scoped user limited", "team:dm#a,b", "acme", "team:@acme/dm#a,b", nil},
		{"tenant scoped without tenant", "team:lobby", "", "", policy.ErrNoTenant},
		{"tenant scoped invalid tenant", "team:lobby", "a/b", "", policy.ErrNoTenant},
		{"shared", "pub:news", "", "pub:news", nil},
		{"shared with tenant", "pub:news", "acme", "", policy.ErrDenied},
		{"invalid channel", "team:@b/x", "acme", "", policy.ErrInvalidChannel},
		{"unknown namespace", "nope:x", "acme", "", policy.ErrUnknownNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got, err := s.Internal(tt.channel, tt.tenant)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Internal(%q, %q) = (%q, %v), want (%q, %v)", tt.channel, tt.tenant, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestValidTenant(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		t  string
		ok bool
	}{
		{"acme", true}, {"a.b-c_D9", true}, {strings.Repeat("x", 64), true},
		{"", false}, {strings.Repeat("x", 65), false}, {"a/b", false}, {"a@b", false},
		{"a:b", false}, {"a#b", false}, {"a,b", false}, {"a b", false}, {"é", false}, {"a\x00", false},
	} {
		if got := policy.ValidTenant(tt.t); got != tt.ok {
			t.Errorf("ValidTenant(%q) = %v, want %v", tt.t, got, tt.ok)
		}
	}
}

func TestExternalIdentity(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"room:lobby", "dm:x#a,b", "", "nocolon", "ns:@noslash"} {
		if got := policy.External(in); got != in {
			t.Errorf("External(%q) = %q", in, got)
		}
	}
}

// FuzzTenantChannel checks the mapping for any tenant and channel the
// policy accepts: it round-trips and stays inside the tenant.
func FuzzTenantChannel(f *testing.F) {
	s := tenantSet(f)
	f.Add("acme", "team:lobby")
	f.Add("a", "team:b#a")
	f.Add("a.b", "team:x:y")
	f.Fuzz(func(t *testing.T, tenant, channel string) {
		sub := policy.Subject{User: "a", Tenant: tenant}
		_, in, err := s.Authorize(policy.OpPublish, policy.Check{Subject: sub, Channel: channel})
		if err != nil {
			return
		}
		if policy.InternalTenant(in) != tenant || policy.External(in) != channel || policy.ValidChannel(in) == nil {
			t.Fatalf("tenant %q channel %q -> %q", tenant, channel, in)
		}
	})
}
