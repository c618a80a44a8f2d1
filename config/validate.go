package config

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/ratelimit"
)

// MinSecretLen is the shortest secret accepted (HS256 keys, the admin and
// proxy secrets, the CSRF key): 32 bytes.
const MinSecretLen = 32

// maxSecretFile bounds a secret or key file.
const maxSecretFile = 64 << 10

// secrets are the values Validate read from files.
type secrets struct {
	hmac          []byte
	publicKey     crypto.PublicKey
	keys          []auth.Key
	signer        crypto.Signer
	csrf          []byte
	admin         []byte
	redisPassword string
	proxy         []byte
	namespaces    []policy.NamespaceConfig
	roles         []policy.Role
	limits        limitsValues
}

// limitsValues are the parsed rate strings of Limits.
type limitsValues struct {
	attemptsIP, attemptsUser, tokensUser, tokensIP ratelimit.Rule
}

// validator collects the problems of one Validate call.
type validator struct {
	f    *File
	errs []error
	sec  *secrets
}

func (v *validator) add(key, format string, args ...any) {
	e := &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
	if name, ok := v.f.env[key]; ok {
		e.Msg += " (set by " + name + ")"
	} else if line := v.f.lineOf(key); line > 0 {
		e.File, e.Line = v.f.path, line
	}
	v.errs = append(v.errs, e)
}

// Validate checks every value and returns all problems, each a *KeyError
// naming its key (the result wraps ErrInvalid). It reads the secret and
// key files. Among the settings it refuses, each with the reason:
//
//   - an HS256 secret (tokens.hmac_secret, a key's secret_file) under 32
//     bytes, and admin, proxy and CSRF secrets under 32 bytes;
//   - a wildcard "*" in allowed_origins; insecure_skip_origin_check
//     without csrf_key_file;
//   - debug: true with a listen address that is not loopback;
//   - a plain-http public_url whose host is not loopback;
//   - an access mode other than deny, authenticated and token, and
//     publish: token;
//   - negative limits, sizes and durations;
//   - a Redis password sent without TLS to a host that is not loopback;
//   - a secret or private key file readable by group or others, and a
//     configuration file holding an inline secret that is.
//
// A successful Validate is required by GatewayConfig.
func (f *File) Validate() error {
	v := &validator{f: f, sec: &secrets{}}
	v.listen()
	v.origins()
	v.tokens()
	v.tokenEndpoint()
	v.namespaces()
	v.connection()
	v.limits()
	v.redis()
	v.admin()
	v.api()
	v.proxy()
	v.logAudit()
	v.inlineSecrets()
	if len(v.errs) > 0 {
		f.sec = nil
		return errors.Join(v.errs...)
	}
	f.sec = v.sec
	return nil
}

// isLoopbackHost reports whether host (a name or IP, no port) is loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (v *validator) hostPort(key, addr string) (host string, ok bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, "must be host:port, e.g. 127.0.0.1:8080: %v", err)
		return "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(key, "invalid port %q", port)
		return "", false
	}
	return host, true
}

func (v *validator) listen() {
	f := v.f
	host, ok := v.hostPort("listen", f.ListenAddr())
	if ok && f.Debug && !isLoopbackHost(host) {
		v.add("debug", "refused with listen %q: debug mode puts internal error details in client replies, "+
			"so it is allowed only on a loopback listener (127.0.0.1, ::1, localhost)", f.ListenAddr())
	}
}

func (v *validator) origins() {
	f := v.f
	if f.PublicURL != "" {
		u, err := url.Parse(f.PublicURL)
		switch {
		case err != nil || u.Host == "":
			v.add("public_url", "must be an absolute http or https URL, e.g. https://app.example.com")
		case u.Scheme == "https":
		case u.Scheme == "http":
			if !isLoopbackHost(u.Hostname()) {
				v.add("public_url", "plain http to %q is refused: tokens and cookies would cross the network in clear; "+
					"use https (terminate TLS in front of livegate) or a loopback host", u.Hostname())
			}
		default:
			v.add("public_url", "scheme %q: must be http or https", u.Scheme)
		}
	}
	for i, o := range f.AllowedOrigins {
		key := fmt.Sprintf("allowed_origins[%d]", i)
		if _, ok := v.f.env["allowed_origins"]; ok {
			key = "allowed_origins"
		}
		if strings.TrimSpace(o) == "*" || o == "" {
			v.add(key, "%q is refused: any web site's page could open connections with its visitors' cookies "+
				"(cross-site WebSocket hijacking); list your origins, or subdomain patterns such as https://*.example.com", o)
		}
	}
	if f.InsecureSkipOriginCheck && f.CSRFKeyFile == "" {
		v.add("insecure_skip_origin_check", "refused without csrf_key_file: upgrades from any origin need a CSRF token "+
			"as another defence against cross-site WebSocket hijacking")
	}
	if f.CSRFKeyFile != "" {
		v.sec.csrf = v.secretFile("csrf_key_file", f.CSRFKeyFile)
	}
	for i, p := range f.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			v.add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is neither an IP nor a CIDR", p)
		}
	}
}

// checkPerm refuses a file that group or others may read or write.
func (v *validator) checkPerm(key, path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			v.add(key, "file %s does not exist", path)
		} else {
			v.add(key, "%v", err)
		}
		return false
	}
	if !st.Mode().IsRegular() {
		v.add(key, "%s is not a regular file", path)
		return false
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		v.add(key, "%s has mode %04o: a secret readable by group or others can be read by any local user or process "+
			"running as them; run chmod 600 %s (owned by the user livegate runs as)", path, perm, path)
		return false
	}
	return true
}

// readSecretFile reads a protected file; nil when refused.
func (v *validator) readSecretFile(key, path string) []byte {
	if !v.checkPerm(key, path) {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		v.add(key, "%v", err)
		return nil
	}
	if len(b) > maxSecretFile {
		v.add(key, "%s is larger than %d bytes", path, maxSecretFile)
		return nil
	}
	return b
}

// secretFile reads a secret (trailing newlines trimmed) of at least
// MinSecretLen bytes.
func (v *validator) secretFile(key, path string) []byte {
	b := v.readSecretFile(key, path)
	if b == nil {
		return nil
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) < MinSecretLen {
		v.add(key, "the secret in %s is %d bytes; at least %d are required (e.g. openssl rand -base64 48)", path, len(b), MinSecretLen)
		return nil
	}
	return b
}

func (v *validator) inlineSecret(key, val string) []byte {
	if len(val) < MinSecretLen {
		v.add(key, "the secret is %d bytes; at least %d are required", len(val), MinSecretLen)
		return nil
	}
	return []byte(val)
}

// publicKeyFile reads a PEM public key (or certificate). Public keys need
// not be secret, so the mode is not checked.
func (v *validator) publicKeyFile(key, path string) crypto.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		v.add(key, "%v", err)
		return nil
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		v.add(key, "%s holds no PEM block", path)
		return nil
	}
	switch blk.Type {
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			v.add(key, "%s: %v", path, err)
			return nil
		}
		return c.PublicKey
	default:
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			v.add(key, "%s: not a PKIX public key: %v", path, err)
			return nil
		}
		return pub
	}
}

var algorithms = []string{"HS256", "EdDSA", "ES256", "RS256"}

func validAlg(a string) bool {
	for _, x := range algorithms {
		if a == x {
			return true
		}
	}
	return false
}

func (v *validator) tokens() {
	t := v.f.Tokens
	if t.Algorithm != "" && !validAlg(t.Algorithm) {
		v.add("tokens.algorithm", "%q: must be one of %s", t.Algorithm, strings.Join(algorithms, ", "))
	}
	if t.HMACSecret != "" && t.HMACSecretFile != "" {
		v.add("tokens.hmac_secret", "set either hmac_secret or hmac_secret_file, not both")
	}
	single := t.HMACSecret != "" || t.HMACSecretFile != "" || t.PublicKeyFile != "" || t.Algorithm != ""
	switch {
	case len(t.Keys) > 0 && single:
		v.add("tokens.keys", "use either keys or algorithm with hmac_secret/hmac_secret_file/public_key_file, not both")
	case len(t.Keys) > 0:
		v.keys()
	case single || t.JWKSURL == "":
		alg := t.Algorithm
		if alg == "" {
			alg = "HS256"
		}
		if alg == "HS256" {
			if t.PublicKeyFile != "" {
				v.add("tokens.public_key_file", "not used with HS256; set tokens.algorithm to EdDSA, ES256 or RS256")
			}
			switch {
			case t.HMACSecretFile != "":
				v.sec.hmac = v.secretFile("tokens.hmac_secret_file", t.HMACSecretFile)
			case t.HMACSecret != "":
				v.sec.hmac = v.inlineSecret("tokens.hmac_secret", t.HMACSecret)
			default:
				v.add("tokens.hmac_secret_file", "no token key: set tokens.hmac_secret_file (HS256), "+
					"tokens.algorithm with tokens.public_key_file, tokens.keys or tokens.jwks_url")
			}
		} else if validAlg(alg) {
			if t.HMACSecret != "" || t.HMACSecretFile != "" {
				v.add("tokens.hmac_secret_file", "an HMAC secret is not used with %s", alg)
			}
			if t.PublicKeyFile == "" {
				v.add("tokens.public_key_file", "required with algorithm %s", alg)
			} else {
				v.sec.publicKey = v.publicKeyFile("tokens.public_key_file", t.PublicKeyFile)
			}
		}
	}
	if t.JWKSURL != "" {
		u, err := url.Parse(t.JWKSURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			v.add("tokens.jwks_url", "must be an https URL (or http to a loopback host): keys fetched in clear could be replaced")
		}
	}
	if t.MaxLifetime < 0 {
		v.add("tokens.max_lifetime", "must not be negative")
	}
	if t.Leeway < 0 || t.Leeway > livegate.MaxTokenLeeway {
		v.add("tokens.leeway", "must be between 0 and %v: a larger allowance keeps expired tokens working", livegate.MaxTokenLeeway)
	}
	if t.TTL < 0 {
		v.add("tokens.ttl", "must not be negative")
	}
	maxLife := t.MaxLifetime
	if maxLife == 0 {
		maxLife = time.Hour
	}
	if t.TTL > maxLife {
		v.add("tokens.ttl", "%v exceeds tokens.max_lifetime %v", t.TTL, maxLife)
	}
	if t.SigningKeyID != "" {
		found := false
		for _, k := range t.Keys {
			found = found || k.KID == t.SigningKeyID
		}
		if !found {
			v.add("tokens.signing_key_id", "%q names no entry of tokens.keys", t.SigningKeyID)
		}
	}
	if t.SigningKeyFile != "" {
		if b := v.readSecretFile("tokens.signing_key_file", t.SigningKeyFile); b != nil {
			blk, _ := pem.Decode(b)
			var key any
			var err error
			if blk == nil {
				err = errors.New("no PEM block")
			} else {
				key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
			}
			if s, ok := key.(crypto.Signer); err == nil && ok {
				v.sec.signer = s
			} else {
				v.add("tokens.signing_key_file", "%s: not a PKCS #8 private key: %v", t.SigningKeyFile, err)
			}
		}
	}
}

func (v *validator) keys() {
	t := v.f.Tokens
	seen := map[string]bool{}
	for i, k := range t.Keys {
		p := fmt.Sprintf("tokens.keys[%d]", i)
		if k.KID == "" && (len(t.Keys) > 1 || t.JWKSURL != "") {
			v.add(p+".kid", "required when there are several keys or a jwks_url")
		}
		if seen[k.KID] && k.KID != "" {
			v.add(p+".kid", "%q is used twice", k.KID)
		}
		seen[k.KID] = true
		key := auth.Key{ID: k.KID, Algorithm: k.Alg}
		switch {
		case !validAlg(k.Alg):
			v.add(p+".alg", "%q: must be one of %s", k.Alg, strings.Join(algorithms, ", "))
			continue
		case k.Alg == "HS256":
			if k.PublicKeyFile != "" {
				v.add(p+".public_key_file", "not used with HS256")
			}
			if k.SecretFile == "" {
				v.add(p+".secret_file", "required with HS256")
				continue
			}
			key.Secret = v.secretFile(p+".secret_file", k.SecretFile)
		default:
			if k.SecretFile != "" {
				v.add(p+".secret_file", "not used with %s", k.Alg)
			}
			if k.PublicKeyFile == "" {
				v.add(p+".public_key_file", "required with %s", k.Alg)
				continue
			}
			key.PublicKey = v.publicKeyFile(p+".public_key_file", k.PublicKeyFile)
		}
		v.sec.keys = append(v.sec.keys, key)
	}
}

func (v *validator) tokenEndpoint() {
	te := v.f.TokenEndpoint
	if te.Path == "" {
		if te.UserHeader != "" || te.GroupsHeader != "" || te.TenantHeader != "" {
			v.add("token_endpoint.path", "required when the token endpoint's headers are set")
		}
		return
	}
	switch {
	case !strings.HasPrefix(te.Path, "/") || strings.ContainsAny(te.Path, "?# "):
		v.add("token_endpoint.path", "must be a path such as /token")
	case te.Path == "/ws" || te.Path == "/healthz" || te.Path == "/readyz" || strings.HasPrefix(te.Path, "/api/"):
		v.add("token_endpoint.path", "%q is taken by another endpoint", te.Path)
	}
	if te.UserHeader == "" {
		v.add("token_endpoint.user_header", "required: the header in which the authenticating proxy names the user")
	}
	if len(v.f.TrustedProxies) == 0 {
		v.add("token_endpoint.user_header", "refused without trusted_proxies: any client could name itself in the header; "+
			"list the authenticating proxy that sets it")
	}
}

var accessModes = map[string]policy.Mode{
	"": policy.ModeDeny, "deny": policy.ModeDeny,
	"authenticated": policy.ModeAuthenticated, "token": policy.ModeToken,
}

func (v *validator) access(key string, a Access) policy.Access {
	m, ok := accessModes[a.Mode]
	if !ok {
		v.add(key+".mode", "unknown access mode %q: must be deny, authenticated or token", a.Mode)
	}
	return policy.Access{
		Mode: m, UserLimited: a.UserLimited, Groups: a.Groups, AnyPerms: a.AnyPerms, AllPerms: a.AllPerms, Rule: a.Rule,
	}
}

func (v *validator) namespaces() {
	before := len(v.errs)
	seen := map[string]bool{}
	var out []policy.NamespaceConfig
	for i, n := range v.f.Namespaces {
		p := fmt.Sprintf("namespaces[%d]", i)
		if n.Name == "" {
			v.add(p+".name", "required")
		} else if seen[n.Name] {
			v.add(p+".name", "namespace %q is defined twice", n.Name)
		}
		seen[n.Name] = true
		ns := namespaceConfig(n)
		ns.Subscribe = v.access(p+".subscribe", n.Subscribe)
		ns.Publish = v.access(p+".publish", n.Publish)
		if ns.Publish.Mode == policy.ModeToken {
			v.add(p+".publish.mode", "token is for subscribe only: a publish carries no subscription token, so it would always be denied")
		}
		if n.HistorySize < 0 {
			v.add(p+".history_size", "must not be negative")
		}
		if n.HistoryTTL < 0 {
			v.add(p+".history_ttl", "must not be negative")
		}
		out = append(out, ns)
	}
	var roles []policy.Role
	for _, r := range v.f.Roles {
		roles = append(roles, policy.Role{Name: r.Name, Inherits: r.Inherits, Perms: r.Perms})
	}
	if len(v.errs) > before {
		return
	}
	// The policy engine checks names, rules and roles in depth.
	if _, err := policy.New(policy.Config{Namespaces: out, Roles: roles}); err != nil {
		key := "namespaces"
		if len(roles) > 0 && strings.Contains(err.Error(), "role") {
			key = "roles"
		}
		v.add(key, "%v", err)
		return
	}
	v.sec.namespaces, v.sec.roles = out, roles
}

// maxBreakerCount bounds the circuit breaker's counts.
const maxBreakerCount = 1_000_000

func (v *validator) nonNegative(key string, n float64) {
	if n < 0 {
		v.add(key, "must not be negative")
	}
}

func (v *validator) connection() {
	c := v.f.Connection
	for _, x := range []struct {
		key string
		n   float64
	}{
		{"connect_timeout", float64(c.ConnectTimeout)}, {"max_inbound_frame", float64(c.MaxInboundFrame)},
		{"max_outbound_message", float64(c.MaxOutboundMessage)}, {"max_channels", float64(c.MaxChannels)},
		{"send_queue_messages", float64(c.SendQueueMessages)}, {"send_queue_bytes", float64(c.SendQueueBytes)},
		{"write_timeout", float64(c.WriteTimeout)}, {"ping_interval", float64(c.PingInterval)},
		{"pong_timeout", float64(c.PongTimeout)}, {"command_rate", c.CommandRate}, {"command_burst", float64(c.CommandBurst)},
		{"max_rate_warnings", float64(c.MaxRateWarnings)}, {"max_lifetime", float64(c.MaxLifetime)},
		{"max_connections", float64(c.MaxConnections)}, {"max_queued_bytes", float64(c.MaxQueuedBytes)},
	} {
		v.nonNegative("connection."+x.key, x.n)
	}
	if c.CoalesceDelay > time.Second {
		v.add("connection.coalesce_delay", "must be at most 1s (it adds up to that much latency)")
	}
}

// ParseRate parses a rate of Limits: "N/DURATION" (N events in any window
// of DURATION, e.g. "20/1m", "5/s"), "off" (no limit: a negative Limit,
// as livegate.Limits has it) or "" (the default: the zero Rule).
func ParseRate(s string) (ratelimit.Rule, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return ratelimit.Rule{}, nil
	case "off":
		return ratelimit.Rule{Strategy: ratelimit.SlidingWindow, Limit: -1, Window: time.Minute}, nil
	}
	ns, ws, ok := strings.Cut(s, "/")
	if !ok {
		return ratelimit.Rule{}, fmt.Errorf("%q: must be N/DURATION (e.g. 20/1m) or off", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 1 {
		return ratelimit.Rule{}, fmt.Errorf("%q: the count must be a positive integer", s)
	}
	ws = strings.TrimSpace(ws)
	switch ws {
	case "s", "m", "h":
		ws = "1" + ws
	}
	w, err := time.ParseDuration(ws)
	if err != nil || w <= 0 {
		return ratelimit.Rule{}, fmt.Errorf("%q: the window must be a positive duration (s, 1m, 10m, 1h)", s)
	}
	r := ratelimit.Per(n, w)
	if err := r.Validate(); err != nil {
		return ratelimit.Rule{}, fmt.Errorf("%q: %w", s, err)
	}
	return r, nil
}

func (v *validator) limits() {
	l := v.f.Limits
	rate := func(key, s string) ratelimit.Rule {
		r, err := ParseRate(s)
		if err != nil {
			v.add("limits."+key, "%v", err)
		}
		return r
	}
	v.sec.limits = limitsValues{
		attemptsIP:   rate("attempts_per_ip", l.AttemptsPerIP),
		attemptsUser: rate("attempts_per_user", l.AttemptsPerUser),
		tokensUser:   rate("tokens_per_user", l.TokensPerUser),
		tokensIP:     rate("tokens_per_ip", l.TokensPerIP),
	}
	v.nonNegative("limits.conns_per_ip", float64(l.ConnsPerIP))
	v.nonNegative("limits.conns_per_user", float64(l.ConnsPerUser))
	v.nonNegative("limits.cooldown", float64(l.Cooldown))
}

func (v *validator) redis() {
	r := v.f.Redis
	if r.Addr == "" {
		if r.Username != "" || r.Password != "" || r.PasswordFile != "" || r.TLS.Enabled || r.KeyPrefix != "" || r.DB != 0 {
			v.add("redis.addr", "required when other redis keys are set")
		}
		return
	}
	host, ok := v.hostPort("redis.addr", r.Addr)
	if r.DB < 0 {
		v.add("redis.db", "must not be negative")
	}
	if r.Password != "" && r.PasswordFile != "" {
		v.add("redis.password", "set either password or password_file, not both")
	}
	switch {
	case r.PasswordFile != "":
		if b := v.readSecretFile("redis.password_file", r.PasswordFile); b != nil {
			v.sec.redisPassword = strings.TrimRight(string(b), "\r\n")
		}
	case r.Password != "":
		v.sec.redisPassword = r.Password
	}
	if (r.Password != "" || r.PasswordFile != "") && !r.TLS.Enabled && ok && !isLoopbackHost(host) {
		v.add("redis.tls.enabled", "refused: the Redis password would cross the network to %q in clear; "+
			"enable redis.tls, or reach Redis on a loopback address (e.g. through a local TLS tunnel)", host)
	}
	if r.TLS.CertFile != "" || r.TLS.KeyFile != "" || r.TLS.CAFile != "" || r.TLS.ServerName != "" {
		if !r.TLS.Enabled {
			v.add("redis.tls.enabled", "must be true when other redis.tls keys are set")
		}
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		v.add("redis.tls.key_file", "cert_file and key_file go together")
	}
	if r.TLS.KeyFile != "" {
		v.checkPerm("redis.tls.key_file", r.TLS.KeyFile)
	}
	for _, x := range []struct{ key, path string }{{"redis.tls.ca_file", r.TLS.CAFile}, {"redis.tls.cert_file", r.TLS.CertFile}} {
		if x.path != "" {
			if _, err := os.Stat(x.path); err != nil {
				v.add(x.key, "%v", err)
			}
		}
	}
}

func (v *validator) admin() {
	a := v.f.Admin
	if a.Listen != "" {
		if host, ok := v.hostPort("admin.listen", a.Listen); ok && !isLoopbackHost(host) {
			v.f.warn("admin.listen %s is not loopback: keep /metrics and the revocation endpoint off the internet", a.Listen)
		}
	}
	if a.Secret != "" && a.SecretFile != "" {
		v.add("admin.secret", "set either secret or secret_file, not both")
	}
	switch {
	case a.SecretFile != "":
		v.sec.admin = v.secretFile("admin.secret_file", a.SecretFile)
	case a.Secret != "":
		v.sec.admin = v.inlineSecret("admin.secret", a.Secret)
	}
	if (a.Secret != "" || a.SecretFile != "") && a.Listen == "" {
		v.add("admin.listen", "required with admin.secret: the revocation endpoint is served on the admin listener only")
	}
}

func (v *validator) api() {
	v.nonNegative("api.max_body_bytes", float64(v.f.API.MaxBodySize))
}

func (v *validator) proxy() {
	p := v.f.Proxy
	if p.URL == "" {
		if p.SecretFile != "" || p.Connect || p.Subscribe || p.Disconnect || len(p.Events) > 0 {
			v.add("proxy.url", "required when other proxy keys are set")
		}
		return
	}
	u, err := url.Parse(p.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		v.add("proxy.url", "must be an absolute http or https URL without user info, query or fragment")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()) && !p.InsecureAllowHTTP:
		v.add("proxy.url", "plain http to %q is refused: cookies, tokens and payloads would cross the network in clear; "+
			"use https, a loopback back end, or set proxy.insecure_allow_http", u.Hostname())
	}
	if p.SecretFile == "" {
		v.add("proxy.secret_file", "required: the back end must be able to tell the gateway's requests from forged ones")
	} else {
		v.sec.proxy = v.secretFile("proxy.secret_file", p.SecretFile)
	}
	if p.ConnectWithoutToken && !p.Connect {
		v.add("proxy.connect_without_token", "requires proxy.connect: without it nobody would identify the connection")
	}
	v.nonNegative("proxy.timeout", float64(p.Timeout))
	v.nonNegative("proxy.max_response_bytes", float64(p.MaxResponseBytes))
	v.nonNegative("proxy.circuit_breaker.open_for", float64(p.CircuitBreaker.OpenFor))
	// Both end up as uint32 in the breaker; bounds far beyond any useful
	// value keep the conversion exact.
	for key, n := range map[string]int{
		"proxy.circuit_breaker.failures":           p.CircuitBreaker.Failures,
		"proxy.circuit_breaker.half_open_requests": p.CircuitBreaker.HalfOpenRequests,
	} {
		if n < 0 || n > maxBreakerCount {
			v.add(key, "must be between 0 and %d", maxBreakerCount)
		}
	}
	seen := map[string]bool{}
	for i, e := range p.Events {
		k := fmt.Sprintf("proxy.events[%d]", i)
		if !policy.ValidEventName(e) {
			v.add(k, "%q is not an event name (^[a-z][a-z0-9_]{0,63}$)", e)
		} else if seen[e] {
			v.add(k, "event %q is listed twice", e)
		}
		seen[e] = true
	}
	for _, x := range []struct{ key, path string }{
		{"connect", p.Paths.Connect}, {"subscribe", p.Paths.Subscribe}, {"event", p.Paths.Event}, {"disconnect", p.Paths.Disconnect},
	} {
		if x.path != "" && (!strings.HasPrefix(x.path, "/") || strings.ContainsAny(x.path, "?#")) {
			v.add("proxy.paths."+x.key, "must be a path starting with / without query or fragment")
		}
	}
	for i, h := range p.ForwardHeaders {
		if h == "" || strings.ContainsAny(h, " :\r\n") {
			v.add(fmt.Sprintf("proxy.forward_headers[%d]", i), "%q is not a header name", h)
		}
	}
	if !p.Connect && !p.Subscribe && !p.Disconnect && len(p.Events) == 0 {
		v.f.warn("proxy.url is set but nothing is proxied: enable connect, subscribe or disconnect, or list events")
	}
}

func (v *validator) logAudit() {
	switch v.f.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		v.add("log.level", "%q: must be debug, info, warn or error", v.f.Log.Level)
	}
	switch v.f.Log.Format {
	case "", "text", "json":
	default:
		v.add("log.format", "%q: must be text or json", v.f.Log.Format)
	}
}

// inlineSecrets refuses a configuration file holding a secret inline when
// others may read it.
func (v *validator) inlineSecrets() {
	if v.f.path == "" {
		return
	}
	var inline []string
	for _, k := range []struct {
		key string
		set bool
	}{
		{"tokens.hmac_secret", v.f.Tokens.HMACSecret != ""},
		{"admin.secret", v.f.Admin.Secret != ""},
		{"redis.password", v.f.Redis.Password != ""},
	} {
		if _, fromEnv := v.f.env[k.key]; k.set && !fromEnv {
			inline = append(inline, k.key)
		}
	}
	if len(inline) == 0 {
		return
	}
	st, err := os.Stat(v.f.path)
	if err != nil {
		return // Parse: no file
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		v.add(inline[0], "the file %s holds a secret inline (%s) but has mode %04o: any local user could read it; "+
			"chmod 600 it, or move the secret to a *_file key", v.f.path, strings.Join(inline, ", "), perm)
	}
}
