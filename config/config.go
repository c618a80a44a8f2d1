// Package config reads the configuration file of `livegate serve`: a YAML
// document, overridable key by key from the environment, validated as a
// whole and turned into a livegate.Config.
//
// Loading is strict: an unknown key, a duplicate key or a value of the wrong
// type is an error naming the key and its line. Every key can be set from
// the environment as LIVEGATE_ followed by its path in capitals with "_"
// between the parts (tokens.hmac_secret_file is
// LIVEGATE_TOKENS_HMAC_SECRET_FILE; the name of the first namespace is
// LIVEGATE_NAMESPACES_0_NAME); the environment wins over the file. Secrets
// are read from files (the *_file keys) so they never appear on a command
// line, and such files must not be readable by group or others.
//
// Validate returns every problem at once, each naming its key, and refuses
// the settings that are unsafe in production (see the checks listed on
// Validate).
package config

import (
	"errors"
	"fmt"
	"time"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "LIVEGATE_"

// Environment variables kept from earlier versions, read after the
// LIVEGATE_<PATH> names: LIVEGATE_TOKEN_HMAC_SECRET sets tokens.hmac_secret,
// LIVEGATE_AUDIENCE tokens.audience and LIVEGATE_ADMIN_SECRET admin.secret,
// unless the corresponding LIVEGATE_<PATH> variable is set.
const (
	EnvLegacySecret      = "LIVEGATE_TOKEN_HMAC_SECRET"
	EnvLegacyAudience    = "LIVEGATE_AUDIENCE"
	EnvLegacyAdminSecret = "LIVEGATE_ADMIN_SECRET"
)

// ErrInvalid is wrapped by every error about the configuration's content
// (as opposed to an unreadable file).
var ErrInvalid = errors.New("invalid configuration")

// KeyError is one problem with one key of the configuration.
type KeyError struct {
	// Key is the key's path, e.g. "tokens.hmac_secret_file" or
	// "namespaces[1].subscribe.mode"; for a variable of the environment it
	// is the variable's name.
	Key string
	// File and Line locate the key when it comes from the file (Line 0:
	// unknown, or set by the environment).
	File string
	Line int
	// Msg says what is wrong.
	Msg string
}

func (e *KeyError) Error() string {
	switch {
	case e.Line > 0 && e.File != "":
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Key, e.Msg)
	}
	return e.Key + ": " + e.Msg
}

// Is makes a KeyError match ErrInvalid.
func (e *KeyError) Is(target error) bool { return target == ErrInvalid }

// Errors returns the KeyErrors inside err (as returned by Load or
// Validate), in order.
func Errors(err error) []*KeyError {
	var out []*KeyError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ke, ok := err.(*KeyError); ok {
			out = append(out, ke)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		walk(errors.Unwrap(err))
	}
	walk(err)
	return out
}

// File is the configuration of `livegate serve`. The zero value of every
// field is the default documented in docs/configuration.md; most defaults
// are those of livegate.Config.
type File struct {
	// Listen is the address of the public listener; default
	// "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// PublicURL is the gateway's public base URL (livegate.Config.PublicURL).
	PublicURL string `yaml:"public_url"`
	// AllowedOrigins are the browser origins whose pages may connect.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Hosts are the accepted Host header values.
	Hosts []string `yaml:"hosts"`
	// TrustedProxies are the proxies whose forwarding headers are believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// InsecureSkipOriginCheck accepts upgrades from any origin; refused
	// without CSRFKeyFile.
	InsecureSkipOriginCheck bool `yaml:"insecure_skip_origin_check"`
	// CSRFKeyFile holds the CSRF signing key (at least 32 bytes).
	CSRFKeyFile string `yaml:"csrf_key_file"`
	// EnableCompression turns on permessage-deflate.
	EnableCompression bool `yaml:"enable_compression"`

	Tokens        Tokens        `yaml:"tokens"`
	TokenEndpoint TokenEndpoint `yaml:"token_endpoint"`
	Namespaces    []Namespace   `yaml:"namespaces"`
	Roles         []Role        `yaml:"roles"`
	Connection    Connection    `yaml:"connection"`
	Limits        Limits        `yaml:"limits"`
	Store         Store         `yaml:"store"`
	Redis         Redis         `yaml:"redis"`
	Admin         Admin         `yaml:"admin"`
	API           API           `yaml:"api"`
	Proxy         Proxy         `yaml:"proxy"`
	Log           Log           `yaml:"log"`
	Audit         Audit         `yaml:"audit"`

	// Debug adds error details to client replies; refused on a listener
	// that is not loopback.
	Debug bool `yaml:"debug"`

	// path is the file loaded, lines the line of each key path.
	path  string
	lines map[string]int
	// env names the variable that set a key path
	env      map[string]string
	warnings []string
	// secrets read by Validate
	sec *secrets
}

// Tokens configures the verification of connect and subscription tokens.
type Tokens struct {
	// Algorithm pins the algorithm of the single key: HS256 (default),
	// EdDSA, ES256 or RS256.
	Algorithm string `yaml:"algorithm"`
	// HMACSecret is the HS256 key inline (prefer HMACSecretFile); a file
	// holding it must not be readable by group or others.
	HMACSecret     string `yaml:"hmac_secret"`
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// PublicKeyFile is a PEM public key for EdDSA, ES256 or RS256.
	PublicKeyFile string `yaml:"public_key_file"`
	// Keys is a key set selected by the token's "kid" (instead of
	// Algorithm with one key).
	Keys []TokenKey `yaml:"keys"`
	// JWKSURL adds the keys of a JSON Web Key Set.
	JWKSURL  string `yaml:"jwks_url"`
	Audience string `yaml:"audience"`
	Issuer   string `yaml:"issuer"`
	// MaxLifetime caps exp-iat; default 1h.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// Leeway is the clock skew allowed for iat, nbf and exp; default 0,
	// at most 5m.
	Leeway time.Duration `yaml:"leeway"`
	// RequireJTI refuses tokens without "jti".
	RequireJTI bool `yaml:"require_jti"`
	// TTL is the lifetime of tokens issued by the token endpoint; default 5m.
	TTL time.Duration `yaml:"ttl"`
	// SigningKeyID names the entry of Keys that signs issued tokens.
	SigningKeyID string `yaml:"signing_key_id"`
	// SigningKeyFile is the PEM (PKCS #8) private key that signs issued
	// tokens with an asymmetric algorithm.
	SigningKeyFile string `yaml:"signing_key_file"`
}

// TokenKey is one entry of a key set.
type TokenKey struct {
	KID           string `yaml:"kid"`
	Alg           string `yaml:"alg"`
	SecretFile    string `yaml:"secret_file"`
	PublicKeyFile string `yaml:"public_key_file"`
}

// TokenEndpoint serves connect tokens to users that an authenticating
// reverse proxy in TrustedProxies has identified in a request header.
type TokenEndpoint struct {
	// Path is where the endpoint is mounted, e.g. "/token"; empty: no
	// token endpoint.
	Path string `yaml:"path"`
	// UserHeader names the header carrying the authenticated user; it is
	// believed only from a peer in trusted_proxies.
	UserHeader string `yaml:"user_header"`
	// GroupsHeader optionally names a comma-separated groups header.
	GroupsHeader string `yaml:"groups_header"`
	// TenantHeader optionally names the tenant header.
	TenantHeader string `yaml:"tenant_header"`
}

// Namespace mirrors policy.NamespaceConfig.
type Namespace struct {
	Name         string        `yaml:"name"`
	Subscribe    Access        `yaml:"subscribe"`
	Publish      Access        `yaml:"publish"`
	TenantScoped bool          `yaml:"tenant_scoped"`
	HistorySize  int           `yaml:"history_size"`
	HistoryTTL   time.Duration `yaml:"history_ttl"`
	Presence     bool          `yaml:"presence"`
	JoinLeave    bool          `yaml:"join_leave"`
}

// Access mirrors policy.Access; Mode is "deny" (default), "authenticated"
// or "token".
type Access struct {
	Mode        string   `yaml:"mode"`
	UserLimited bool     `yaml:"user_limited"`
	Groups      []string `yaml:"groups"`
	AnyPerms    []string `yaml:"any_perms"`
	AllPerms    []string `yaml:"all_perms"`
	Rule        string   `yaml:"rule"`
}

// Role mirrors policy.Role.
type Role struct {
	Name     string   `yaml:"name"`
	Inherits []string `yaml:"inherits"`
	Perms    []string `yaml:"perms"`
}

// Connection holds the per-connection settings of livegate.Config. They
// apply to new gateways only: changing them needs a restart.
type Connection struct {
	ConnectTimeout     time.Duration `yaml:"connect_timeout"`
	MaxInboundFrame    int64         `yaml:"max_inbound_frame"`
	MaxOutboundMessage int           `yaml:"max_outbound_message"`
	MaxChannels        int           `yaml:"max_channels"`
	SendQueueMessages  int           `yaml:"send_queue_messages"`
	SendQueueBytes     int           `yaml:"send_queue_bytes"`
	WriteTimeout       time.Duration `yaml:"write_timeout"`
	CoalesceDelay      time.Duration `yaml:"coalesce_delay"`
	PingInterval       time.Duration `yaml:"ping_interval"`
	PongTimeout        time.Duration `yaml:"pong_timeout"`
	CommandRate        float64       `yaml:"command_rate"`
	CommandBurst       int           `yaml:"command_burst"`
	MaxRateWarnings    int           `yaml:"max_rate_warnings"`
	MaxLifetime        time.Duration `yaml:"max_lifetime"`
	MaxConnections     int           `yaml:"max_connections"`
	MaxQueuedBytes     int64         `yaml:"max_queued_bytes"`
}

// Limits mirrors livegate.Limits; they can be changed by a reload. A rate
// is "N/DURATION" (N events in any window of DURATION, e.g. "20/1m") or
// "off"; empty is the default.
type Limits struct {
	AttemptsPerIP   string        `yaml:"attempts_per_ip"`
	AttemptsPerUser string        `yaml:"attempts_per_user"`
	ConnsPerIP      int           `yaml:"conns_per_ip"`
	ConnsPerUser    int           `yaml:"conns_per_user"`
	Cooldown        time.Duration `yaml:"cooldown"`
	TokensPerUser   string        `yaml:"tokens_per_user"`
	TokensPerIP     string        `yaml:"tokens_per_ip"`
}

// Store is the SQLite database for single-use tokens, revocations and
// security events.
type Store struct {
	// Path of the database file; default "livegate.db".
	Path string `yaml:"path"`
}

// Redis, when Addr is set, runs the gateway in cluster mode: broker,
// presence, single-use tokens, revocations and limits in Redis.
type Redis struct {
	Addr         string   `yaml:"addr"`
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	DB           int      `yaml:"db"`
	TLS          RedisTLS `yaml:"tls"`
	KeyPrefix    string   `yaml:"key_prefix"`
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Admin is the listener for /metrics, /healthz, /readyz and, with a
// secret, the revocation endpoint POST /admin/revoke.
type Admin struct {
	Listen     string `yaml:"listen"`
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
}

// API is the HTTP API for back ends, mounted at /api/.
type API struct {
	Enabled     bool  `yaml:"enabled"`
	MaxBodySize int64 `yaml:"max_body_bytes"`
}

// Proxy forwards connects, subscriptions, disconnects and client events to
// a back end over signed HTTP requests (proxy mode; see package proxy).
type Proxy struct {
	// URL is the back end's base URL; empty: proxy mode is off. It must be
	// https, or http to a loopback host unless InsecureAllowHTTP.
	URL               string `yaml:"url"`
	InsecureAllowHTTP bool   `yaml:"insecure_allow_http"`
	// SecretFile holds the key that signs each request (at least 32
	// bytes, mode 0600).
	SecretFile string        `yaml:"secret_file"`
	Timeout    time.Duration `yaml:"timeout"`
	// Connect lets the back end decide who each connection is;
	// ConnectWithoutToken then lets clients connect without a token.
	Connect             bool `yaml:"connect"`
	ConnectWithoutToken bool `yaml:"connect_without_token"`
	Subscribe           bool `yaml:"subscribe"`
	Disconnect          bool `yaml:"disconnect"`
	// Events lists the client events forwarded to the back end; any other
	// event is refused by the gateway.
	Events []string   `yaml:"events"`
	Paths  ProxyPaths `yaml:"paths"`
	// ForwardHeaders names the upgrade request headers sent with a
	// connect; unset: package proxy's default list, [] none.
	ForwardHeaders   []string       `yaml:"forward_headers"`
	ForwardToken     bool           `yaml:"forward_token"`
	MaxResponseBytes int64          `yaml:"max_response_bytes"`
	CircuitBreaker   CircuitBreaker `yaml:"circuit_breaker"`
}

// ProxyPaths override the back-end paths of the routes (appended to URL).
type ProxyPaths struct {
	Connect    string `yaml:"connect"`
	Subscribe  string `yaml:"subscribe"`
	Event      string `yaml:"event"`
	Disconnect string `yaml:"disconnect"`
}

// CircuitBreaker stops calling a failing back end for a while.
type CircuitBreaker struct {
	// Failures in a row that open the breaker; default 5.
	Failures int `yaml:"failures"`
	// OpenFor is how long it stays open; default 30s.
	OpenFor time.Duration `yaml:"open_for"`
	// HalfOpenRequests are let through to probe; default 1.
	HalfOpenRequests int `yaml:"half_open_requests"`
}

// Log configures the operational log on standard error.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// Audit configures the security event trail.
type Audit struct {
	// Retention is how long events stay in the database; default 720h,
	// negative keeps them forever.
	Retention time.Duration `yaml:"retention"`
	// JSONLPath, when set, appends every event as a JSON line to this file.
	JSONLPath string `yaml:"jsonl_path"`
}

// Defaults of File.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultStorePath = "livegate.db"
)

// Path returns the file f was loaded from ("" when none).
func (f *File) Path() string { return f.path }

// RedisEnabled reports whether cluster mode is configured.
func (f *File) RedisEnabled() bool { return f.Redis.Addr != "" }

// ProxyEnabled reports whether proxy mode is configured.
func (f *File) ProxyEnabled() bool { return f.Proxy.URL != "" }

// ListenAddr returns Listen or its default.
func (f *File) ListenAddr() string {
	if f.Listen == "" {
		return DefaultListen
	}
	return f.Listen
}

// StorePath returns Store.Path or its default.
func (f *File) StorePath() string {
	if f.Store.Path == "" {
		return DefaultStorePath
	}
	return f.Store.Path
}
