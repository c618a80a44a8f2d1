package metrics

import (
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
)

// Label values the gateway passes that are not reasons of its own.
const (
	// ResultOK is the result of a command that succeeded.
	ResultOK = "ok"
	// ResultClosed is the result of a command that ended with the
	// connection closed (a refused connect, a rate-limit kick, a refresh
	// with another user's token).
	ResultClosed = "closed"
	// DropQueueFull: a frame found its connection's send queue full; the
	// connection is closed 4503 (slow consumer).
	DropQueueFull = "queue_full"
	// DropRecoveryOverflow: more pushes arrived while a subscription was
	// recovering history than it may hold; the connection is closed 4503.
	DropRecoveryOverflow = "recovery_overflow"
	// Other is the label value of anything outside a metric's fixed set.
	Other = "other"
)

// Label values of each labelled metric, resolved in New. Anything else
// counts under Other.
var (
	upgradeReasons = []string{
		"closing", "method", "not_websocket", "host", "csrf", "origin", "subprotocol",
		"max_connections", "max_queued_bytes", "cooldown", "attempts_ip", "conns_ip", "handshake",
	}
	connectReasons = []string{
		"json_limits", "malformed", "frame_too_big", "not_connected", "token", "revoked",
		"replayed", "store", "attempts_user", "conns_user", "connect_timeout", "going_away", "abandoned",
	}
	methods = []string{
		protocol.MethodConnect, protocol.MethodSubscribe, protocol.MethodUnsubscribe,
		protocol.MethodEvent, protocol.MethodPublish, protocol.MethodRefresh,
		protocol.MethodJoin, protocol.MethodView, protocol.MethodLeave,
	}
	results = []string{
		ResultOK, protocol.CodeBadRequest, protocol.CodeUnauthorized, protocol.CodeForbidden,
		protocol.CodeNotAvailable, protocol.CodeRateLimited, protocol.CodeLimitExceeded,
		protocol.CodeTooLarge, protocol.CodeInternal, protocol.CodeUnavailable, ResultClosed,
	}
	dropReasons   = []string{DropQueueFull, DropRecoveryOverflow}
	rateLimitKind = []string{
		"command", "handler", "view", "attempts_ip", "conns_ip", "cooldown",
		"attempts_user", "conns_user", "token_issue",
	}
	authCommands = []string{protocol.MethodConnect, protocol.MethodRefresh, protocol.MethodSubscribe}
	authReasons  = []string{
		auth.ReasonMalformed, auth.ReasonAlgorithm, auth.ReasonKey, auth.ReasonSignature,
		auth.ReasonExpired, auth.ReasonNoExpiry, auth.ReasonNotYetValid, auth.ReasonAudience,
		auth.ReasonIssuer, auth.ReasonKind, auth.ReasonLifetime, auth.ReasonSubject,
		auth.ReasonNoJTI, auth.ReasonReplayed, auth.ReasonRevoked,
		"invalid", "store", "identity_mismatch", "other_user", "other_channel",
	}
	brokerOps = []string{"publish", "subscribe", "unsubscribe", "history", "control", "presence"}
)

// LatencyBuckets are the upper bounds, in seconds, of the
// livegate_delivery_latency_seconds histogram: 100µs to 2.5s.
var LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// Metrics are one gateway's Prometheus metrics, on a registry of their
// own. Create them with New; a nil *Metrics records nothing. A Metrics
// serves one Gateway: the connection and queue gauges would mix two.
type Metrics struct {
	reg *prometheus.Registry

	connections prometheus.Gauge
	accepted    prometheus.Counter
	refused     table // stage, reason
	commands    table // method, result
	published   prometheus.Counter
	delivered   prometheus.Counter
	writes      prometheus.Counter
	written     prometheus.Counter
	coalesced   prometheus.Counter
	dropped     set // reason
	queued      prometheus.Gauge
	rateLimited set   // kind
	authFailed  table // command, reason
	brokerErr   set   // op
	latency     prometheus.Histogram
	swept       prometheus.Counter

	auditDropped atomic.Pointer[func() uint64]
}

// New returns Metrics registered on a new registry, with the Go runtime
// and process collectors alongside livegate's own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		m.reg.MustRegister(g)
		return g
	}
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}

	m.connections = gauge("livegate_connections",
		"WebSocket connections open on this node, connected or not yet.")
	m.accepted = counter("livegate_connections_accepted_total",
		"Connections that completed connect (authenticated and admitted).")
	refused := vec("livegate_connections_refused_total",
		"Connection attempts refused, at the HTTP upgrade or at connect, by stage and reason.",
		"stage", "reason")
	m.refused = newTable(refused, map[string][]string{"upgrade": upgradeReasons, "connect": connectReasons})
	commands := vec("livegate_commands_total",
		"Commands after the connect gate, by method and result (ok, an error code, or closed).",
		"method", "result")
	m.commands = newTable(commands, tableOf(methods, results))
	m.published = counter("livegate_messages_published_total",
		"Publications this node handed to the broker successfully (Gateway.Publish and client publish).")
	m.delivered = counter("livegate_messages_delivered_total",
		"Push frames queued on local subscribers' connections.")
	m.writes = counter("livegate_socket_writes_total",
		"Batches of outbound frames written to the network, one write each (a batch over 256 KiB takes more); frames written ÷ writes is the average batch.")
	m.written = counter("livegate_socket_write_frames_total",
		"Outbound frames (pushes, replies, errors) sent by those writes.")
	m.coalesced = counter("livegate_coalesce_waits_total",
		"Times a connection that was behind waited CoalesceDelay before its next write.")
	m.dropped = newSet(vec("livegate_messages_dropped_total",
		"Outbound frames refused because a connection could not keep up, by reason; each closes it 4503.",
		"reason"), nil, dropReasons)
	m.queued = gauge("livegate_outbound_queued_bytes",
		"Bytes waiting in all connections' outbound queues, as last measured (every second).")
	m.rateLimited = newSet(vec("livegate_rate_limited_total",
		"Requests and commands refused by a rate limit, by kind.", "kind"), nil, rateLimitKind)
	authFailed := vec("livegate_auth_failures_total",
		"Tokens refused, by the command that carried them and the reason.", "command", "reason")
	m.authFailed = newTable(authFailed, tableOf(authCommands, authReasons))
	m.brokerErr = newSet(vec("livegate_broker_errors_total",
		"Broker calls that failed, by operation.", "op"), nil, brokerOps)
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "livegate_delivery_latency_seconds",
		Help: "Time from the broker accepting a publication to this node having queued it " +
			"on every local subscriber; one observation per publication per node.",
		Buckets: LatencyBuckets,
	})
	m.reg.MustRegister(m.latency)
	m.swept = counter("livegate_swept_total",
		"Expired records removed by the gateway's sweeper (replay entries, revocations, idle limiter records, streams).")
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "livegate_audit_dropped_total",
		Help: "Security events the audit recorder dropped (queue full or closed); 0 without SetAuditDropped.",
	}, func() float64 {
		if f := m.auditDropped.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	}))
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry the metrics are on, for an application to
// register its own collectors next to them.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry's metrics in the Prometheus exposition
// format. Mount it on an admin listener, not on the public one.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg, // counts its own errors
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// SetAuditDropped sets the function livegate_audit_dropped_total reads at
// each scrape, typically func() uint64 { return rec.Stats().Dropped } for
// an audit.Recorder. It must be cheap and safe for concurrent use.
func (m *Metrics) SetAuditDropped(f func() uint64) {
	if m == nil || f == nil {
		return
	}
	m.auditDropped.Store(&f)
}

// ConnectionOpened counts a WebSocket connection that opened on this node.
func (m *Metrics) ConnectionOpened() {
	if m != nil {
		m.connections.Inc()
	}
}

// ConnectionEnded counts a connection whose goroutines have finished.
func (m *Metrics) ConnectionEnded() {
	if m != nil {
		m.connections.Dec()
	}
}

// Accepted counts a connection that completed connect.
func (m *Metrics) Accepted() {
	if m != nil {
		m.accepted.Inc()
	}
}

// UpgradeRefused counts an upgrade refused before a socket existed.
func (m *Metrics) UpgradeRefused(reason string) {
	if m != nil {
		m.refused.add("upgrade", reason, 1)
	}
}

// ConnectRefused counts a socket closed before it completed connect.
func (m *Metrics) ConnectRefused(reason string) {
	if m != nil {
		m.refused.add("connect", reason, 1)
	}
}

// Command counts a command by method and result: ResultOK, an error code
// or ResultClosed.
func (m *Metrics) Command(method, result string) {
	if m != nil {
		m.commands.add(method, result, 1)
	}
}

// Published counts a publication the broker accepted.
func (m *Metrics) Published() {
	if m != nil {
		m.published.Inc()
	}
}

// Delivered counts n push frames queued on subscribers' connections.
func (m *Metrics) Delivered(n int) {
	if m != nil && n > 0 {
		m.delivered.Add(float64(n))
	}
}

// Wrote counts one network write that carried frames outbound frames.
func (m *Metrics) Wrote(frames int) {
	if m != nil && frames > 0 {
		m.writes.Inc()
		m.written.Add(float64(frames))
	}
}

// CoalesceWait counts a writer waiting CoalesceDelay before its next write.
func (m *Metrics) CoalesceWait() {
	if m != nil {
		m.coalesced.Inc()
	}
}

// Dropped counts a frame refused by a connection that could not keep up:
// DropQueueFull or DropRecoveryOverflow.
func (m *Metrics) Dropped(reason string) {
	if m != nil {
		m.dropped.add(reason, 1)
	}
}

// QueuedBytes sets the measured total of outbound queued bytes.
func (m *Metrics) QueuedBytes(n int64) {
	if m != nil {
		m.queued.Set(float64(n))
	}
}

// RateLimited counts a request or command refused by a rate limit of kind.
func (m *Metrics) RateLimited(kind string) {
	if m != nil {
		m.rateLimited.add(kind, 1)
	}
}

// AuthFailed counts a token refused in command (connect, refresh or
// subscribe) for reason (an auth.Reason* or one of the gateway's own).
func (m *Metrics) AuthFailed(command, reason string) {
	if m != nil {
		m.authFailed.add(command, reason, 1)
	}
}

// BrokerError counts a failed broker call: publish, subscribe,
// unsubscribe or history.
func (m *Metrics) BrokerError(op string) {
	if m != nil {
		m.brokerErr.add(op, 1)
	}
}

// DeliveryLatency observes the time from a publication's acceptance by the
// broker to its fan-out on this node. Negative durations (another node's
// clock ahead of this one) count as zero.
func (m *Metrics) DeliveryLatency(d time.Duration) {
	if m != nil {
		m.latency.Observe(max(d, 0).Seconds())
	}
}

// Swept counts n expired records removed by the sweeper.
func (m *Metrics) Swept(n int) {
	if m != nil && n > 0 {
		m.swept.Add(float64(n))
	}
}

// set is a CounterVec's children for a fixed set of values of its last
// label, resolved once; values outside it count under Other.
type set struct {
	children map[string]prometheus.Counter
	other    prometheus.Counter
}

func newSet(vec *prometheus.CounterVec, prefix, values []string) set {
	s := set{children: make(map[string]prometheus.Counter, len(values))}
	for _, v := range values {
		s.children[v] = vec.WithLabelValues(append(slices.Clip(prefix), v)...)
	}
	s.other = vec.WithLabelValues(append(slices.Clip(prefix), Other)...)
	return s
}

func (s *set) add(value string, n float64) {
	c, ok := s.children[value]
	if !ok {
		c = s.other
	}
	c.Add(n)
}

// table is a two-label CounterVec resolved for a fixed set of pairs.
type table struct {
	rows  map[string]*set
	other *set
}

func tableOf(first, second []string) map[string][]string {
	t := make(map[string][]string, len(first))
	for _, f := range first {
		t[f] = second
	}
	return t
}

func newTable(vec *prometheus.CounterVec, pairs map[string][]string) table {
	t := table{rows: make(map[string]*set, len(pairs))}
	for first, second := range pairs {
		s := newSet(vec, []string{first}, second)
		t.rows[first] = &s
	}
	other := newSet(vec, []string{Other}, nil)
	t.other = &other
	return t
}

func (t *table) add(first, second string, n float64) {
	s, ok := t.rows[first]
	if !ok {
		s = t.other
	}
	s.add(second, n)
}
