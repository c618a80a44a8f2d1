package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/internal/clientip"
	"github.com/livegate/livegate/internal/jsonlimit"
	"github.com/livegate/livegate/ratelimit"
)

// Gateway is what the HTTP API needs from a gateway; *livegate.Gateway
// implements it.
type Gateway interface {
	Publish(ctx context.Context, channel string, data any, opts ...livegate.PublishOption) (livegate.PublishResult, error)
	Disconnect(ctx context.Context, f livegate.DisconnectFilter) (int, error)
	RevokeUser(ctx context.Context, sub string) (int, error)
	RevokeSession(ctx context.Context, sid string) (int, error)
	RevokeToken(ctx context.Context, jti string) (int, error)
	Presence(ctx context.Context, channel string) ([]broker.ClientInfo, error)
	History(ctx context.Context, channel string, since *broker.Position, limit int) (broker.HistoryResult, error)
	Channels(prefix string) []livegate.ChannelInfo
}

var _ Gateway = (*livegate.Gateway)(nil)

// Defaults applied to zero Config fields.
const (
	DefaultMaxBodyBytes         = 1 << 20
	DefaultMaxBroadcastChannels = 100
	DefaultHistoryLimit         = 100
	DefaultMaxHistoryLimit      = 1000
)

// DefaultRateLimit is the per-key limit used when Config.RateLimit is zero:
// 100 requests a second on average, bursts of 200.
var DefaultRateLimit = ratelimit.Bucket(100, 200)

// DefaultAuthFailureLimit is the per-client-IP limit on failed
// authentications used when Config.AuthFailureLimit is zero: 30 a minute.
// Past it the IP gets 429 until the window allows another attempt.
var DefaultAuthFailureLimit = ratelimit.PerMinute(30)

// Audit event types emitted by the HTTP API, in addition to those of
// package audit.
const (
	// TypeAPIRequest: an authenticated API call was served; Reason "ok".
	TypeAPIRequest = "api_request"
	// TypeAPIDenied: an API call was refused or failed; Reason says why
	// (missing_key, invalid_key, expired_key, revoked_key, scope, tenant,
	// rate_limited, auth_limited, bad_request, too_large,
	// unsupported_media_type, method_not_allowed, not_found, unavailable,
	// internal, …).
	TypeAPIDenied = "api_denied"
)

// Config configures a Handler.
type Config struct {
	// Gateway receives the API's operations; required.
	Gateway Gateway
	// Keys verifies the API keys; required.
	Keys *apikey.Manager
	// SecurityEvents receives an event for every call, served or refused:
	// the key's id and name, the endpoint and the result. Pass the
	// gateway's sink (Config.SecurityEvents) so they land in the same
	// audit trail. Default: logged to Logger.
	SecurityEvents audit.Sink
	// Logger receives operational logs (gateway and store errors); nil
	// discards them. Neither logs nor events ever carry a key's secret.
	Logger *slog.Logger
	// RateLimit is each key's request limit; zero: DefaultRateLimit.
	RateLimit ratelimit.Rule
	// AuthFailureLimit limits failed authentications per client IP; zero:
	// DefaultAuthFailureLimit.
	AuthFailureLimit ratelimit.Rule
	// LimitStore makes the limiters; nil: ratelimit.MemoryStore{}. Use the
	// gateway's store (for instance Redis) so that limits hold across
	// nodes.
	LimitStore ratelimit.Store
	// MaxBodyBytes caps a request body; larger ones get 413. Default 1 MiB.
	MaxBodyBytes int64
	// MaxBroadcastChannels caps the channels of one broadcast; default 100.
	MaxBroadcastChannels int
	// MaxHistoryLimit caps the publications one history call returns;
	// default 1000.
	MaxHistoryLimit int
	// TrustedProxies lists proxies (CIDRs or IPs) whose X-Forwarded-For
	// and Forwarded headers are believed for the client IP of audit
	// events and failure limits. Default none: the TCP peer.
	TrustedProxies []string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Handler serves the HTTP API under /api/. Create it with New; it is safe
// for concurrent use.
type Handler struct {
	gw       Gateway
	keys     *apikey.Manager
	events   audit.Sink
	logger   *slog.Logger
	limiter  ratelimit.Limiter
	failures ratelimit.Limiter
	cooldown ratelimit.Cooldown
	clientIP *clientip.Resolver
	maxBody  int64
	maxBcast int
	maxHist  int
	jsonLim  jsonlimit.Limits
	now      func() time.Time
	routes   map[string]endpoint

	sweepMu   sync.Mutex
	lastSweep time.Time
}

// endpoint is one API operation: the request decoder and the call.
type endpoint func(h *Handler, c *call) (any, error)

// New returns the HTTP API handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Gateway == nil {
		return nil, errors.New("httpapi: Config.Gateway is required")
	}
	if cfg.Keys == nil {
		return nil, errors.New("httpapi: Config.Keys is required")
	}
	h := &Handler{
		gw:       cfg.Gateway,
		keys:     cfg.Keys,
		events:   cfg.SecurityEvents,
		logger:   cfg.Logger,
		maxBody:  cfg.MaxBodyBytes,
		maxBcast: cfg.MaxBroadcastChannels,
		maxHist:  cfg.MaxHistoryLimit,
		now:      cfg.Now,
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.events == nil {
		h.events = audit.NewSlogSink(h.logger)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.maxBcast <= 0 {
		h.maxBcast = DefaultMaxBroadcastChannels
	}
	if h.maxHist <= 0 {
		h.maxHist = DefaultMaxHistoryLimit
	}
	store := cfg.LimitStore
	if store == nil {
		store = ratelimit.MemoryStore{}
	}
	rule := cfg.RateLimit
	if rule == (ratelimit.Rule{}) {
		rule = DefaultRateLimit
	}
	var err error
	if h.limiter, err = store.NewLimiter("apikey", rule); err != nil {
		return nil, fmt.Errorf("httpapi: RateLimit: %w", err)
	}
	rule = cfg.AuthFailureLimit
	if rule == (ratelimit.Rule{}) {
		rule = DefaultAuthFailureLimit
	}
	if h.failures, err = store.NewLimiter("apikey_auth_ip", rule); err != nil {
		return nil, fmt.Errorf("httpapi: AuthFailureLimit: %w", err)
	}
	h.cooldown = store.NewCooldown("apikey_auth_ip")
	if h.clientIP, err = clientip.New(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("httpapi: TrustedProxies: %w", err)
	}
	// Bodies are small documents: strict syntax, one value, no duplicate
	// keys in the request object, strings up to the body size.
	h.jsonLim = jsonlimit.Limits{MaxString: int(h.maxBody), MaxArray: 1 << 16, MaxTokens: 1 << 18}
	h.routes = map[string]endpoint{
		"/api/publish":    (*Handler).publish,
		"/api/broadcast":  (*Handler).broadcast,
		"/api/disconnect": (*Handler).disconnect,
		"/api/revoke":     (*Handler).revoke,
		"/api/presence":   (*Handler).presence,
		"/api/history":    (*Handler).history,
		"/api/channels":   (*Handler).channels,
	}
	return h, nil
}

// call is one request in flight.
type call struct {
	w        http.ResponseWriter
	r        *http.Request
	endpoint string // e.g. "publish"
	ip       string
	key      apikey.Key
	body     []byte
	tenant   string // tenant of the event
	detail   string // e.g. the channel, for the event
}

// apiError is a refusal: the status, the client's generic code, and the
// reason recorded in the audit event.
type apiError struct {
	status int
	code   string
	reason string
	err    error // detail for the log, never sent to the client
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *apiError) Unwrap() error { return e.err }

// refuse returns an apiError.
func refuse(status int, code, reason string, err error) *apiError {
	return &apiError{status: status, code: code, reason: reason, err: err}
}

// Generic client messages, one per code.
var messages = map[string]string{
	"bad_request":            "the request is invalid",
	"unauthorized":           "a valid API key is required",
	"forbidden":              "the API key does not allow this",
	"not_found":              "not found",
	"method_not_allowed":     "use POST",
	"too_large":              "the request or message is too large",
	"unsupported_media_type": "the body must be application/json",
	"rate_limited":           "too many requests",
	"unavailable":            "the service is unavailable, retry later",
	"internal":               "internal error",
}

// ServeHTTP serves one API call.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	h.maybeSweep(now)
	c := &call{w: w, r: r, ip: h.ipOf(r)}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")

	ep, ok := h.routes[r.URL.Path]
	if !ok {
		c.endpoint = "unknown"
		h.fail(c, refuse(http.StatusNotFound, "not_found", "not_found", nil))
		return
	}
	c.endpoint = strings.TrimPrefix(r.URL.Path, "/api/")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(c, refuse(http.StatusMethodNotAllowed, "method_not_allowed", "method_not_allowed", nil))
		return
	}
	if err := h.authenticate(c, now); err != nil {
		h.fail(c, err)
		return
	}
	if err := h.readBody(c); err != nil {
		h.fail(c, err)
		return
	}
	resp, err := ep(h, c)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.record(c, TypeAPIRequest, audit.SeverityInfo, "ok")
	writeJSON(w, http.StatusOK, resp)
}

// ipOf returns the request's client IP.
func (h *Handler) ipOf(r *http.Request) string {
	if a := h.clientIP.ClientIP(r); a.IsValid() {
		return a.String()
	}
	return r.RemoteAddr
}

// authenticate verifies the request's key and applies the failure and
// per-key limits, setting c.key.
func (h *Handler) authenticate(c *call, now time.Time) *apiError {
	ctx := c.r.Context()
	if wait, blocked, err := h.cooldown.Blocked(ctx, c.ip, now); err != nil {
		return refuse(http.StatusServiceUnavailable, "unavailable", "unavailable", fmt.Errorf("auth cooldown: %w", err))
	} else if blocked {
		setRetryAfter(c.w, wait)
		return refuse(http.StatusTooManyRequests, "rate_limited", "auth_limited", nil)
	}
	text, ok := presentedKey(c.r)
	if !ok {
		return h.authFailed(c, now, "missing_key", nil)
	}
	k, err := h.keys.Verify(ctx, text)
	switch {
	case err == nil:
	case errors.Is(err, apikey.ErrExpired):
		c.key = k
		return h.authFailed(c, now, "expired_key", nil)
	case errors.Is(err, apikey.ErrRevoked):
		c.key = k
		return h.authFailed(c, now, "revoked_key", nil)
	case errors.Is(err, apikey.ErrInvalidKey):
		if id, ok := apikey.KeyID(text); ok {
			c.detail = "claimed_key=" + id
		}
		return h.authFailed(c, now, "invalid_key", nil)
	default:
		return refuse(http.StatusServiceUnavailable, "unavailable", "unavailable", err)
	}
	c.key = k
	res, err := h.limiter.Allow(ctx, "key:"+k.ID, now)
	if err != nil {
		return refuse(http.StatusServiceUnavailable, "unavailable", "unavailable", fmt.Errorf("rate limit: %w", err))
	}
	ratelimit.SetHeaders(c.w.Header(), res)
	if !res.Allowed {
		return refuse(http.StatusTooManyRequests, "rate_limited", "rate_limited", nil)
	}
	return nil
}

// authFailed counts a failed authentication of the client IP and returns
// the 401, or a 429 once the IP is past its failure limit.
func (h *Handler) authFailed(c *call, now time.Time, reason string, err error) *apiError {
	ctx := c.r.Context()
	res, lerr := h.failures.Allow(ctx, c.ip, now)
	if lerr == nil && !res.Allowed {
		if berr := h.cooldown.Block(ctx, c.ip, now.Add(res.RetryAfter)); berr != nil {
			h.logger.Warn("httpapi: block client", "err", berr)
		}
		setRetryAfter(c.w, res.RetryAfter)
		return refuse(http.StatusTooManyRequests, "rate_limited", reason, err)
	}
	c.w.Header().Set("WWW-Authenticate", `Bearer realm="livegate"`)
	return refuse(http.StatusUnauthorized, "unauthorized", reason, err)
}

// setRetryAfter sets Retry-After to d in whole seconds, at least 1.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	s := int64((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(s, 1), 10))
}

// presentedKey returns the key in "Authorization: Bearer" or "X-API-Key".
// Two different keys in one request are refused.
func presentedKey(r *http.Request) (string, bool) {
	var bearer string
	if a := r.Header.Values("Authorization"); len(a) == 1 {
		scheme, tok, ok := strings.Cut(a[0], " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			bearer = strings.TrimSpace(tok)
		}
	} else if len(a) > 1 {
		return "", false
	}
	var header string
	if x := r.Header.Values("X-API-Key"); len(x) == 1 {
		header = strings.TrimSpace(x[0])
	} else if len(x) > 1 {
		return "", false
	}
	switch {
	case bearer != "" && header != "" && bearer != header:
		return "", false
	case bearer != "":
		return bearer, true
	case header != "":
		return header, true
	}
	return "", false
}

// readBody checks the content type and reads the body into c.body.
func (h *Handler) readBody(c *call) *apiError {
	mt, _, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return refuse(http.StatusUnsupportedMediaType, "unsupported_media_type", "unsupported_media_type", nil)
	}
	if c.r.ContentLength > h.maxBody {
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "too_large", nil)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, h.maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "too_large", nil)
	}
	if err != nil {
		return refuse(http.StatusBadRequest, "bad_request", "bad_request", fmt.Errorf("read body: %w", err))
	}
	c.body = body
	return nil
}

// decode parses c.body strictly into v: exactly one JSON object within the
// structural limits, no duplicate or unknown fields.
func (h *Handler) decode(c *call, v any) *apiError {
	if err := h.jsonLim.Check(c.body); err != nil {
		return refuse(http.StatusBadRequest, "bad_request", "bad_request", err)
	}
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return refuse(http.StatusBadRequest, "bad_request", "bad_request", fmt.Errorf("decode: %w", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return refuse(http.StatusBadRequest, "bad_request", "bad_request", errors.New("trailing data"))
	}
	return nil
}

// fail answers a refused or failed call and records it.
func (h *Handler) fail(c *call, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = refuse(http.StatusInternalServerError, "internal", "internal", err)
	}
	sev := audit.SeverityWarning
	switch ae.reason {
	case "revoked_key":
		sev = audit.SeverityCritical // a leaked key is still in use
	case "not_found", "method_not_allowed":
		sev = audit.SeverityInfo
	}
	if ae.err != nil && ae.status >= 500 {
		h.logger.Error("httpapi: "+c.endpoint, "key", c.key.ID, "err", ae.err)
	} else if ae.err != nil {
		h.logger.Debug("httpapi: "+c.endpoint, "key", c.key.ID, "reason", ae.reason, "err", ae.err)
	}
	h.record(c, TypeAPIDenied, sev, ae.reason)
	writeJSON(c.w, ae.status, errorBody{Error: ae.code, Message: messages[ae.code]})
}

// record emits the call's security event.
func (h *Handler) record(c *call, typ string, sev audit.Severity, reason string) {
	e := audit.Event{
		Type:      typ,
		Time:      h.now(),
		Severity:  sev,
		Tenant:    c.tenant,
		IP:        c.ip,
		Reason:    reason,
		RequestID: c.r.Header.Get("X-Request-Id"),
	}
	var d strings.Builder
	d.WriteString("endpoint=" + c.endpoint)
	if c.key.ID != "" {
		e.User = "apikey:" + c.key.ID
		d.WriteString(" key=" + c.key.Name)
	}
	if c.detail != "" {
		d.WriteString(" " + c.detail)
	}
	e.Detail = d.String()
	h.events.Record(c.r.Context(), e)
}

// errorBody is the JSON body of every refusal.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeJSON writes v as the JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// sweepInterval is how often the in-memory limiters are swept.
const sweepInterval = time.Minute

// maybeSweep sweeps the in-memory limiters when a sweep is due, so idle
// keys and client IPs do not accumulate.
func (h *Handler) maybeSweep(now time.Time) {
	if !h.sweepMu.TryLock() {
		return
	}
	defer h.sweepMu.Unlock()
	if now.Sub(h.lastSweep) < sweepInterval {
		return
	}
	h.lastSweep = now
	type sweeper interface{ Sweep(time.Time) int }
	for _, s := range []any{h.limiter, h.failures, h.cooldown} {
		if s, ok := s.(sweeper); ok {
			s.Sweep(now)
		}
	}
}
