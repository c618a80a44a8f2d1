package livegate_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// connectAs dials and connects with an identity of the test's choosing.
func (e *env) connectAs(t testing.TB, id auth.Identity) *rawConn {
	t.Helper()
	tok, _, err := e.signer.Sign(id, auth.KindConnect, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	if r := c.reply(1); r.Error != nil {
		t.Fatalf("connect: %+v", r.Error)
	}
	return c
}

func (e *env) subToken(t testing.TB, user string, channels ...string) string {
	t.Helper()
	tok, _, err := e.signer.Sign(auth.Identity{User: user, Channels: channels}, auth.KindSubscribe, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()

	// Session: its live connections close 4403, its tokens stop working.
	s1 := e.connectAs(t, auth.Identity{User: "alice", Session: "s1"})
	s2 := e.connectAs(t, auth.Identity{User: "alice", Session: "s2"})
	spare, _, _ := e.signer.Sign(auth.Identity{User: "alice", Session: "s1"}, auth.KindConnect, time.Minute)
	if n, err := e.gw.RevokeSession(ctx, "s1"); err != nil || n != 1 {
		t.Fatalf("RevokeSession: %d %v", n, err)
	}
	s1.expectClose(protocol.CloseForbidden)
	s2.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:a"})
	if r := s2.reply(2); r.Error != nil {
		t.Fatalf("other session affected: %+v", r.Error)
	}
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: spare})
	c.expectClose(protocol.CloseForbidden)

	// Token: only the connection it opened.
	tok, id, _ := e.signer.Sign(auth.Identity{User: "bob"}, auth.KindConnect, time.Minute)
	b1 := e.dial(t)
	b1.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	b1.reply(1)
	b2 := e.connectAs(t, auth.Identity{User: "bob"})
	if n, err := e.gw.RevokeToken(ctx, id.TokenID); err != nil || n != 1 {
		t.Fatalf("RevokeToken: %d %v", n, err)
	}
	b1.expectClose(protocol.CloseForbidden)
	b2.sendCmd(2, "unsubscribe", protocol.UnsubscribeParams{Channel: "room:x"})
	if r := b2.reply(2); r.Error == nil || r.Error.Code != protocol.CodeBadRequest {
		t.Fatalf("other token affected: %+v", r)
	}

	// User: every connection, every token issued so far; a later login works.
	c1 := e.connectAs(t, auth.Identity{User: "carol", Session: "x"})
	c2 := e.connectAs(t, auth.Identity{User: "carol", Session: "y"})
	old, _, _ := e.signer.Sign(auth.Identity{User: "carol"}, auth.KindConnect, time.Minute)
	if n, err := e.gw.RevokeUser(ctx, "carol"); err != nil || n != 2 {
		t.Fatalf("RevokeUser: %d %v", n, err)
	}
	c1.expectClose(protocol.CloseForbidden)
	c2.expectClose(protocol.CloseForbidden)
	c3 := e.dial(t)
	c3.sendCmd(1, "connect", protocol.ConnectParams{Token: old})
	c3.expectClose(protocol.CloseForbidden)
	time.Sleep(1100 * time.Millisecond) // iat has second resolution
	e.connectAs(t, auth.Identity{User: "carol"})
	if !e.events.has(audit.TypeRevoked, "user_revoked") {
		t.Fatal("no revocation event")
	}
}

func TestCommandAfterExpiryRefused(t *testing.T) {
	t.Parallel()
	// A long jitter keeps the socket open past exp: the command itself must
	// be refused.
	e := newEnv(t, func(c *livegate.Config) { c.ExpiryJitter = time.Minute })
	registerSay(t, e.gw)
	watcher := e.connect(t, "watcher")
	watcher.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:exp"})
	watcher.reply(2)
	// Times in tokens have second resolution: a few seconds of life keep
	// the connect itself clear of the expiry on a slow machine.
	tok, id, _ := e.signer.Sign(auth.Identity{User: "alice"}, auth.KindConnect, 3*time.Second)
	c := e.dial(t)
	c.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
	if r := c.reply(1); r.Error != nil {
		t.Fatal(r.Error)
	}
	time.Sleep(time.Until(id.ExpiresAt) + 200*time.Millisecond)
	c.sendCmd(2, "event", protocol.EventParams{Name: "say", Payload: json.RawMessage(`{"room":"exp","text":"late"}`)})
	c.expectClose(protocol.CloseTokenExpired)
	if _, err := e.gw.Publish(context.Background(), "room:exp", "marker"); err != nil {
		t.Fatal(err)
	}
	if p := watcher.push(); string(p.Data) != `"marker"` {
		t.Fatalf("expired connection's event ran: %s", p.Data)
	}
}

func TestRefreshWithAnotherUsersTokenCloses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for name, other := range map[string]auth.Identity{
		"other user":    {User: "mallory", Session: "s"},
		"other session": {User: "alice", Session: "stolen"},
		"other tenant":  {User: "alice", Session: "s", Tenant: "globex"},
	} {
		t.Run(name, func(t *testing.T) {
			c := e.connectAs(t, auth.Identity{User: "alice", Session: "s"})
			tok, _, _ := e.signer.Sign(other, auth.KindConnect, time.Minute)
			c.sendCmd(2, "refresh", protocol.RefreshParams{Token: tok})
			c.expectClose(protocol.CloseForbidden)
		})
	}
	if !e.events.has(audit.TypeRefreshFailed, "identity_mismatch") {
		t.Fatal("no refresh_failed event")
	}
}

func TestConcurrentConnectsWithOneTokenOneWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.token(t, "alice")
	const n = 8
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = e.dial(t)
	}
	var wg sync.WaitGroup
	results := make(chan bool, n)
	for _, c := range conns {
		wg.Add(1)
		go func(c *rawConn) {
			defer wg.Done()
			_ = c.ws.Write(context.Background(), 1, []byte(`{"id":1,"method":"connect","params":{"token":"`+tok+`"}}`))
			b, err := c.read()
			results <- err == nil && strings.Contains(string(b), `"result"`)
		}(c)
	}
	wg.Wait()
	close(results)
	won := 0
	for ok := range results {
		if ok {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d connections won with one token, want 1", won)
	}
}

func TestKeyRotationAndKid(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	hmacKey := []byte("rotation-hmac-secret-0123456789abcdef")
	e := newEnv(t, func(c *livegate.Config) {
		c.TokenHMACSecret = nil
		c.TokenAlgorithm = ""
		c.TokenKeys = []auth.Key{
			{ID: "rsa-1", Algorithm: "RS256", PublicKey: &rsaKey.PublicKey},
			{ID: "hmac-1", Algorithm: "HS256", Secret: hmacKey},
		}
	})
	sign := func(method jwt.SigningMethod, kid string, key any) string {
		tk := jwt.NewWithClaims(method, validClaims("alice"))
		if kid != "" {
			tk.Header["kid"] = kid
		}
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	try := func(tok string) protocol.CloseCode {
		c := e.dial(t)
		c.sendCmd(1, "connect", protocol.ConnectParams{Token: tok})
		b, err := c.read()
		if err == nil && strings.Contains(string(b), `"result"`) {
			return 0
		}
		for err == nil {
			_, err = c.read()
		}
		return protocol.CloseCode(wsStatus(err))
	}
	cases := []struct {
		name string
		tok  string
		want protocol.CloseCode
	}{
		{"rsa kid", sign(jwt.SigningMethodRS256, "rsa-1", rsaKey), 0},
		{"hmac kid", sign(jwt.SigningMethodHS256, "hmac-1", hmacKey), 0},
		{"unknown kid", sign(jwt.SigningMethodHS256, "hmac-2", hmacKey), protocol.CloseUnauthorized},
		{"no kid", sign(jwt.SigningMethodHS256, "", hmacKey), protocol.CloseUnauthorized},
		{"alg confusion: RSA public key as HS256 secret", sign(jwt.SigningMethodHS256, "rsa-1", pubPEM), protocol.CloseUnauthorized},
		{"alg confusion: DER bytes", sign(jwt.SigningMethodHS256, "rsa-1", pubDER), protocol.CloseUnauthorized},
		{"hmac kid with RS256 header", sign(jwt.SigningMethodRS256, "hmac-1", rsaKey), protocol.CloseUnauthorized},
	}
	for _, tt := range cases {
		if got := try(tt.tok); got != tt.want {
			t.Errorf("%s: close %d, want %d", tt.name, got, tt.want)
		}
	}
	// Rotation without restart: hmac-1 out, hmac-2 in.
	hmac2 := []byte("rotation-hmac-secret-2-0123456789abcdef")
	if err := e.gw.SetTokenKeys([]auth.Key{{ID: "hmac-2", Algorithm: "HS256", Secret: hmac2}}); err != nil {
		t.Fatal(err)
	}
	if got := try(sign(jwt.SigningMethodHS256, "hmac-1", hmacKey)); got != protocol.CloseUnauthorized {
		t.Errorf("retired key still accepted: %d", got)
	}
	if got := try(sign(jwt.SigningMethodHS256, "hmac-2", hmac2)); got != 0 {
		t.Errorf("new key refused: %d", got)
	}
	if err := e.gw.SetTokenKeys([]auth.Key{{ID: "weak", Algorithm: "HS256", Secret: []byte("short")}}); err == nil {
		t.Fatal("weak key accepted")
	}
	if got := try(sign(jwt.SigningMethodHS256, "hmac-2", hmac2)); got != 0 {
		t.Errorf("failed rotation dropped the current key: %d", got)
	}
}

func TestSubscriptionTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Namespaces = append(defaultNamespaces(), policy.NamespaceConfig{
			Name: "priv", Subscribe: policy.Access{Mode: policy.ModeToken},
		})
	})
	alice := e.connect(t, "alice")
	try := func(ch, tok string) *protocol.Error {
		alice.sendCmd(5, "subscribe", protocol.SubscribeParams{Channel: ch, Token: tok})
		return alice.reply(5).Error
	}
	forged := strings.Replace(e.subToken(t, "alice", "priv:a"), ".", ".x", 1)
	for name, err := range map[string]*protocol.Error{
		"no token":               try("priv:a", ""),
		"token for channel b":    try("priv:a", e.subToken(t, "alice", "priv:b")),
		"token for another user": try("priv:a", e.subToken(t, "bob", "priv:a")),
		"prefix trick":           try("priv:a", e.subToken(t, "alice", "priv:ab")),
		"connect token":          try("priv:a", e.token(t, "alice")),
		"forged":                 try("priv:a", forged),
	} {
		if err == nil || err.Code != protocol.CodeForbidden {
			t.Errorf("%s: %+v, want forbidden", name, err)
		}
	}
	if err := try("priv:a", e.subToken(t, "alice", "priv:a", "priv:c")); err != nil {
		t.Fatalf("valid token refused: %+v", err)
	}
	// A bad token is refused even on a channel that needs none.
	if err := try("room:open", e.subToken(t, "bob", "room:open")); err == nil {
		t.Fatal("foreign subscription token accepted on an open channel")
	}
	if !e.events.has(audit.TypeChannelDenied, "sub_token_other_user") {
		t.Fatal("no event for another user's token")
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Namespaces = append(defaultNamespaces(), policy.NamespaceConfig{
			Name: "org", Subscribe: policy.Authenticated, Publish: policy.Authenticated,
			TenantScoped: true, HistorySize: 10,
		})
	})
	ctx := context.Background()
	acme := e.connectAs(t, auth.Identity{User: "alice", Tenant: "acme"})
	globex := e.connectAs(t, auth.Identity{User: "bob", Tenant: "globex"})
	var acmeSub protocol.SubscribeResult
	acme.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "org:general"})
	_ = json.Unmarshal(acme.reply(2).Result, &acmeSub)
	globex.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "org:general"})
	globex.reply(2)

	if _, err := e.gw.Publish(ctx, "org:general", "acme only", livegate.WithTenant("acme")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gw.Publish(ctx, "org:general", "globex only", livegate.WithTenant("globex")); err != nil {
		t.Fatal(err)
	}
	if p := acme.push(); p.Channel != "org:general" || string(p.Data) != `"acme only"` {
		t.Fatalf("acme got %+v %s", p, p.Data)
	}
	if p := globex.push(); string(p.Data) != `"globex only"` {
		t.Fatalf("globex got %s", p.Data)
	}
	// History of the other tenant cannot be read with its stream position.
	snoop := e.connectAs(t, auth.Identity{User: "eve", Tenant: "globex"})
	snoop.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "org:general",
		Since: &protocol.StreamPosition{Offset: 0, Epoch: acmeSub.Epoch}})
	var res protocol.SubscribeResult
	_ = json.Unmarshal(snoop.reply(2).Result, &res)
	for _, p := range res.Publications {
		if strings.Contains(string(p.Data), "acme") {
			t.Fatalf("cross-tenant history read: %s", p.Data)
		}
	}
	if res.Recovered == nil || *res.Recovered {
		t.Fatalf("foreign epoch recovered: %+v", res)
	}
	// Crafted names cannot reach another tenant's channel.
	for _, ch := range []string{"org:acme/general", "org:@acme:general", "org:/acme/general", "org:general#acme", "org:acme:general", "org:..:acme"} {
		snoop.sendCmd(3, "subscribe", protocol.SubscribeParams{Channel: ch})
		if r := snoop.reply(3); r.Error == nil {
			snoop.sendCmd(4, "unsubscribe", protocol.UnsubscribeParams{Channel: ch})
			snoop.reply(4)
		}
	}
	if _, err := e.gw.Publish(ctx, "org:general", "acme again", livegate.WithTenant("acme")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gw.Publish(ctx, "org:general", "globex again", livegate.WithTenant("globex")); err != nil {
		t.Fatal(err)
	}
	for {
		p := snoop.push()
		if strings.Contains(string(p.Data), "acme") {
			t.Fatalf("crafted name reached acme: %+v", p)
		}
		if string(p.Data) == `"globex again"` {
			break
		}
	}
	// A connection without a tenant cannot use tenant-scoped namespaces,
	// and the server cannot publish into them without a tenant.
	none := e.connect(t, "nobody")
	none.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "org:general"})
	if r := none.reply(2); r.Error == nil {
		t.Fatal("tenant-less subscribe accepted")
	}
	if _, err := e.gw.Publish(ctx, "org:general", "x"); err == nil {
		t.Fatal("tenant-less publish accepted")
	}
}

func TestHandlerPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.Roles = []policy.Role{
			{Name: "viewer", Perms: []string{"posts:read"}},
			{Name: "editor", Inherits: []string{"viewer"}, Perms: []string{"posts:*"}},
			{Name: "admin", Inherits: []string{"editor"}, Perms: []string{"*"}},
		}
		c.Namespaces = append(defaultNamespaces(), policy.NamespaceConfig{
			Name: "ops", Subscribe: policy.Access{Mode: policy.ModeAuthenticated, Rule: `request.ip startsWith "10."`},
		}, policy.NamespaceConfig{
			Name: "staff", Subscribe: policy.Access{Mode: policy.ModeAuthenticated, Groups: []string{"editor"}},
		})
	})
	ok := livegate.HandlerFunc[struct{}](func(context.Context, *livegate.Request, struct{}) (any, error) { return "done", nil })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.gw.Handle("edit_post", ok, livegate.Require(policy.Access{AllPerms: []string{"posts:edit"}})))
	must(e.gw.Handle("admin_only", ok, livegate.Require(policy.Access{Groups: []string{"admin"}})))
	must(e.gw.Handle("office", ok, livegate.Require(policy.Access{Rule: `request.ip startsWith "10."`})))
	if err := e.gw.Handle("broken", ok, livegate.Require(policy.Access{Rule: `subject.nope ==`})); err == nil {
		t.Fatal("invalid rule accepted")
	}
	call := func(c *rawConn, name string) string {
		c.send(`{"id":9,"method":"event","params":{"name":"` + name + `","payload":{}}}`)
		return c.rawReply()
	}
	viewer := e.connectAs(t, auth.Identity{User: "v", Groups: []string{"viewer"}})
	editor := e.connectAs(t, auth.Identity{User: "ed", Groups: []string{"editor"}})
	lookalike := e.connectAs(t, auth.Identity{User: "x", Perms: []string{"postsx:edit", "posts"}})
	admin := e.connectAs(t, auth.Identity{User: "a", Groups: []string{"admin"}})
	unknown := call(viewer, "no_such_event")

	for _, tt := range []struct {
		c       *rawConn
		event   string
		allowed bool
	}{
		{viewer, "edit_post", false},
		{editor, "edit_post", true},
		{lookalike, "edit_post", false},
		{admin, "edit_post", true},
		{editor, "admin_only", false},
		{admin, "admin_only", true},
		{admin, "office", false}, // loopback is not 10.x
	} {
		got := call(tt.c, tt.event)
		if tt.allowed && got != `{"id":9,"result":"done"}` {
			t.Errorf("%s: %s, want allowed", tt.event, got)
		}
		if !tt.allowed && got != unknown {
			t.Errorf("%s: %s, want the unknown-event reply %s", tt.event, got, unknown)
		}
	}
	// Namespace rules: ABAC and group, with role inheritance.
	for _, tt := range []struct {
		c    *rawConn
		ch   string
		want bool
	}{
		{admin, "ops:x", false},
		{viewer, "staff:x", false},
		{editor, "staff:x", true},
		{admin, "staff:x", true},
	} {
		tt.c.sendCmd(11, "subscribe", protocol.SubscribeParams{Channel: tt.ch})
		r := tt.c.reply(11)
		if (r.Error == nil) != tt.want {
			t.Errorf("subscribe %s: %+v, want allowed=%v", tt.ch, r.Error, tt.want)
		}
	}
	if !e.events.has(audit.TypeEventDenied, "forbidden_event") {
		t.Fatal("no forbidden_event event")
	}
}

func wsStatus(err error) int {
	var code int
	_, _ = fmt.Sscanf(err.Error()[strings.Index(err.Error(), "StatusCode(")+len("StatusCode("):], "%d", &code)
	return code
}

func TestNamespaceAuthorizer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	owners := map[string]string{"room:task-1": "alice"}
	err := e.gw.Authorize("room", func(_ context.Context, id auth.Identity, ch string) error {
		if owners[ch] != "" && owners[ch] != id.User {
			return fmt.Errorf("%s is not the owner of %s", id.User, ch)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.gw.Authorize("nope", func(context.Context, auth.Identity, string) error { return nil }); err == nil {
		t.Fatal("authorizer for an unknown namespace accepted")
	}
	alice, bob := e.connect(t, "alice"), e.connect(t, "bob")
	alice.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:task-1"})
	if r := alice.reply(2); r.Error != nil {
		t.Fatalf("owner refused: %+v", r.Error)
	}
	bob.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "room:task-1"})
	if r := bob.reply(2); r.Error == nil || r.Error.Code != protocol.CodeForbidden {
		t.Fatalf("non-owner: %+v", r)
	}
	if !e.events.has(audit.TypeChannelDenied, "authorizer") {
		t.Fatal("no channel_denied event")
	}
}
