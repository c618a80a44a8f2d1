package policy_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/livegate/livegate/policy"
)

// The documented grammars, written as regular expressions independently
// of the hand-written validators.
var (
	// channelRE: namespace ":" name, optionally "#" and a comma-separated
	// list of non-empty users; the namespace holds none of ":#,", the name
	// none of "#,", users no "#".
	channelRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]+:[A-Za-z0-9_.:\-]+(#[A-Za-z0-9_.:\-]+(,[A-Za-z0-9_.:\-]+)*)?$`)
	eventRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// FuzzValidChannel checks ValidChannel against the documented grammar
// (channelRE and MaxChannelLen), and that on accepted names Namespace,
// ChannelUsers, External and InternalTenant agree with it: a client name
// is never mistaken for an internal tenant-scoped one.
func FuzzValidChannel(f *testing.F) {
	for _, s := range []string{
		"room:lobby", "a-b_c.d:e:f-1", "dm:chat#alice,bob", "dm:chat#a:b,c.d",
		"r:" + strings.Repeat("x", 126), "r:" + strings.Repeat("x", 127),
		"", ":", "a:", ":b", "nocolon", "a#b:c", "a,b:c", "a:b#", "a:#x", "a:b#x#y", "a:b#x,", "a:b#,x",
		"a:b#x,,y", "a:b,c", "a:b,c#x", "a:,#x", "dm:alice,bob#carol", "team:@acme/lobby", "a:b/c", "a:b c", "a:b\x00", "a:\u00e9",
		"a:b\n", "A:Z", "a::", "a:b:#c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := policy.ValidChannel(name)
		grammar := len(name) <= policy.MaxChannelLen && channelRE.MatchString(name)
		if err != nil {
			if !errors.Is(err, policy.ErrInvalidChannel) {
				t.Fatalf("ValidChannel(%q) = %v, not ErrInvalidChannel", name, err)
			}
			if grammar {
				t.Fatalf("ValidChannel(%q) = %v, but the grammar accepts it", name, err)
			}
			return
		}
		if !grammar {
			t.Fatalf("ValidChannel(%q) = nil, but the grammar refuses it", name)
		}
		ns, rest, _ := strings.Cut(name, ":")
		if got := policy.Namespace(name); got != ns || ns == "" {
			t.Fatalf("Namespace(%q) = %q, want %q", name, got, ns)
		}
		users, limited := policy.ChannelUsers(name)
		if limited != strings.Contains(rest, "#") {
			t.Fatalf("ChannelUsers(%q) limited = %v", name, limited)
		}
		for _, u := range users {
			if u == "" || strings.ContainsAny(u, "#,") {
				t.Fatalf("ChannelUsers(%q) = %q: bad user %q", name, users, u)
			}
		}
		if got := policy.External(name); got != name {
			t.Fatalf("External(%q) = %q, want the name unchanged", name, got)
		}
		if got := policy.InternalTenant(name); got != "" {
			t.Fatalf("InternalTenant(%q) = %q for a client name", name, got)
		}
	})
}

// FuzzValidEventName checks ValidEventName against its documented
// grammar ^[a-z][a-z0-9_]{0,63}$ and MaxEventNameLen.
func FuzzValidEventName(f *testing.F) {
	for _, s := range []string{
		"say", "a", "a_1", strings.Repeat("a", 64), strings.Repeat("a", 65), "", "1a", "_a", "Say", "a-b",
		"a b", "a\x00", "\u0430", "a\n", "__proto__", "constructor", "a\u212a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := policy.ValidEventName(name)
		want := eventRE.MatchString(name)
		if got != want {
			t.Fatalf("ValidEventName(%q) = %v, grammar says %v", name, got, want)
		}
		if got && len(name) > policy.MaxEventNameLen {
			t.Fatalf("ValidEventName accepted %d bytes", len(name))
		}
	})
}

// FuzzTenantMappingInjective maps two (tenant, channel) pairs with
// Set.Internal and checks, beyond FuzzTenantChannel's single-pair round
// trip through Authorize, that: each mapping agrees with Authorize,
// round-trips through External and InternalTenant, keeps the namespace,
// is never itself a valid client channel when tenant-scoped, and that two
// different pairs never map to the same internal name (no tenant can
// reach another tenant's channel, nor a shared one).
func FuzzTenantMappingInjective(f *testing.F) {
	s := tenantSet(f)
	f.Add("acme", "team:lobby", "beta", "team:lobby")
	f.Add("a", "team:b/c", "a/b", "team:c")
	f.Add("a", "team:x#a,b", "a", "team:x#a")
	f.Add("", "pub:news", "acme", "pub:news")
	f.Add("acme", "team:lobby", "", "team:@acme/lobby")
	f.Add("a.b", "team:x:y", "a", "team:b:x:y")
	f.Add("acme", "docs:a", "acme", "team:a")
	f.Fuzz(func(t *testing.T, tenant1, channel1, tenant2, channel2 string) {
		in1, ok1 := checkMapping(t, s, tenant1, channel1)
		in2, ok2 := checkMapping(t, s, tenant2, channel2)
		if ok1 && ok2 && in1 == in2 && (tenant1 != tenant2 || channel1 != channel2) {
			t.Fatalf("(%q, %q) and (%q, %q) both map to %q", tenant1, channel1, tenant2, channel2, in1)
		}
	})
}

// checkMapping checks one pair's mapping and returns it.
func checkMapping(t *testing.T, s *policy.Set, tenant, channel string) (string, bool) {
	t.Helper()
	ns, in, err := s.Internal(channel, tenant)
	if err != nil {
		if !errors.Is(err, policy.ErrInvalidChannel) && !errors.Is(err, policy.ErrUnknownNamespace) && !errors.Is(err, policy.ErrDenied) {
			t.Fatalf("Internal(%q, %q) = %v: not a policy sentinel", channel, tenant, err)
		}
		return "", false
	}
	if policy.ValidChannel(channel) != nil {
		t.Fatalf("Internal(%q, %q) = %q for an invalid channel", channel, tenant, in)
	}
	if policy.External(in) != channel || policy.Namespace(in) != policy.Namespace(channel) {
		t.Fatalf("Internal(%q, %q) = %q: External %q, Namespace %q", channel, tenant, in, policy.External(in), policy.Namespace(in))
	}
	if ns.TenantScoped {
		if !policy.ValidTenant(tenant) || policy.InternalTenant(in) != tenant || policy.ValidChannel(in) == nil {
			t.Fatalf("Internal(%q, %q) = %q: InternalTenant %q, or a valid client name", channel, tenant, in, policy.InternalTenant(in))
		}
	} else if tenant != "" || in != channel || policy.InternalTenant(in) != "" {
		t.Fatalf("Internal(%q, %q) = %q in a shared namespace", channel, tenant, in)
	}
	// Authorize gives the same name to a subject of that tenant (the
	// "team" and "pub" namespaces let any authenticated subject in, a
	// user-limited channel any of its users).
	if ns.Name == "team" || ns.Name == "pub" {
		user := "u"
		if users, limited := policy.ChannelUsers(channel); limited {
			user = users[0]
		}
		_, ain, err := s.Authorize(policy.OpSubscribe, policy.Check{Subject: policy.Subject{User: user, Tenant: tenant}, Channel: channel})
		if err != nil || ain != in {
			t.Fatalf("Authorize(%q, tenant %q) = %q, %v; Internal = %q", channel, tenant, ain, err, in)
		}
	}
	return in, true
}
