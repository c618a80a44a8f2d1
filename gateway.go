package livegate

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/csrf"
	"github.com/livegate/livegate/internal/clientip"
	"github.com/livegate/livegate/internal/jsonlimit"
	"github.com/livegate/livegate/internal/origin"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// Gateway is a running livegate instance. It is an http.Handler that
// accepts WebSocket connections; mount it on the path clients dial (the
// dev server uses /ws). Create it with New.
type Gateway struct {
	cfg         Config
	verifier    *auth.Verifier
	replay      auth.ReplayStore
	revocations auth.Revocations
	broker      broker.Broker
	ownBroker   bool
	policies    atomic.Pointer[policy.Set]
	nsMu        sync.Mutex // serialises SetNamespaces
	events      audit.Sink
	hub         *hub
	acceptOpts  websocket.AcceptOptions
	origins     *origin.Policy // nil: same origin as the request
	hosts       map[string]bool
	clientIP    *clientip.Resolver
	csrf        *csrf.Protector
	signer      *auth.Signer // nil when no signing key is configured
	jsonLimits  jsonlimit.Limits
	limits      atomic.Pointer[limiters]
	limitsMu    sync.Mutex // serialises SetLimits
	nodeID      string
	control     broker.Control // nil: single node
	presence    broker.Presence
	// present holds the local subscriptions with a presence entry, which
	// the presence loop refreshes.
	presentMu sync.Mutex
	present   map[*subscription]struct{}

	handlersMu  sync.RWMutex
	handlers    map[string]*registeredHandler
	authorizers map[string]Authorizer

	connsMu     sync.Mutex
	conns       map[*conn]struct{}
	connWG      sync.WaitGroup
	closing     atomic.Bool
	connCount   atomic.Int64
	queuedBytes atomic.Int64
	swept       atomic.Int64
	nextID      atomic.Uint64
	idBase      string

	stopSweep    context.CancelFunc
	sweepDone    chan struct{}
	presenceDone chan struct{}
}

// sweeper is implemented by back ends that drop expired entries on demand.
type sweeper interface{ Sweep() int }

// SweepInterval is how often the gateway sweeps the expired entries of its
// in-memory broker and replay store.
const SweepInterval = 30 * time.Second

// QueueMeasureInterval is how often the gateway totals its connections'
// queued outbound bytes for the MaxQueuedBytes check.
const QueueMeasureInterval = time.Second

func (g *Gateway) sweepLoop(ctx context.Context, targets []sweeper) {
	defer close(g.sweepDone)
	sweep := time.NewTicker(SweepInterval)
	defer sweep.Stop()
	measure := time.NewTicker(QueueMeasureInterval)
	defer measure.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-measure.C:
			g.measureQueues()
		case <-sweep.C:
			n := g.limits.Load().sweep(g.cfg.Now()) + g.sweepHandlerLimits()
			for _, s := range targets {
				n += s.Sweep()
			}
			g.swept.Add(int64(n))
			g.cfg.Metrics.Swept(n)
			if n > 0 {
				g.cfg.Logger.Debug("swept expired entries", "count", n)
			}
		}
	}
}

// New validates cfg and returns a Gateway ready to be mounted.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ps, err := newPolicySet(cfg.Namespaces, cfg.Roles)
	if err != nil {
		return nil, err
	}
	seed, err := auth.GenerateSecret(6)
	if err != nil {
		return nil, fmt.Errorf("livegate: %w", err)
	}
	if cfg.NodeID == "" {
		node, err := auth.GenerateSecret(8)
		if err != nil {
			return nil, fmt.Errorf("livegate: %w", err)
		}
		cfg.NodeID = fmt.Sprintf("%x", node)
	}
	g := &Gateway{
		cfg:      cfg,
		replay:   cfg.ReplayStore,
		broker:   cfg.Broker,
		events:   cfg.SecurityEvents,
		handlers: make(map[string]*registeredHandler),
		conns:    make(map[*conn]struct{}),
		idBase:   fmt.Sprintf("%x", seed),
		nodeID:   cfg.NodeID,
		present:  make(map[*subscription]struct{}),
	}
	g.policies.Store(ps)
	if err := g.setupHTTP(); err != nil {
		return nil, err
	}
	g.jsonLimits = jsonlimit.Limits(cfg.JSONLimits)
	lim, err := newLimiters(cfg.Limits, nil)
	if err != nil {
		return nil, err
	}
	g.limits.Store(lim)
	// Everything that can fail is checked above; from here on New starts
	// goroutines (JWKS refresh, sweeper), so it must not fail after them.
	g.verifier, err = auth.NewVerifier(auth.VerifierConfig{
		Algorithm:   cfg.TokenAlgorithm,
		HMACSecret:  cfg.TokenHMACSecret,
		PublicKey:   cfg.TokenPublicKey,
		Keys:        cfg.TokenKeys,
		JWKSURL:     cfg.JWKSURL,
		Audience:    cfg.Audience,
		Issuer:      cfg.Issuer,
		MaxLifetime: cfg.MaxTokenLifetime,
		Leeway:      cfg.TokenLeeway,
		RequireJTI:  cfg.RequireTokenID,
		Now:         cfg.Now,
		Logger:      cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("livegate: token verification: %w", err)
	}
	if g.replay == nil {
		g.replay = auth.NewMemoryReplayStore(cfg.Now)
	}
	g.revocations = cfg.Revocations
	if g.revocations == nil {
		g.revocations = auth.NewMemoryRevocations(cfg.Now)
	}
	if g.broker == nil {
		g.broker = broker.NewMemory(broker.MemoryConfig{Now: cfg.Now})
		g.ownBroker = true
	}
	g.hub = newHub(g.broker, cfg.Metrics, cfg.Now)
	g.broker.SetHandler(g.hub)
	if ctl, ok := g.broker.(broker.Control); ok {
		g.control = ctl
		ctl.SetControlHandler(g.handleControl)
	}
	g.presence = cfg.Presence
	if g.presence == nil {
		if p, ok := g.broker.(broker.Presence); ok {
			g.presence = p
		} else {
			g.presence = broker.NewMemoryPresence(cfg.Now)
		}
	}
	g.acceptOpts = websocket.AcceptOptions{
		Subprotocols: []string{protocol.Subprotocol},
		// The origin was checked by ServeHTTP with exact origin matching,
		// which is stricter than the library's host patterns.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	}
	if cfg.EnableCompression {
		g.acceptOpts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	var targets []sweeper
	for _, t := range []any{g.replay, g.revocations, g.broker, g.presence} {
		if s, ok := t.(sweeper); ok {
			targets = append(targets, s)
		}
	}
	sweepCtx, stop := context.WithCancel(context.Background())
	g.stopSweep, g.sweepDone = stop, make(chan struct{})
	go g.sweepLoop(sweepCtx, targets)
	g.presenceDone = make(chan struct{})
	go g.presenceLoop(sweepCtx)
	return g, nil
}

// Handle registers the handler for client events called name. Only
// registered names ever run; name must match ^[a-z][a-z0-9_]{0,63}$.
// Handlers may be registered while the gateway serves.
func (g *Gateway) Handle(name string, h Handler, opts ...HandleOption) error {
	if !policy.ValidEventName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidEventName, name)
	}
	if h == nil {
		return errors.New("livegate: nil handler")
	}
	var o handleOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.rate < 0 || (o.rate > 0 && o.burst < 1) {
		return fmt.Errorf("livegate: handler %q: RateLimit needs a positive rate and burst", name)
	}
	rh := &registeredHandler{name: name, h: h, rate: o.rate, burst: o.burst}
	if o.perUser != nil {
		m, err := g.limits.Load().store.NewLimiter("handler_"+name, *o.perUser)
		if err != nil {
			return fmt.Errorf("livegate: handler %q: %w", name, err)
		}
		rh.perUser = m
	}
	if o.access != nil {
		a := *o.access
		if a.Mode == policy.ModeDeny {
			a.Mode = policy.ModeAuthenticated
		}
		guard, err := g.policies.Load().CompileGuard(a)
		if err != nil {
			return fmt.Errorf("livegate: handler %q: %w", name, err)
		}
		rh.guard = guard
	}
	g.handlersMu.Lock()
	defer g.handlersMu.Unlock()
	if _, dup := g.handlers[name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateHandler, name)
	}
	g.handlers[name] = rh
	return nil
}

func (g *Gateway) handler(name string) *registeredHandler {
	g.handlersMu.RLock()
	h := g.handlers[name]
	g.handlersMu.RUnlock()
	return h
}

// Authorizer decides, after the namespace policy allowed it, whether the
// connection of id may subscribe to channel, for namespaces whose access
// depends on application state (who owns an operation, who is in a
// document). Returning an error refuses with the generic forbidden error;
// the error's text goes to the audit trail only. The context carries the
// connection's id and client IP: see ConnFromContext.
type Authorizer func(ctx context.Context, id auth.Identity, channel string) error

// Authorize adds an Authorizer for a configured namespace. Like Handle, it
// may be called while the gateway serves; one per namespace.
func (g *Gateway) Authorize(namespace string, az Authorizer) error {
	if _, err := g.policies.Load().Lookup(namespace + ":x"); err != nil {
		return fmt.Errorf("livegate: authorizer for %q: %w", namespace, err)
	}
	if az == nil {
		return errors.New("livegate: nil authorizer")
	}
	g.handlersMu.Lock()
	defer g.handlersMu.Unlock()
	if _, dup := g.authorizers[namespace]; dup {
		return fmt.Errorf("livegate: authorizer for %q already set", namespace)
	}
	if g.authorizers == nil {
		g.authorizers = make(map[string]Authorizer)
	}
	g.authorizers[namespace] = az
	return nil
}

func (g *Gateway) authorizer(namespace string) Authorizer {
	g.handlersMu.RLock()
	defer g.handlersMu.RUnlock()
	return g.authorizers[namespace]
}

// PublishResult is the stream position of a publication.
type PublishResult struct {
	Offset uint64
	Epoch  string
}

// PublishOption configures one Publish call.
type PublishOption func(*publishOptions)

type publishOptions struct {
	tenant string
}

// WithTenant publishes into a tenant-scoped namespace for tenant: only
// that tenant's connections receive it. Required for tenant-scoped
// namespaces, refused for others.
func WithTenant(tenant string) PublishOption {
	return func(o *publishOptions) { o.tenant = tenant }
}

// Publish sends data to every subscriber of channel on every node. data is
// encoded as JSON, except json.RawMessage and []byte, which must already
// be valid JSON. The channel's namespace must be configured; its history
// settings apply.
func (g *Gateway) Publish(ctx context.Context, channel string, data any, opts ...PublishOption) (PublishResult, error) {
	if g.closing.Load() {
		return PublishResult{}, ErrClosed
	}
	tenant := ""
	if len(opts) > 0 {
		// Only here does the options struct escape to the heap.
		o := new(publishOptions)
		for _, opt := range opts {
			opt(o)
		}
		tenant = o.tenant
	}
	ns, internal, err := g.policies.Load().Internal(channel, tenant)
	switch {
	case errors.Is(err, policy.ErrInvalidChannel):
		return PublishResult{}, ErrInvalidChannel
	case errors.Is(err, policy.ErrUnknownNamespace):
		return PublishResult{}, ErrUnknownNamespace
	case errors.Is(err, policy.ErrNoTenant), errors.Is(err, policy.ErrDenied):
		return PublishResult{}, fmt.Errorf("%w: %w", ErrTenant, err)
	case err != nil:
		return PublishResult{}, fmt.Errorf("livegate: publish: %w", err)
	}
	var raw []byte
	switch d := data.(type) {
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		raw, err = json.Marshal(data)
		if err != nil {
			return PublishResult{}, fmt.Errorf("livegate: publish: %w", err)
		}
	}
	if !json.Valid(raw) {
		return PublishResult{}, ErrInvalidData
	}
	return g.publish(ctx, internal, raw, ns)
}

func (g *Gateway) publish(ctx context.Context, channel string, raw []byte, ns policy.NamespaceConfig) (PublishResult, error) {
	// The offset has at most 20 digits and the epoch is short; checking
	// with the maximum keeps the frame within the limit once encoded.
	if protocol.PushSize(channel, 1<<63, "", raw)+64 > g.cfg.MaxOutboundMessage {
		return PublishResult{}, ErrTooLarge
	}
	pos, err := g.broker.Publish(ctx, channel, raw, broker.PublishOptions{
		HistorySize: ns.HistorySize,
		HistoryTTL:  ns.HistoryTTL,
	})
	if err != nil {
		g.cfg.Metrics.BrokerError("publish")
		g.cfg.Logger.WarnContext(ctx, "broker publish failed", "err", err)
		return PublishResult{}, fmt.Errorf("livegate: publish: %w: %w", ErrBrokerUnavailable, err)
	}
	g.cfg.Metrics.Published()
	return PublishResult{Offset: pos.Offset, Epoch: pos.Epoch}, nil
}

// ServeHTTP accepts a WebSocket connection. Requests that are not a GET
// upgrade offering subprotocol livegate.v1 from an allowed origin are
// refused before the upgrade.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := g.clientIPOf(r)
	reject := func(status int, reason string) {
		g.cfg.Metrics.UpgradeRefused(reason)
		g.securityEvent(r.Context(), audit.Event{
			Type: audit.TypeUpgradeRejected, Severity: audit.SeverityWarning,
			IP: ip, Reason: reason, Detail: r.Header.Get("Origin"),
		})
		http.Error(w, http.StatusText(status), status)
	}
	if g.closing.Load() {
		g.cfg.Metrics.UpgradeRefused("closing")
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		reject(http.StatusMethodNotAllowed, "method")
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		reject(http.StatusUpgradeRequired, "not_websocket")
		return
	}
	if !g.hostAllowed(r) {
		reject(http.StatusForbidden, "host")
		return
	}
	if g.cfg.InsecureSkipOriginCheck {
		if err := g.csrf.CheckToken(r, r.URL.Query().Get("csrf")); err != nil {
			reject(http.StatusForbidden, "csrf")
			return
		}
	} else if !g.originAllowed(r) {
		reject(http.StatusForbidden, "origin")
		return
	}
	if !headerHasToken(r.Header, "Sec-WebSocket-Protocol", protocol.Subprotocol) {
		reject(http.StatusBadRequest, "subprotocol")
		return
	}
	if reason := g.overloaded(); reason != "" {
		w.Header().Set("Retry-After", "5")
		reject(http.StatusServiceUnavailable, reason)
		return
	}
	refused, slot := g.admit(w, r, ip)
	if refused != nil {
		if refused.status == http.StatusTooManyRequests {
			g.cfg.Metrics.RateLimited(refused.reason)
		}
		reject(refused.status, refused.reason)
		return
	}
	releaseIP := func() {
		if slot {
			g.releaseIP(ip)
		}
	}
	ws, out, err := g.accept(w, r)
	if err != nil {
		releaseIP()
		g.cfg.Metrics.UpgradeRefused("handshake")
		g.cfg.Logger.DebugContext(r.Context(), "websocket accept failed", "err", err)
		return
	}
	c := g.newConn(ws, ip, r.Header.Get("Origin"))
	c.out = out
	c.direct = out != nil && out.Messages()
	c.csrfCookie = g.csrf.CookieValue(r)
	if g.cfg.ConnectHook != nil {
		c.header = r.Header.Clone()
	}
	if !g.track(c) {
		releaseIP()
		g.cfg.Metrics.UpgradeRefused("closing")
		_ = ws.Close(websocket.StatusCode(protocol.CloseGoingAway), protocol.CloseGoingAway.String())
		return
	}
	// Serve on a fresh goroutine and let net/http's handler goroutine
	// return: the connection is hijacked, and this drops that goroutine's
	// grown stack and the request it holds (about half the memory of an
	// idle connection).
	go func() {
		defer releaseIP()
		defer g.untrack(c)
		c.serve()
	}()
}

func (g *Gateway) track(c *conn) bool {
	g.connsMu.Lock()
	defer g.connsMu.Unlock()
	if g.closing.Load() {
		return false
	}
	g.conns[c] = struct{}{}
	g.connCount.Add(1)
	g.connWG.Add(1)
	g.cfg.Metrics.ConnectionOpened()
	return true
}

func (g *Gateway) untrack(c *conn) {
	g.connsMu.Lock()
	delete(g.conns, c)
	g.cfg.Metrics.ConnectionEnded()
	g.connCount.Add(-1)
	g.connsMu.Unlock()
	g.connWG.Done()
}

func (g *Gateway) sweepHandlerLimits() int {
	g.handlersMu.RLock()
	defer g.handlersMu.RUnlock()
	n := 0
	for _, rh := range g.handlers {
		if s, ok := rh.perUser.(interface{ Sweep(time.Time) int }); ok {
			n += s.Sweep(g.cfg.Now())
		}
	}
	return n
}

// newPolicySet validates namespaces and builds the policy set.
func newPolicySet(namespaces []policy.NamespaceConfig, roles []policy.Role) (*policy.Set, error) {
	ps, err := policy.New(policy.Config{Namespaces: namespaces, Roles: roles})
	if err != nil {
		return nil, fmt.Errorf("livegate: %w", err)
	}
	for _, ns := range namespaces {
		if ns.Publish.Mode == policy.ModeToken {
			// publish carries no subscription token, so such a rule could
			// only ever deny.
			return nil, fmt.Errorf("livegate: config namespace %q: Publish cannot require a subscription token", ns.Name)
		}
	}
	return ps, nil
}

func counterLen(c any) int {
	if l, ok := c.(interface{ Len() int }); ok {
		return l.Len()
	}
	return 0
}

// Stats are counters of a gateway's state, for health checks and tests.
type Stats struct {
	// Connections open on this node.
	Connections int
	// QueuedBytes waiting in outbound queues, as last measured.
	QueuedBytes int64
	// Swept is how many expired records the sweeper has removed (replay
	// entries, revocations, idle rate-limit records, expired streams).
	Swept int64
	// ConnSlotKeys is how many IPs and users hold connection slots; it is
	// zero when no connection is open.
	ConnSlotKeys int
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	return Stats{
		Connections:  int(g.connCount.Load()),
		QueuedBytes:  g.queuedBytes.Load(),
		Swept:        g.swept.Load(),
		ConnSlotKeys: counterLen(g.limits.Load().conns),
	}
}

// overloaded reports why the node takes no new connection now, or "".
func (g *Gateway) overloaded() string {
	switch {
	case int(g.connCount.Load()) >= g.cfg.MaxConnections:
		return "max_connections"
	case g.queuedBytes.Load() >= g.cfg.MaxQueuedBytes:
		return "max_queued_bytes"
	}
	return ""
}

// measureQueues sums the bytes waiting in every connection's queue; the
// sweeper calls it every QueueMeasureInterval.
func (g *Gateway) measureQueues() {
	g.connsMu.Lock()
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.connsMu.Unlock()
	var total int64
	for _, c := range conns {
		total += int64(c.queue.Bytes())
	}
	g.queuedBytes.Store(total)
	g.cfg.Metrics.QueuedBytes(total)
}

// Connections returns the number of open connections on this node.
func (g *Gateway) Connections() int {
	g.connsMu.Lock()
	defer g.connsMu.Unlock()
	return len(g.conns)
}

// Shutdown stops accepting connections, closes every open connection with
// 1001 (going away) and waits until their goroutines have finished or ctx
// is done. It then closes the broker the gateway created. http.Server's
// Shutdown does not wait for WebSockets; call this as well.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.connsMu.Lock()
	already := g.closing.Swap(true)
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.connsMu.Unlock()
	for _, c := range conns {
		c.close(protocol.CloseGoingAway)
	}
	done := make(chan struct{})
	go func() { g.connWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("livegate: shutdown: %w", ctx.Err())
	}
	if !already {
		g.stopSweep()
		<-g.sweepDone
		<-g.presenceDone
		_ = g.verifier.Close()
	}
	if !already && g.ownBroker {
		if cerr := g.broker.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("livegate: shutdown: %w", cerr)
		}
	}
	return err
}

// Close is Shutdown with a five second limit.
func (g *Gateway) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return g.Shutdown(ctx)
}

func (g *Gateway) securityEvent(ctx context.Context, e audit.Event) {
	if e.Time.IsZero() {
		e.Time = g.cfg.Now()
	}
	g.events.Record(ctx, e)
}

// originAllowed applies the origin policy to a request's Origin header;
// requests without one (non-browser clients) pass.
func (g *Gateway) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	return g.allowOrigin(o, r)
}

func (g *Gateway) allowOrigin(o string, r *http.Request) bool {
	if g.origins != nil {
		return g.origins.Allowed(o)
	}
	own := origin.FromRequest(r, false)
	return own != "" && origin.Equal(o, own)
}

func (g *Gateway) hostAllowed(r *http.Request) bool {
	if len(g.hosts) == 0 {
		return true
	}
	return g.hosts[strings.ToLower(r.Host)]
}

func (g *Gateway) clientIPOf(r *http.Request) string {
	if a := g.clientIP.ClientIP(r); a.IsValid() {
		return a.String()
	}
	return r.RemoteAddr
}

// newSigner builds the signer of issued tokens, or nil when no signing key
// is configured: with HS256 the TokenHMACSecret; with a key set the key
// named TokenSigningKeyID (its secret for HS256, TokenSigningKey for the
// others); otherwise TokenSigningKey with TokenAlgorithm.
func newSigner(cfg *Config) (*auth.Signer, error) {
	sc := auth.SignerConfig{Audience: cfg.Audience, Issuer: cfg.Issuer, Now: cfg.Now}
	switch {
	case cfg.TokenSigningKeyID != "":
		i := slices.IndexFunc(cfg.TokenKeys, func(k auth.Key) bool { return k.ID == cfg.TokenSigningKeyID })
		if i < 0 {
			return nil, fmt.Errorf("TokenSigningKeyID %q is not in TokenKeys", cfg.TokenSigningKeyID)
		}
		k := cfg.TokenKeys[i]
		sc.Algorithm, sc.KeyID, sc.HMACSecret, sc.PrivateKey = k.Algorithm, k.ID, k.Secret, cfg.TokenSigningKey
		if k.Algorithm == "HS256" {
			sc.PrivateKey = nil
		}
	case cfg.TokenAlgorithm == "HS256" && len(cfg.TokenHMACSecret) > 0:
		sc.Algorithm, sc.HMACSecret = "HS256", cfg.TokenHMACSecret
	case cfg.TokenSigningKey != nil && cfg.TokenAlgorithm != "":
		sc.Algorithm, sc.PrivateKey = cfg.TokenAlgorithm, cfg.TokenSigningKey
	case cfg.TokenSigningKey != nil:
		return nil, errors.New("TokenSigningKey needs TokenSigningKeyID (with TokenKeys) or TokenAlgorithm")
	default:
		return nil, nil
	}
	return auth.NewSigner(sc)
}

// setupHTTP builds the handshake and token-endpoint checks from the config.
func (g *Gateway) setupHTTP() error {
	cfg := &g.cfg
	allowed := cfg.AllowedOrigins
	g.hosts = make(map[string]bool)
	for _, h := range cfg.Hosts {
		g.hosts[strings.ToLower(h)] = true
	}
	secure := cfg.SecureCookies
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("livegate: config PublicURL %q: want an http(s) base URL", cfg.PublicURL)
		}
		if len(allowed) == 0 {
			allowed = []string{u.Scheme + "://" + u.Host}
		}
		if len(cfg.Hosts) == 0 {
			g.hosts[strings.ToLower(u.Host)] = true
		}
		secure = secure || u.Scheme == "https"
	}
	if len(allowed) > 0 {
		p, err := origin.New(allowed)
		if err != nil {
			return fmt.Errorf("livegate: config AllowedOrigins: %w", err)
		}
		g.origins = p
	}
	res, err := clientip.New(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("livegate: config TrustedProxies: %w", err)
	}
	g.clientIP = res
	key := cfg.CSRFKey
	if len(key) == 0 {
		if len(cfg.TokenHMACSecret) > 0 {
			m := hmac.New(sha256.New, cfg.TokenHMACSecret)
			m.Write([]byte("livegate csrf key v1"))
			key = m.Sum(nil)
		} else if key, err = auth.GenerateSecret(32); err != nil {
			return fmt.Errorf("livegate: %w", err)
		}
	}
	g.csrf, err = csrf.New(key, csrf.Options{
		Secure:      secure,
		AllowOrigin: func(r *http.Request, o string) bool { return g.allowOrigin(o, r) },
	})
	if err != nil {
		return fmt.Errorf("livegate: config CSRFKey: %w", err)
	}
	g.signer, err = newSigner(cfg)
	if err != nil {
		return fmt.Errorf("livegate: token signing: %w", err)
	}
	return nil
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
