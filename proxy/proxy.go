package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/livegate/livegate/internal/jsonlimit"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one backend request, connection included.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxResponseBytes bounds a backend response body.
	DefaultMaxResponseBytes = 64 << 10
	// DefaultBreakerFailures is the number of consecutive failures that
	// opens the circuit.
	DefaultBreakerFailures = 5
	// DefaultBreakerOpenFor is how long the circuit stays open before
	// it lets probe requests through (half-open).
	DefaultBreakerOpenFor = 30 * time.Second
	// DefaultBreakerHalfOpenRequests is the number of requests let through while
	// half-open; when all succeed the circuit closes, and any failure
	// opens it again.
	DefaultBreakerHalfOpenRequests = 1
)

// Default route paths, appended to the backend URL's path.
const (
	DefaultConnectPath    = "/connect"
	DefaultSubscribePath  = "/subscribe"
	DefaultEventPath      = "/event"
	DefaultDisconnectPath = "/disconnect"
)

// DefaultForwardHeaders are the upgrade request headers sent with a
// connect request when Config.ForwardHeaders is nil.
var DefaultForwardHeaders = []string{"Cookie", "Authorization", "User-Agent", "Accept-Language"}

// Limits on what a backend may answer.
const (
	// MaxChannels is the most channels a connect response may list, and
	// MaxPublications the most publications an event response may carry.
	MaxChannels     = 64
	MaxPublications = 32
	// maxField bounds user, session, tenant, group, permission and channel
	// strings in a connect response.
	maxField  = 256
	maxGroups = 64
)

// Config configures a Proxy. The zero value of every field but Backend
// and Secret is a safe default.
type Config struct {
	// Backend is the base URL of the backend, e.g.
	// "https://app.internal/livegate". It must be https, or http to a
	// loopback address (localhost, 127.0.0.0/8, ::1) unless
	// InsecureAllowHTTP is set. It has no user info, query or fragment.
	// Required.
	Backend string
	// InsecureAllowHTTP allows an http Backend on a non-loopback host.
	// Requests are signed but not encrypted: cookies, authorization
	// headers and claims cross the network in the clear.
	InsecureAllowHTTP bool
	// Secret signs every backend request (see Sign); at least
	// MinSecretBytes. Required.
	Secret []byte
	// Timeout bounds one backend request; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; zero means
	// DefaultMaxResponseBytes. A larger response is a failure.
	MaxResponseBytes int64
	// Routes selects what is forwarded. The zero value forwards nothing.
	Routes Routes
	// Paths overrides the route paths; empty fields take the defaults.
	Paths Paths
	// ForwardHeaders names the headers of the WebSocket upgrade request
	// sent with a connect request. nil means DefaultForwardHeaders; an
	// empty non-nil slice forwards none. Hop-by-hop headers, Host,
	// Content-*, Accept-Encoding, Sec-WebSocket-* and Livegate-* can never
	// be forwarded: listing one is a configuration error.
	ForwardHeaders []string
	// ForwardToken sends the raw connect token to the backend in "token".
	// By default the backend gets only the verified claims.
	ForwardToken bool
	// Breaker configures the circuit breaker.
	Breaker BreakerConfig
	// Transport sends the requests; nil means a dedicated transport that
	// ignores proxy environment variables and requires TLS 1.2 or later.
	// Redirects are never followed whatever the transport.
	Transport http.RoundTripper
	// Logger receives failure details; nil discards them.
	Logger *slog.Logger
	// Now is the clock for signing; nil means time.Now.
	Now func() time.Time
}

// Routes selects the client actions forwarded to the backend.
type Routes struct {
	// Connect makes ConnectHook forward every connect to the backend,
	// which decides who the connection is.
	Connect bool
	// Subscribe makes Authorizer ask the backend about subscriptions.
	Subscribe bool
	// Disconnect makes OnDisconnect tell the backend about closed
	// connections.
	Disconnect bool
	// Events is the allow-list of client events forwarded to the backend:
	// Register registers a handler for exactly these names, so any other
	// event is answered not_available by the gateway and never reaches
	// the backend.
	Events []string
}

// Paths are the backend paths of the routes, appended to the Backend
// URL's path. Each must start with "/" and have no query or fragment.
type Paths struct {
	Connect    string // default DefaultConnectPath
	Subscribe  string // default DefaultSubscribePath
	Event      string // default DefaultEventPath
	Disconnect string // default DefaultDisconnectPath
}

// BreakerConfig configures the circuit breaker shared by all routes. A
// failure is any error wrapping ErrBackend except a call whose caller
// went away (its context was cancelled: the client disconnected); a
// caller's deadline passing does count. An explicit deny is a success.
type BreakerConfig struct {
	// Failures is the number of consecutive failures that opens the
	// circuit; zero means DefaultBreakerFailures.
	Failures uint32
	// OpenFor is how long the circuit stays open, refusing every call
	// with ErrCircuitOpen, before it goes half-open; zero means
	// DefaultBreakerOpenFor.
	OpenFor time.Duration
	// HalfOpenRequests is the number of calls let through while half-open; zero
	// means DefaultBreakerHalfOpenRequests.
	HalfOpenRequests uint32
}

// Proxy forwards client actions to an HTTP backend, signing every request.
// Create it with New; wire it into a gateway with ConnectHook, Authorizer,
// Register and OnDisconnect. It is safe for concurrent use.
type Proxy struct {
	cfg     Config
	base    *url.URL
	paths   Paths
	client  *http.Client
	breaker *gobreaker.CircuitBreaker[[]byte]
	forward []string // canonical header names
	log     *slog.Logger
}

// New checks cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	base, err := checkBackend(cfg.Backend, cfg.InsecureAllowHTTP)
	if err != nil {
		return nil, err
	}
	if len(cfg.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("%w: Secret must be at least %d bytes, got %d", ErrInvalidConfig, MinSecretBytes, len(cfg.Secret))
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: negative Timeout", ErrInvalidConfig)
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.MaxResponseBytes < 0:
		return nil, fmt.Errorf("%w: negative MaxResponseBytes", ErrInvalidConfig)
	case cfg.MaxResponseBytes == 0:
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	paths, err := checkPaths(cfg.Paths)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	for _, name := range cfg.Routes.Events {
		if !policy.ValidEventName(name) {
			return nil, fmt.Errorf("%w: event name %q must match ^[a-z][a-z0-9_]{0,63}$", ErrInvalidConfig, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: event %q listed twice", ErrInvalidConfig, name)
		}
		seen[name] = true
	}
	cfg.Routes.Events = append([]string(nil), cfg.Routes.Events...)
	forward := cfg.ForwardHeaders
	if forward == nil {
		forward = DefaultForwardHeaders
	}
	p := &Proxy{cfg: cfg, base: base, paths: paths}
	for _, h := range forward {
		c, err := checkForwardHeader(h)
		if err != nil {
			return nil, err
		}
		p.forward = append(p.forward, c)
	}
	if cfg.Breaker.Failures == 0 {
		cfg.Breaker.Failures = DefaultBreakerFailures
	}
	if cfg.Breaker.OpenFor < 0 {
		return nil, fmt.Errorf("%w: negative Breaker.OpenFor", ErrInvalidConfig)
	}
	if cfg.Breaker.OpenFor == 0 {
		cfg.Breaker.OpenFor = DefaultBreakerOpenFor
	}
	if cfg.Breaker.HalfOpenRequests == 0 {
		cfg.Breaker.HalfOpenRequests = DefaultBreakerHalfOpenRequests
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p.log = slog.New(logsafe.Handler(cfg.Logger.Handler()))
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	failures := cfg.Breaker.Failures
	p.breaker = gobreaker.NewCircuitBreaker[[]byte](gobreaker.Settings{
		Name:        "livegate-proxy",
		MaxRequests: cfg.Breaker.HalfOpenRequests,
		Timeout:     cfg.Breaker.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsExcluded:  func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			p.log.Warn("proxy: circuit breaker", "from", from.String(), "to", to.String())
		},
	})
	transport := cfg.Transport
	if transport == nil {
		transport = &http.Transport{
			Proxy:                  nil,
			DialContext:            (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    cfg.Timeout,
			ResponseHeaderTimeout:  cfg.Timeout,
			MaxIdleConns:           100,
			MaxIdleConnsPerHost:    100,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 32 << 10,
			ForceAttemptHTTP2:      true,
		}
	}
	p.client = &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	p.cfg = cfg
	return p, nil
}

// checkBackend parses and vets the backend URL.
func checkBackend(raw string, allowHTTP bool) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: Backend is required", ErrInvalidConfig)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: Backend: %w", ErrInvalidConfig, err)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: Backend must be an absolute http(s) URL", ErrInvalidConfig)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("%w: Backend must not have user info, a query or a fragment", ErrInvalidConfig)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%w: Backend %q: http is allowed only to a loopback address (use https, or set InsecureAllowHTTP)", ErrInvalidConfig, u.Host)
		}
	default:
		return nil, fmt.Errorf("%w: Backend scheme must be https or http, got %q", ErrInvalidConfig, u.Scheme)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func checkPaths(p Paths) (Paths, error) {
	for _, f := range []struct {
		v   *string
		def string
	}{{&p.Connect, DefaultConnectPath}, {&p.Subscribe, DefaultSubscribePath}, {&p.Event, DefaultEventPath}, {&p.Disconnect, DefaultDisconnectPath}} {
		if *f.v == "" {
			*f.v = f.def
			continue
		}
		if !strings.HasPrefix(*f.v, "/") || strings.ContainsAny(*f.v, "?#%\\ \t\r\n") || strings.Contains(*f.v, "//") {
			return Paths{}, fmt.Errorf("%w: path %q must start with / and hold no query, fragment, escape or space", ErrInvalidConfig, *f.v)
		}
	}
	return p, nil
}

// neverForwarded are headers that are never sent to the backend: hop by
// hop, describing the upgrade or the gateway's own request, or livegate's.
var neverForwarded = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true, "Content-Type": true,
	"Content-Encoding": true, "Accept-Encoding": true, "Expect": true,
}

func forbiddenHeader(canonical string) bool {
	return neverForwarded[canonical] ||
		strings.HasPrefix(canonical, "Livegate-") ||
		strings.HasPrefix(canonical, "Sec-Websocket-")
}

var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

func checkForwardHeader(h string) (string, error) {
	if !headerName.MatchString(h) {
		return "", fmt.Errorf("%w: ForwardHeaders: invalid header name %q", ErrInvalidConfig, h)
	}
	c := http.CanonicalHeaderKey(h)
	if forbiddenHeader(c) {
		return "", fmt.Errorf("%w: ForwardHeaders: %q is never forwarded", ErrInvalidConfig, h)
	}
	return c, nil
}

// connIDPattern is the shape of a gateway connection id.
var connIDPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._:-]{0,127}$`)

func checkConnID(id string) error {
	if !connIDPattern.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrInvalidConnID, logsafe.Truncate(id, 64))
	}
	return nil
}

// errCallerGone marks a call abandoned because the caller's context ended
// (the client went away); it does not count against the backend.
var errCallerGone = errors.New("proxy: caller went away")

// response is a route's decoded response; check vets its content.
type response interface {
	keys() []string
	check(now time.Time) error
}

// post sends in as JSON to path and, when out is not nil, decodes the
// response into it and checks it. header, if not nil, carries headers
// forwarded from the client. Every failure wraps ErrBackend and, except
// when ctx ended first, counts against the circuit breaker.
func (p *Proxy) post(ctx context.Context, path string, in any, header http.Header, out response) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%w: encode request: %w", ErrBackend, err)
	}
	_, err = p.breaker.Execute(func() ([]byte, error) {
		err := p.do(ctx, path, body, header, out)
		if err != nil && errors.Is(ctx.Err(), context.Canceled) {
			err = fmt.Errorf("%w: %w", errCallerGone, err)
		}
		return nil, err
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return fmt.Errorf("%w: %w: %w", ErrBackend, ErrCircuitOpen, err)
	case err != nil:
		return fmt.Errorf("%w: %s: %w", ErrBackend, path, err)
	}
	return nil
}

// do performs one signed request and reads the response into out.
func (p *Proxy) do(ctx context.Context, path string, body []byte, header http.Header, out response) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	u := *p.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "livegate-proxy")
	}
	if err := Sign(req, body, p.cfg.Secret, p.cfg.Now()); err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	limit := p.cfg.MaxResponseBytes
	if out == nil {
		// The route's answer is ignored, but it must still succeed.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("%w: status %d", ErrBadResponse, resp.StatusCode)
		}
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
		return fmt.Errorf("%w: status %d", ErrBadResponse, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fmt.Errorf("%w: content type %q", ErrBadResponse, logsafe.Truncate(resp.Header.Get("Content-Type"), 64))
	}
	if resp.ContentLength > limit {
		return fmt.Errorf("%w: %d bytes", ErrResponseTooLarge, resp.ContentLength)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, limit)
	}
	if err := decode(data, out); err != nil {
		return err
	}
	if err := out.check(p.cfg.Now()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return nil
}

// decode checks a response body's structure and decodes it strictly: it
// must be one JSON object whose keys are all out's, spelled exactly, with
// no duplicate key and nothing after it.
func decode(data []byte, out response) error {
	if err := (jsonlimit.Limits{MaxDepth: 16}).Check(data); err != nil {
		return fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrBadResponse)
	}
	if err := protocol.CheckObjectKeys(data, out.keys()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data", ErrBadResponse)
	}
	return nil
}

// decodeStrict decodes one JSON object with exactly spelled, known keys.
func decodeStrict(b []byte, v any, keys []string) error {
	if err := protocol.CheckObjectKeys(b, keys); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
