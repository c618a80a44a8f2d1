package livegate

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/metrics"
	"github.com/livegate/livegate/policy"
)

// Defaults applied to zero Config fields.
const (
	DefaultAudience           = "livegate"
	DefaultConnectTimeout     = 5 * time.Second
	DefaultMaxTokenLifetime   = time.Hour
	MaxTokenLeeway            = 5 * time.Minute
	DefaultTokenTTL           = 5 * time.Minute
	DefaultExpiryJitter       = 2 * time.Second
	DefaultMaxConnLifetime    = 24 * time.Hour
	DefaultMaxConnections     = 10000
	DefaultMaxQueuedBytes     = 1 << 30
	DefaultMaxInboundFrame    = 64 << 10
	DefaultMaxOutboundMessage = 128 << 10
	DefaultMaxChannels        = 128
	DefaultSendQueueMessages  = 1024
	DefaultSendQueueBytes     = 4 << 20
	DefaultWriteTimeout       = 10 * time.Second
	DefaultCoalesceDelay      = 5 * time.Millisecond
	DefaultPingInterval       = 25 * time.Second
	DefaultPongTimeout        = 10 * time.Second
	DefaultCommandRate        = 100
	DefaultCommandBurst       = 20
	DefaultMaxRateWarnings    = 3
	DefaultPresenceTTL        = 30 * time.Second
)

// Config configures a Gateway. The zero value of every field is the secure
// default documented on it; only the token key is required.
type Config struct {
	// TokenAlgorithm pins the JWT algorithm of connection tokens: "HS256"
	// (default), "EdDSA", "ES256" or "RS256". Tokens with any other
	// algorithm, including "none", are refused.
	TokenAlgorithm string
	// TokenHMACSecret is the HS256 key, at least 32 bytes.
	TokenHMACSecret []byte
	// TokenPublicKey verifies EdDSA, ES256 and RS256 tokens.
	TokenPublicKey crypto.PublicKey
	// Audience must appear in every token's "aud"; default "livegate".
	Audience string
	// Issuer, when set, must equal every token's "iss".
	Issuer string
	// MaxTokenLifetime caps exp-iat of accepted tokens; default 1h.
	MaxTokenLifetime time.Duration
	// TokenLeeway is the clock skew allowed between the hosts that mint
	// tokens and this gateway: a token whose "iat" or "nbf" is up to this
	// far ahead, or whose "exp" passed up to this long ago, is accepted,
	// and a connection's token counts as expired only this long after its
	// "exp". Revocations and token ids are kept that much longer. Default
	// 0 (none); at most MaxTokenLeeway.
	TokenLeeway time.Duration
	// RequireTokenID refuses connect tokens without "jti". Tokens that carry
	// a "jti" are single-use whatever this says.
	RequireTokenID bool
	// ReplayStore consumes single-use token ids; default in memory.
	ReplayStore auth.ReplayStore
	// TokenKeys is a key set selected by the token's "kid", each key with
	// its own pinned algorithm — the alternative to TokenAlgorithm with
	// TokenHMACSecret or TokenPublicKey. Rotate it with
	// Gateway.SetTokenKeys.
	TokenKeys []auth.Key
	// JWKSURL adds the asymmetric keys of a JSON Web Key Set (https, or
	// http to loopback only), cached and refreshed.
	JWKSURL string
	// Revocations records revoked users, sessions and tokens, checked at
	// connect, refresh and subscription; default in memory.
	Revocations auth.Revocations
	// ExpiryJitter is the largest random delay added to the 4409 close of
	// a connection whose token expired; default 2s. Commands are refused
	// from the expiry on regardless.
	ExpiryJitter time.Duration

	// ConnectHook, when set, decides who each connection is: it runs at
	// connect, after the token (when there is one) was verified, and its
	// ConnectResult becomes the connection's identity. Returning an error
	// wrapping ErrConnectDenied closes the connection 4403; any other error
	// closes it 4500. Proxy deployments use it to ask a backend.
	ConnectHook ConnectHook
	// AllowConnectWithoutToken lets connect omit the token, leaving the
	// identity to ConnectHook alone; New refuses it without a ConnectHook.
	// A token that is sent must still verify. Default false.
	AllowConnectWithoutToken bool
	// OnDisconnect is called, on a goroutine of its own, once for every
	// connection that completed connect, after it closed.
	OnDisconnect func(DisconnectInfo)

	// NodeID names this node in cluster control messages and presence
	// entries; default random. With a shared broker it should equal the
	// broker's node id.
	NodeID string
	// Presence records channel presence for namespaces with Presence on.
	// Default: the Broker when it implements broker.Presence, else an
	// in-memory store.
	Presence broker.Presence
	// PresenceTTL is how long a presence entry lives without a refresh;
	// default 30s. The gateway refreshes its entries every PresenceTTL/3.
	PresenceTTL time.Duration

	// Broker carries publications and history; default an in-memory
	// broker owned (and closed) by the Gateway. A Broker instance serves
	// one Gateway: New sets itself as the broker's handler.
	Broker broker.Broker
	// Namespaces are the channel namespaces clients may use. Channels in
	// any other namespace are refused.
	Namespaces []policy.NamespaceConfig
	// Roles are the RBAC roles that token "groups" name; a role's
	// permissions include those of the roles it inherits.
	Roles []policy.Role

	// PublicURL is the gateway's public base URL, e.g.
	// "https://app.example.com". When set, it is the default allowed origin
	// and its host the default allowed Host.
	PublicURL string
	// AllowedOrigins lists the browser origins whose pages may connect and
	// request tokens: exact origins ("https://app.example.com",
	// "http://127.0.0.1:8080") or subdomain patterns
	// ("https://*.example.com", which never matches example.com itself or
	// look-alikes such as evil-example.com). Default: PublicURL's origin,
	// or, without PublicURL, the origin of the request itself. Requests
	// without an Origin header (non-browser clients) are not affected.
	AllowedOrigins []string
	// Hosts lists the accepted Host header values (host or host:port).
	// Default: PublicURL's host when set; otherwise any host is accepted.
	// Setting it defends against DNS rebinding.
	Hosts []string
	// InsecureSkipOriginCheck accepts WebSocket upgrades from any origin.
	// A page on another site could then open connections with the
	// visitor's cookies (cross-site WebSocket hijacking), so New refuses
	// it unless CSRFKey is also set: every upgrade must then carry a valid
	// CSRF token in the "csrf" query parameter, matching the CSRF cookie.
	InsecureSkipOriginCheck bool
	// CSRFKey signs CSRF tokens (at least 32 bytes). Default: derived from
	// TokenHMACSecret, or random per process when there is none — set it
	// when several nodes serve the same pages.
	CSRFKey []byte
	// SecureCookies marks the CSRF cookie Secure (set it behind HTTPS).
	// Default: true when PublicURL is https.
	SecureCookies bool
	// TrustedProxies lists proxies (CIDRs or IPs) whose X-Forwarded-For
	// and Forwarded headers are believed. Default none: the client IP is
	// the TCP peer, and forwarding headers are ignored.
	TrustedProxies []string

	// TokenTTL is the lifetime of connect tokens issued by TokenHandler;
	// default 300s.
	TokenTTL time.Duration
	// TokenSigningKey signs issued tokens for EdDSA, ES256 and RS256. With
	// HS256, TokenHMACSecret signs them.
	TokenSigningKey crypto.Signer
	// TokenSigningKeyID names the key of TokenKeys that signs issued tokens
	// (its "kid" goes in the header); for an asymmetric key,
	// TokenSigningKey holds the private half.
	TokenSigningKeyID string

	// ConnectTimeout is how long a new socket has to send a valid connect
	// frame; default 5s, then close 4408.
	ConnectTimeout time.Duration
	// MaxInboundFrame caps a client frame in bytes; default 64 KiB, larger
	// frames close the socket with 1009.
	MaxInboundFrame int64
	// MaxOutboundMessage caps a server frame in bytes; default 128 KiB.
	// Publish refuses larger messages with ErrTooLarge.
	MaxOutboundMessage int
	// MaxChannelsPerConn caps subscriptions per connection; default 128.
	MaxChannelsPerConn int
	// SendQueueMessages and SendQueueBytes bound each connection's outbound
	// queue; defaults 1024 messages and 4 MiB. A client past either bound
	// is closed 4503 (slow consumer).
	SendQueueMessages int
	SendQueueBytes    int
	// WriteTimeout bounds one write to the socket (a batch of queued
	// frames); default 10s.
	WriteTimeout time.Duration
	// CoalesceDelay is how long the writer of a connection that is behind
	// waits before its next write, so that the write carries more frames.
	// A connection is behind when its last write carried CoalesceAfter or
	// more frames: frames arrived faster than it sent them. A connection
	// that keeps up never waits, nor one whose queue is a quarter full.
	// On a saturated node this turns many small writes into fewer large
	// ones (more deliveries for the same CPU, at most this much more
	// latency); default 5ms, negative: never wait, at most 1s.
	CoalesceDelay time.Duration
	// PingInterval is how often the server pings; default 25s. PongTimeout
	// is how long it waits for the pong before closing; default 10s.
	PingInterval time.Duration
	PongTimeout  time.Duration

	// CommandRate and CommandBurst set each connection's token bucket on
	// inbound commands; defaults 100/s and 20. A negative rate disables
	// the limit.
	CommandRate  float64
	CommandBurst int
	// MaxRateWarnings is how many rate_limited replies a connection gets
	// before it is closed 4429; default 3.
	MaxRateWarnings int

	// Limits are the connection, attempt, cooldown and token-issuance
	// limits; the zero value is the defaults.
	Limits Limits

	// JSONLimits bound the structure of every client frame, checked in
	// one pass before it is decoded; zero fields take the defaults.
	JSONLimits JSONLimits

	// EnableCompression turns on permessage-deflate (without context
	// takeover, so each connection keeps no compression window between
	// messages); default off. The inbound limit applies to the
	// decompressed size, so a compression bomb closes 1009.
	EnableCompression bool

	// MaxConnLifetime closes a connection after this long with 1001, so
	// clients reconnect (and re-authenticate) periodically; default 24h,
	// negative disables.
	MaxConnLifetime time.Duration
	// MaxConnections caps open connections on this node; past it upgrades
	// get 503 with Retry-After. Default 10,000.
	MaxConnections int
	// MaxQueuedBytes caps the bytes waiting in all connections' outbound
	// queues together; past it upgrades get 503 with Retry-After until the
	// queues drain. Default 1 GiB.
	MaxQueuedBytes int64

	// Views serves live views over the socket ("join", "view", "leave"):
	// every join and every view event must carry the page's CSRF token
	// (checked against the CSRF cookie of the WebSocket handshake), and a
	// join's session token must be for the connection's user. Nil: live
	// views are off and those commands are answered "not_available".
	Views *live.Registry

	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// SecurityEvents receives every rejection; default logs them to Logger.
	SecurityEvents audit.Sink
	// Metrics records the gateway's Prometheus metrics (see package
	// metrics); nil records none. A Metrics serves one Gateway.
	Metrics *metrics.Metrics
	// Debug adds error details to client replies. Never enable it in
	// production.
	Debug bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// JSONLimits bound the structure of a client frame. A frame past any of
// them closes the connection 4400 before it is decoded, so a hostile frame
// costs one linear scan and no allocation for its contents. Duplicate keys
// (also under case folding) in the command and its params are refused,
// since parsers disagree on which one wins.
type JSONLimits struct {
	// MaxDepth bounds nesting of objects and arrays; default 32, at most 128.
	MaxDepth int
	// MaxKeys bounds members per object; default 256 (64 in the command
	// envelope and params).
	MaxKeys int
	// MaxArray bounds elements per array; default 4096.
	MaxArray int
	// MaxString bounds one string in bytes; default 64 KiB.
	MaxString int
	// MaxTokens bounds the values and keys of a frame; default 16384.
	MaxTokens int
}

func (c *Config) setDefaults() {
	if c.TokenAlgorithm == "" && len(c.TokenKeys) == 0 && c.JWKSURL == "" {
		c.TokenAlgorithm = "HS256"
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxTokenLifetime, DefaultMaxTokenLifetime)
	def(&c.TokenTTL, DefaultTokenTTL)
	def(&c.ExpiryJitter, DefaultExpiryJitter)
	def(&c.MaxConnLifetime, DefaultMaxConnLifetime)
	def(&c.PresenceTTL, DefaultPresenceTTL)
	defInt(&c.MaxConnections, DefaultMaxConnections)
	if c.MaxQueuedBytes == 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.CoalesceDelay, DefaultCoalesceDelay)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.PongTimeout, DefaultPongTimeout)
	if c.MaxInboundFrame == 0 {
		c.MaxInboundFrame = DefaultMaxInboundFrame
	}
	defInt(&c.MaxOutboundMessage, DefaultMaxOutboundMessage)
	defInt(&c.MaxChannelsPerConn, DefaultMaxChannels)
	defInt(&c.SendQueueMessages, DefaultSendQueueMessages)
	defInt(&c.SendQueueBytes, DefaultSendQueueBytes)
	defInt(&c.CommandBurst, DefaultCommandBurst)
	defInt(&c.MaxRateWarnings, DefaultMaxRateWarnings)
	if c.CommandRate == 0 {
		c.CommandRate = DefaultCommandRate
	}
	c.Limits.setDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SecurityEvents == nil {
		c.SecurityEvents = audit.NewSlogSink(c.Logger)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	var errs []error
	positive := func(name string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("livegate: config %s must be positive", name))
		}
	}
	positive("ConnectTimeout", c.ConnectTimeout > 0)
	positive("MaxTokenLifetime", c.MaxTokenLifetime > 0)
	positive("TokenTTL", c.TokenTTL > 0)
	if c.TokenTTL > c.MaxTokenLifetime {
		errs = append(errs, errors.New("livegate: config TokenTTL must not exceed MaxTokenLifetime"))
	}
	if c.ExpiryJitter < 0 {
		errs = append(errs, errors.New("livegate: config ExpiryJitter must not be negative"))
	}
	positive("MaxInboundFrame", c.MaxInboundFrame > 0)
	positive("MaxOutboundMessage", c.MaxOutboundMessage > 0)
	positive("MaxChannelsPerConn", c.MaxChannelsPerConn > 0)
	positive("SendQueueMessages", c.SendQueueMessages > 0)
	if c.SendQueueBytes < c.MaxOutboundMessage {
		errs = append(errs, errors.New("livegate: config SendQueueBytes must be at least MaxOutboundMessage"))
	}
	positive("WriteTimeout", c.WriteTimeout > 0)
	if c.TokenLeeway < 0 || c.TokenLeeway > MaxTokenLeeway {
		errs = append(errs, fmt.Errorf("livegate: config TokenLeeway must be between 0 and %v", MaxTokenLeeway))
	}
	if c.CoalesceDelay > time.Second {
		errs = append(errs, errors.New("livegate: config CoalesceDelay must be at most 1s"))
	}
	positive("PingInterval", c.PingInterval > 0)
	positive("PongTimeout", c.PongTimeout > 0)
	positive("CommandBurst", c.CommandBurst > 0)
	positive("MaxConnections", c.MaxConnections > 0)
	positive("MaxQueuedBytes", c.MaxQueuedBytes > 0)
	positive("MaxRateWarnings", c.MaxRateWarnings > 0)
	positive("PresenceTTL", c.PresenceTTL > 0)
	if c.AllowConnectWithoutToken && c.ConnectHook == nil {
		errs = append(errs, errors.New("livegate: config AllowConnectWithoutToken requires ConnectHook"))
	}
	if c.InsecureSkipOriginCheck && len(c.CSRFKey) == 0 {
		errs = append(errs, errors.New("livegate: config InsecureSkipOriginCheck without CSRFKey: "+
			"refusing to accept upgrades from any origin without another CSRF defence"))
	}
	return errors.Join(errs...)
}
