package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/ratelimit"
)

const goodSecret = "0123456789abcdef0123456789abcdef-config-test"

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
	return p
}

// secretFile returns a 0600 file holding a valid HS256 secret.
func secretFile(t *testing.T) string { return writeFile(t, "token.key", goodSecret+"\n", 0o600) }

// load writes yaml to a 0600 file and loads it with env.
func load(t *testing.T, yaml string, env ...string) (*File, error) {
	t.Helper()
	return Load(writeFile(t, "livegate.yaml", yaml, 0o600), env)
}

// keys returns the keys named by err's KeyErrors.
func keys(err error) []string {
	var out []string
	for _, e := range Errors(err) {
		out = append(out, e.Key)
	}
	return out
}

// TestExampleValidatesAndCoversEveryKey keeps the embedded example true:
// it loads and validates (given the secret file it names), and with its
// commented-out settings enabled it holds every key of File.
func TestExampleValidatesAndCoversEveryKey(t *testing.T) {
	f, err := Parse("example.yaml", []byte(Example()), []string{"LIVEGATE_TOKENS_HMAC_SECRET_FILE=" + secretFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("example does not validate:\n%v", err)
	}
	if _, err := f.GatewayConfig(); err != nil {
		t.Fatal(err)
	}

	// Enable every "# key: value" line; the result must still parse
	// strictly (the commented keys are real keys) and cover every key.
	commented := regexp.MustCompile(`(?m)^(\s*)# (\s*(?:- )?[a-z_]+:(?: |$))`)
	full := commented.ReplaceAllString(Example(), "$1$2")
	g, err := Parse("example-full.yaml", []byte(full), nil)
	if err != nil {
		t.Fatalf("example with its commented settings enabled:\n%v", err)
	}
	for _, p := range schemaPaths(reflect.TypeFor[File](), "") {
		if _, ok := g.lines[p]; !ok {
			t.Errorf("key %s is missing from example.yaml", p)
		}
	}
}

// schemaPaths lists every key path of t, entries of lists as [0].
func schemaPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		k := yamlKey(t.Field(i))
		if k == "" {
			continue
		}
		p := joinPath(prefix, k)
		out = append(out, p)
		ft := t.Field(i).Type
		switch {
		case ft.Kind() == reflect.Struct && ft != durationType:
			out = append(out, schemaPaths(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, schemaPaths(ft.Elem(), p+"[0]")...)
		}
	}
	return out
}

func TestUnknownKeyIsRefusedWithKeyAndLine(t *testing.T) {
	_, err := load(t, `listen: 127.0.0.1:0
tokens:
  hmac_secert_file: /x
namespaces:
  - name: room
    histroy_size: 5
colour: blue
`)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	got := keys(err)
	want := []string{"tokens.hmac_secert_file", "namespaces[0].histroy_size", "colour"}
	if !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v (%v)", got, want, err)
	}
	es := Errors(err)
	if es[0].Line != 3 || es[1].Line != 6 || es[2].Line != 7 {
		t.Fatalf("lines: %v", err)
	}
	if !strings.Contains(es[0].Error(), `did you mean "hmac_secret_file"`) || !strings.Contains(es[0].Error(), "livegate.yaml:3:") {
		t.Fatalf("message: %v", es[0])
	}
}

func TestTypeErrorNamesKey(t *testing.T) {
	_, err := load(t, "listen: 127.0.0.1:0\nconnection:\n  ping_interval: often\n")
	es := Errors(err)
	if len(es) != 1 || es[0].Key != "connection.ping_interval" || es[0].Line != 3 {
		t.Fatalf("err = %v", err)
	}
	_, err = load(t, "listen: a\nlisten: b\n")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("duplicate key: %v", err)
	}
}

func TestDangerousSettingsAreRefused(t *testing.T) {
	sf := secretFile(t)
	key := "tokens:\n  hmac_secret_file: " + sf + "\n"
	short := writeFile(t, "short.key", "only-sixteen-byt", 0o600)
	open := writeFile(t, "open.key", goodSecret, 0o644)
	groupRead := writeFile(t, "group.key", goodSecret, 0o640)
	for _, c := range []struct {
		name, yaml string
		key, msg   string
	}{
		{"short HS256 secret file", "tokens:\n  hmac_secret_file: " + short + "\n", "tokens.hmac_secret_file", "at least 32"},
		{"short inline HS256 secret", "tokens:\n  hmac_secret: tooshort\n", "tokens.hmac_secret", "at least 32"},
		{"short key-set secret", "tokens:\n  keys:\n    - kid: a\n      alg: HS256\n      secret_file: " + short + "\n", "tokens.keys[0].secret_file", "at least 32"},
		{"world-readable secret file", "tokens:\n  hmac_secret_file: " + open + "\n", "tokens.hmac_secret_file", "mode 0644"},
		{"group-readable secret file", "tokens:\n  hmac_secret_file: " + groupRead + "\n", "tokens.hmac_secret_file", "group or others"},
		{"wildcard origin", key + "allowed_origins: ['*']\n", "allowed_origins[0]", "cross-site WebSocket hijacking"},
		{"skip origin check without CSRF key", key + "insecure_skip_origin_check: true\n", "insecure_skip_origin_check", "csrf_key_file"},
		{"debug on a public listener", key + "listen: 0.0.0.0:8080\ndebug: true\n", "debug", "loopback"},
		{"debug on all interfaces", key + "listen: :8080\ndebug: true\n", "debug", "loopback"},
		{"plain-http public URL", key + "public_url: http://app.example.com\n", "public_url", "https"},
		{"unknown access mode", key + "namespaces:\n  - name: room\n    subscribe:\n      mode: public\n", "namespaces[0].subscribe.mode", `"public"`},
		{"publish by token", key + "namespaces:\n  - name: room\n    publish:\n      mode: token\n", "namespaces[0].publish.mode", "subscribe only"},
		{"negative history", key + "namespaces:\n  - name: room\n    history_size: -1\n", "namespaces[0].history_size", "negative"},
		{"negative limit", key + "limits:\n  conns_per_ip: -1\n", "limits.conns_per_ip", "negative"},
		{"negative connection setting", key + "connection:\n  max_channels: -5\n", "connection.max_channels", "negative"},
		{"coalesce delay over 1s", key + "connection:\n  coalesce_delay: 2s\n", "connection.coalesce_delay", "at most 1s"},
		{"token leeway over 5m", key + "  leeway: 10m\n", "tokens.leeway", "between 0 and 5m"},
		{"bad rate", key + "limits:\n  attempts_per_ip: lots\n", "limits.attempts_per_ip", "N/DURATION"},
		{"redis password in clear", key + "redis:\n  addr: 10.0.0.5:6379\n  password: hunter2hunter2\n", "redis.tls.enabled", "in clear"},
		{"redis password file in clear", key + "redis:\n  addr: redis.internal:6379\n  password_file: " + secretFile(t) + "\n", "redis.tls.enabled", "in clear"},
		{"world-readable redis password", key + "redis:\n  addr: 127.0.0.1:6379\n  password_file: " + open + "\n", "redis.password_file", "mode 0644"},
		{"token endpoint without trusted proxies", key + "token_endpoint:\n  path: /token\n  user_header: X-User\n", "token_endpoint.user_header", "trusted_proxies"},
		{"JWKS over http", key + "  jwks_url: http://keys.example.com/jwks.json\n", "tokens.jwks_url", "https"},
		{"admin secret without listener", key + "admin:\n  secret_file: " + secretFile(t) + "\n", "admin.listen", "admin listener"},
		{"proxy without secret", key + "proxy:\n  url: https://backend.example.com\n  connect: true\n", "proxy.secret_file", "required"},
		{"proxy over plain http", key + "proxy:\n  url: http://backend.example.com\n  secret_file: " + sf + "\n  connect: true\n", "proxy.url", "in clear"},
		{"no token key", "listen: 127.0.0.1:0\n", "tokens.hmac_secret_file", "no token key"},
		{"bad log level", key + "log:\n  level: loud\n", "log.level", "debug, info"},
		{"breaker count past uint32", key + "proxy:\n  url: https://backend.example.com\n  secret_file: " + sf + "\n  connect: true\n  circuit_breaker:\n    failures: 4294967297\n", "proxy.circuit_breaker.failures", "between 0 and"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := load(t, c.yaml)
			if err == nil {
				err = f.Validate()
			}
			var found *KeyError
			for _, e := range Errors(err) {
				if e.Key == c.key {
					found = e
				}
			}
			if found == nil {
				t.Fatalf("no error for %s; got: %v", c.key, err)
			}
			if !strings.Contains(found.Error(), c.msg) {
				t.Fatalf("error %q does not say %q", found, c.msg)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatal("error does not wrap ErrInvalid")
			}
		})
	}
}

func TestSafeVariantsAreAccepted(t *testing.T) {
	key := "tokens:\n  hmac_secret_file: " + secretFile(t) + "\n"
	for _, y := range []string{
		key + "listen: 127.0.0.1:8080\ndebug: true\n",
		key + "listen: '[::1]:8080'\ndebug: true\n",
		key + "public_url: http://127.0.0.1:8080\n",
		key + "allowed_origins: ['https://*.example.com']\n",
		key + "redis:\n  addr: 127.0.0.1:6379\n  password: hunter2hunter2\n",
		key + "redis:\n  addr: 10.0.0.5:6379\n  password: hunter2hunter2\n  tls:\n    enabled: true\n",
		key + "insecure_skip_origin_check: true\ncsrf_key_file: " + secretFile(t) + "\n",
		key + "limits:\n  attempts_per_ip: off\n  tokens_per_ip: 5/s\n",
	} {
		f, err := load(t, y)
		if err == nil {
			err = f.Validate()
		}
		if err != nil {
			t.Errorf("%s\nrefused: %v", y, err)
		}
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	f, err := load(t, `listen: 0.0.0.0:8080
debug: true
public_url: http://app.example.com
allowed_origins: ["*"]
tokens:
  hmac_secret: short
namespaces:
  - name: room
    subscribe: {mode: everyone}
limits:
  cooldown: -1s
`)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Validate()
	got := keys(err)
	want := []string{"debug", "public_url", "allowed_origins[0]", "tokens.hmac_secret", "namespaces[0].subscribe.mode", "limits.cooldown"}
	if !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v\n%v", got, want, err)
	}
	if es := Errors(err); es[0].Line != 2 || es[3].Line != 6 {
		t.Fatalf("lines: %v", err)
	}
	if _, err := f.GatewayConfig(); err == nil {
		t.Fatal("GatewayConfig of an invalid file succeeded")
	}
}

func TestInlineSecretNeedsPrivateFile(t *testing.T) {
	y := "tokens:\n  hmac_secret: " + goodSecret + "\n"
	p := writeFile(t, "livegate.yaml", y, 0o644)
	f, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Validate()
	if !slices.Equal(keys(err), []string{"tokens.hmac_secret"}) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("0600 file refused: %v", err)
	}
	// A secret given by the environment does not make the file sensitive.
	p = writeFile(t, "livegate.yaml", "listen: 127.0.0.1:0\n", 0o644)
	f, err = Load(p, []string{"LIVEGATE_TOKENS_HMAC_SECRET=" + goodSecret})
	if err == nil {
		err = f.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	other := writeFile(t, "other.key", "another-secret-of-at-least-32-bytes-0123", 0o600)
	f, err := load(t, `listen: 127.0.0.1:8080
tokens:
  hmac_secret_file: /does/not/exist
  audience: from-file
allowed_origins: [https://a.example.com]
namespaces:
  - name: room
    history_size: 5
redis:
  addr: 127.0.0.1:6379
`,
		"LIVEGATE_TOKENS_HMAC_SECRET_FILE="+other,
		"LIVEGATE_LISTEN=127.0.0.1:9999",
		"LIVEGATE_REDIS_ADDR=127.0.0.1:6390",
		"LIVEGATE_REDIS_DB=3",
		"LIVEGATE_ALLOWED_ORIGINS=https://b.example.com, https://c.example.com",
		"LIVEGATE_NAMESPACES_0_HISTORY_SIZE=50",
		"LIVEGATE_NAMESPACES_0_PRESENCE=true",
		"LIVEGATE_TOKENS_MAX_LIFETIME=30m",
		"LIVEGATE_DEBUG=true",
		"LIVEGATE_NO_SUCH_KEY=1",
		"PATH=/usr/bin",
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Listen != "127.0.0.1:9999" || f.Redis.Addr != "127.0.0.1:6390" || f.Redis.DB != 3 || !f.Debug ||
		f.Tokens.Audience != "from-file" || f.Tokens.MaxLifetime != 30*time.Minute ||
		!slices.Equal(f.AllowedOrigins, []string{"https://b.example.com", "https://c.example.com"}) ||
		f.Namespaces[0].HistorySize != 50 || !f.Namespaces[0].Presence {
		t.Fatalf("overrides not applied: %+v", f)
	}
	cfg, err := f.GatewayConfig()
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.TokenHMACSecret) != "another-secret-of-at-least-32-bytes-0123" {
		t.Fatal("secret file from the environment not used")
	}
	if w := f.Warnings(); len(w) != 1 || !strings.Contains(w[0], "LIVEGATE_NO_SUCH_KEY") {
		t.Fatalf("warnings %q", w)
	}

	// A bad value names the variable.
	_, err = load(t, "listen: 127.0.0.1:0\n", "LIVEGATE_REDIS_DB=three", "LIVEGATE_CONNECTION_PING_INTERVAL=soon")
	if got := keys(err); !slices.Equal(got, []string{"LIVEGATE_CONNECTION_PING_INTERVAL", "LIVEGATE_REDIS_DB"}) {
		t.Fatalf("keys %v: %v", got, err)
	}
	// A refused value set by the environment says so.
	f, _ = load(t, "tokens:\n  hmac_secret_file: "+secretFile(t)+"\n", "LIVEGATE_DEBUG=1", "LIVEGATE_LISTEN=0.0.0.0:80")
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "debug: ") || !strings.Contains(err.Error(), "(set by LIVEGATE_DEBUG)") {
		t.Fatalf("err = %v", err)
	}
}

func TestLegacyEnvironment(t *testing.T) {
	f, err := load(t, "tokens:\n  hmac_secret_file: /does/not/exist\n  audience: file\n",
		EnvLegacySecret+"="+goodSecret, EnvLegacyAudience+"=legacy-aud", EnvLegacyAdminSecret+"="+goodSecret+"-admin",
		"LIVEGATE_ADMIN_LISTEN=127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := f.GatewayConfig()
	if string(cfg.TokenHMACSecret) != goodSecret || cfg.Audience != "legacy-aud" || string(f.AdminSecret()) != goodSecret+"-admin" {
		t.Fatalf("legacy variables not applied: %q %q", cfg.TokenHMACSecret, cfg.Audience)
	}
	// The new names win over the old ones.
	f, _ = load(t, "listen: 127.0.0.1:0\n", EnvLegacyAudience+"=old", "LIVEGATE_TOKENS_AUDIENCE=new")
	if f.Tokens.Audience != "new" {
		t.Fatalf("audience %q", f.Tokens.Audience)
	}
}

func TestEnvNamesAreUnique(t *testing.T) {
	f, err := Parse("x", []byte(Example()), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for name, ev := range f.envVars() {
		if p, dup := seen[name]; dup {
			t.Errorf("%s sets both %s and %s", name, p, ev.path)
		}
		seen[name] = ev.path
		if EnvName(ev.path) != name {
			t.Errorf("EnvName(%s) = %s, want %s", ev.path, EnvName(ev.path), name)
		}
	}
	if _, ok := seen["LIVEGATE_TOKENS_HMAC_SECRET_FILE"]; !ok {
		t.Fatal("LIVEGATE_TOKENS_HMAC_SECRET_FILE missing")
	}
}

func TestGatewayConfigStartsAGateway(t *testing.T) {
	f, err := load(t, `tokens:
  hmac_secret_file: `+secretFile(t)+`
  audience: app
  require_jti: true
public_url: https://app.example.com
namespaces:
  - name: room
    subscribe: {mode: authenticated}
    publish: {mode: authenticated, groups: [writer]}
    history_size: 10
    presence: true
limits:
  attempts_per_ip: 5/10s
  conns_per_user: 3
  tokens_per_ip: "off"
connection:
  max_channels: 7
`)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.GatewayConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TokenAlgorithm != "HS256" || string(cfg.TokenHMACSecret) != goodSecret || cfg.Audience != "app" || !cfg.RequireTokenID ||
		cfg.MaxChannelsPerConn != 7 || cfg.Limits.ConnsPerUser != 3 ||
		cfg.Limits.AttemptsPerIP != ratelimit.Per(5, 10*time.Second) || cfg.Limits.TokensPerIP.Limit >= 0 {
		t.Fatalf("config %+v", cfg)
	}
	want := policy.NamespaceConfig{
		Name: "room", Subscribe: policy.Authenticated, HistorySize: 10, Presence: true,
		Publish: policy.Access{Mode: policy.ModeAuthenticated, Groups: []string{"writer"}},
	}
	if !reflect.DeepEqual(cfg.Namespaces, []policy.NamespaceConfig{want}) {
		t.Fatalf("namespaces %+v", cfg.Namespaces)
	}
	gw, err := livegate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	ks, err := f.TokenKeys()
	if err != nil || len(ks) != 1 || ks[0].Algorithm != "HS256" {
		t.Fatalf("keys %v %v", ks, err)
	}
	if err := gw.SetTokenKeys(ks); err != nil {
		t.Fatal(err)
	}
}

func TestKeySet(t *testing.T) {
	f, err := load(t, `tokens:
  keys:
    - {kid: old, alg: HS256, secret_file: `+secretFile(t)+`}
    - {kid: new, alg: HS256, secret_file: `+writeFile(t, "new.key", goodSecret+"-new", 0o600)+`}
  signing_key_id: new
`)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.GatewayConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TokenKeys) != 2 || cfg.TokenKeys[1].ID != "new" || cfg.TokenSigningKeyID != "new" || cfg.TokenAlgorithm != "" {
		t.Fatalf("config %+v", cfg)
	}
	gw, err := livegate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gw.Close()
	// Both forms at once are refused.
	f, _ = load(t, "tokens:\n  hmac_secret: "+goodSecret+"\n  keys:\n    - {kid: a, alg: HS256, secret_file: "+secretFile(t)+"}\n")
	if got := keys(f.Validate()); !slices.Equal(got, []string{"tokens.keys"}) {
		t.Fatalf("keys %v", got)
	}
	_ = auth.Key{}
}

func TestNeedsRestart(t *testing.T) {
	base := "listen: 127.0.0.1:8080\ntokens:\n  hmac_secret_file: " + secretFile(t) + "\n"
	old, _ := load(t, base+"namespaces:\n  - name: a\n")
	same, _ := load(t, strings.Replace(base, "token.key", "token.key", 1)+"namespaces:\n  - name: b\nlimits:\n  conns_per_ip: 3\n")
	if got := NeedsRestart(old, same); len(got) != 0 {
		t.Fatalf("namespaces and limits reported as needing a restart: %v", got)
	}
	moved, _ := load(t, "listen: 127.0.0.1:9090\ntokens:\n  hmac_secret_file: /other\n  audience: x\nredis:\n  addr: 127.0.0.1:1\n")
	if got := NeedsRestart(old, moved); !slices.Equal(got, []string{"listen", "tokens.audience", "redis"}) {
		t.Fatalf("needs restart %v", got)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]ratelimit.Rule{
		"20/1m": ratelimit.PerMinute(20), "5/s": ratelimit.PerSecond(5), "100/1h": ratelimit.PerHour(100), "": {},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %+v, %v", in, got, err)
		}
	}
	if r, _ := ParseRate("off"); r.Limit >= 0 {
		t.Errorf("off: %+v", r)
	}
	for _, bad := range []string{"20", "0/1m", "-1/1m", "x/1m", "5/0s", "5/-1m", "5/soon"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

func TestFileSizeAndMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	big := writeFile(t, "big.yaml", "# "+strings.Repeat("x", MaxFileSize)+"\n", 0o600)
	if _, err := Load(big, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("big file: %v", err)
	}
}

// TestErrorsDoNotQuoteTheFile: a syntax error must not echo file content,
// which may be a secret.
func TestErrorsDoNotQuoteTheFile(t *testing.T) {
	_, err := load(t, "tokens:\n  hmac_secret: \"very-secret-value-0123456789abcdef\n  audience: [\n")
	if err == nil || strings.Contains(err.Error(), "very-secret-value") {
		t.Fatalf("err = %v", err)
	}
}
