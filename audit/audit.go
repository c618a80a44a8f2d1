// Package audit defines livegate's security events and the sinks that
// record them. Every rejection the gateway makes — a refused upgrade, a
// failed or replayed token, a denied channel or event, a rate-limit kick —
// is emitted as an Event to a Sink. Every user-controlled field is sanitised
// before it reaches a log or a database.
//
// SlogSink logs events. Recorder persists them: it queues each event without
// ever blocking the caller, writes batches to a Store (store.DB.Audit keeps
// them in SQLite, where `livegate audit` reads them), optionally copies them
// as JSON lines for log shippers, and deletes them after a retention period.
package audit

import (
	"context"
	"log/slog"
	"time"
)

// Severity ranks an event.
type Severity string

// Severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Event types emitted by the gateway.
const (
	TypeUpgradeRejected = "upgrade_rejected"
	TypeAuthFailed      = "auth_failed"
	TypeTokenReplayed   = "token_replayed"
	TypeConnectTimeout  = "connect_timeout"
	TypeProtocolError   = "protocol_error"
	TypeFrameTooBig     = "frame_too_big"
	TypeChannelDenied   = "channel_denied"
	TypePublishDenied   = "publish_denied"
	TypeEventDenied     = "event_denied"
	TypeRateLimited     = "rate_limited"
	TypeRateLimitKick   = "rate_limit_kick"
	TypeSlowConsumer    = "slow_consumer"
	TypeHandlerPanic    = "handler_panic"
	TypeTokenExpired    = "token_expired"
	TypeRefreshFailed   = "refresh_failed"
	TypeCSRFRejected    = "csrf_rejected"
	TypeTokenDenied     = "token_denied"
	TypeRevoked         = "revoked"
	TypeTenantDenied    = "tenant_denied"
	TypeAdminDenied     = "admin_denied"
	// TypeViewDenied: a live-view join or event was refused (bad or
	// foreign session token, unknown or guarded event, view limit, state
	// limit, …); Reason says which.
	TypeViewDenied = "view_denied"
)

// Event is one security-relevant occurrence. String fields may hold
// user-controlled text; sinks sanitise them.
type Event struct {
	Type      string
	Time      time.Time
	Severity  Severity
	User      string
	Session   string
	Tenant    string
	IP        string
	ConnID    string
	Reason    string
	RequestID string
	// Detail is free text for operators (e.g. a channel or event name).
	Detail string
}

// Sink records security events. Record must not block the caller for long
// and is safe for concurrent use.
type Sink interface {
	Record(ctx context.Context, e Event)
}

// SlogSink writes events to a structured logger, sanitising every field.
type SlogSink struct {
	logger *slog.Logger
}

// NewSlogSink returns a sink logging to l; a nil l discards events.
func NewSlogSink(l *slog.Logger) *SlogSink {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &SlogSink{logger: l}
}

var _ Sink = (*SlogSink)(nil)

// Record logs e at warning level (info for SeverityInfo, error for critical).
func (s *SlogSink) Record(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	level := e.Severity.level()
	if !s.logger.Enabled(ctx, level) {
		return
	}
	s.log(ctx, level, e.Sanitized())
}

// level is the slog level of events of severity s.
func (s Severity) level() slog.Level {
	switch s {
	case SeverityInfo:
		return slog.LevelInfo
	case SeverityCritical:
		return slog.LevelError
	}
	return slog.LevelWarn
}

// log logs the already sanitised e.
func (s *SlogSink) log(ctx context.Context, level slog.Level, e Event) {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("type", e.Type), slog.Time("at", e.Time))
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("severity", string(e.Severity))
	add("user", e.User)
	add("session", e.Session)
	add("tenant", e.Tenant)
	add("ip", e.IP)
	add("conn", e.ConnID)
	add("reason", e.Reason)
	add("request", e.RequestID)
	add("detail", e.Detail)
	s.logger.LogAttrs(ctx, level, "security event", attrs...)
}
