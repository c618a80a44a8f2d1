package apikey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/livegate/livegate/apikey"
)

func TestParseScope(t *testing.T) {
	t.Parallel()
	good := []string{
		"publish:room:*", "publish:*", "publish:room:lobby", "publish:room:*:chat",
		"publish:room:a*b", "presence:room:*", "history:news:*", "publish:room:x#*",
		"disconnect", "revoke", "channels", "admin", "publish:Room_1.x-y:*",
	}
	for _, s := range good {
		sc, err := apikey.ParseScope(s)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", s, err)
			continue
		}
		if sc.String() != s {
			t.Errorf("ParseScope(%q).String() = %q", s, sc.String())
		}
	}
	bad := []string{
		"", "publish", "publish:", "presence", "history:", "delete", "delete:room:*",
		"Publish:room:*", "admin:*", "disconnect:room:*", "channels:x", "broadcast:room:*",
		"publish:*:x", "publish:ro*m:x", "publish:room", "publish::x", "publish:room:",
		"publish:room:**", "publish:room:a b", "publish:room:a,b", "publish:room:é",
		"publish:room:x/y", "publish:room:@t/x", "publish:ro#om:x", "publish:room:" + strings.Repeat("a", 300),
		"publish:room:x#", "publish:*x",
	}
	for _, s := range bad {
		if sc, err := apikey.ParseScope(s); err == nil {
			t.Errorf("ParseScope(%q) = %+v, want an error", s, sc)
		} else if !errors.Is(err, apikey.ErrInvalidScope) {
			t.Errorf("ParseScope(%q) error %v does not wrap ErrInvalidScope", s, err)
		}
	}
}

func TestParseScopes(t *testing.T) {
	t.Parallel()
	ss, err := apikey.ParseScopes(" publish:room:* , disconnect,,publish:room:*")
	if err != nil {
		t.Fatal(err)
	}
	if got := ss.String(); got != "publish:room:*,disconnect" {
		t.Fatalf("String() = %q", got)
	}
	for _, s := range []string{"", " , ", "publish:room:*,nope", "admin,publish"} {
		if _, err := apikey.ParseScopes(s); !errors.Is(err, apikey.ErrInvalidScope) {
			t.Errorf("ParseScopes(%q) = %v, want ErrInvalidScope", s, err)
		}
	}
	var many []string
	for i := range apikey.MaxScopes + 1 {
		many = append(many, "publish:room:"+strings.Repeat("x", i+1))
	}
	if _, err := apikey.ParseScopes(strings.Join(many, ",")); !errors.Is(err, apikey.ErrInvalidScope) {
		t.Errorf("%d scopes accepted", len(many))
	}
}

func TestScopesAllow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scopes  string
		verb    apikey.Verb
		channel string
		want    bool
	}{
		{"publish:room:*", apikey.VerbPublish, "room:1", true},
		{"publish:room:*", apikey.VerbPublish, "room:a:b", true},
		{"publish:room:*", apikey.VerbPublish, "room:x#alice,bob", true},
		{"publish:room:*", apikey.VerbPublish, "admin:x", false},
		{"publish:room:*", apikey.VerbPublish, "roomx:1", false},
		{"publish:room:*", apikey.VerbPublish, "room:", false},
		{"publish:room:*", apikey.VerbPublish, "xroom:1", false},
		{"publish:room:*", apikey.VerbPublish, "admin:room:1", false},
		{"publish:room:*", apikey.VerbPublish, "room:1/../admin:x", false},
		{"publish:room:*", apikey.VerbPublish, "room:@acme/1", false},
		{"publish:room:*", apikey.VerbHistory, "room:1", false},
		{"publish:room:*", apikey.VerbDisconnect, "", false},
		{"publish:room:lobby", apikey.VerbPublish, "room:lobby", true},
		{"publish:room:lobby", apikey.VerbPublish, "room:lobby2", false},
		{"publish:room:lobby", apikey.VerbPublish, "room:lobb", false},
		{"publish:room:*:chat", apikey.VerbPublish, "room:42:chat", true},
		{"publish:room:*:chat", apikey.VerbPublish, "room:a:b:chat", true},
		{"publish:room:*:chat", apikey.VerbPublish, "room::chat", false},
		{"publish:room:*:chat", apikey.VerbPublish, "room:42:chat2", false},
		{"publish:room:a*b", apikey.VerbPublish, "room:ab", false},
		{"publish:room:a*b", apikey.VerbPublish, "room:axxb", true},
		{"publish:room:a*b", apikey.VerbPublish, "room:abab", true},
		{"publish:room:x#*", apikey.VerbPublish, "room:x#alice", true},
		{"publish:room:x#*", apikey.VerbPublish, "room:x", false},
		{"publish:*", apikey.VerbPublish, "admin:x", true},
		{"publish:*", apikey.VerbPublish, "not a channel", false},
		{"presence:room:*", apikey.VerbPresence, "room:1", true},
		{"presence:room:*", apikey.VerbPublish, "room:1", false},
		{"history:room:*", apikey.VerbHistory, "room:1", true},
		{"history:room:*", apikey.VerbHistory, "news:1", false},
		{"disconnect", apikey.VerbDisconnect, "", true},
		{"disconnect", apikey.VerbRevoke, "", false},
		{"revoke", apikey.VerbRevoke, "", true},
		{"channels", apikey.VerbChannels, "", true},
		{"channels", apikey.VerbPublish, "room:1", false},
		{"admin", apikey.VerbPublish, "admin:x", true},
		{"admin", apikey.VerbRevoke, "", true},
		{"admin", apikey.Verb("delete"), "", false},
		{"publish:room:*,publish:news:*", apikey.VerbPublish, "news:1", true},
		{"publish:room:*,publish:news:*", apikey.VerbPublish, "sports:1", false},
	}
	for _, tt := range tests {
		ss, err := apikey.ParseScopes(tt.scopes)
		if err != nil {
			t.Fatal(err)
		}
		if got := ss.Allows(tt.verb, tt.channel); got != tt.want {
			t.Errorf("%s allows %s %q = %v, want %v", tt.scopes, tt.verb, tt.channel, got, tt.want)
		}
	}
}

// FuzzScopeMatch checks that a pattern never matches a channel in
// another namespace, and that a literal pattern matches only itself.
func FuzzScopeMatch(f *testing.F) {
	f.Add("room:*", "room:1")
	f.Add("room:*", "admin:x")
	f.Add("room:a*b*c", "room:aXbYc")
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		s, err := apikey.ParseScope("publish:" + pattern)
		if err != nil || pattern == "*" {
			return
		}
		if !s.Match(channel) {
			return
		}
		pns, _, _ := strings.Cut(pattern, ":")
		cns, _, _ := strings.Cut(channel, ":")
		if pns != cns {
			t.Fatalf("%q matches %q in another namespace", pattern, channel)
		}
		if !strings.Contains(pattern, "*") && pattern != channel {
			t.Fatalf("literal %q matches %q", pattern, channel)
		}
	})
}
