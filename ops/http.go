package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/logsafe"
)

// Handler returns the HTTP endpoints that cancel and restart operations:
//
//	POST /cancel/{id}   → 200 {"ok":true,"op":"<id>"}
//	POST /restart/{id}  → 200 {"ok":true,"op":"<new id>","channel":"op:<new id>","kind":"<kind>","restarted_from":"<id>"}
//
// Mount it under any prefix with http.StripPrefix:
//
//	mux.Handle("/ops/", http.StripPrefix("/ops", m.Handler()))
//
// Every request must be a POST (else 405 with Allow: POST), pass
// Config.CSRF.Check (Fetch Metadata, Origin and the X-CSRF-Token header),
// and come from a user that Config.Identify recognises who owns the
// operation. Every refusal — missing or forged CSRF token, no user,
// unknown id, another user's id — is the same 403 {"error":"forbidden"}
// and an audit event (audit.TypeCSRFRejected or EventDenied). Other
// replies: 404 {"error":"not_found"} for another path, 409
// {"error":"not_running"} for a Cancel of a finished operation, 429
// {"error":"too_many_operations"}, 503 {"error":"unavailable"} after
// Shutdown, 500 {"error":"internal"}. Without Config.CSRF or
// Config.Identify every request is refused with 403.
func (m *Manager) Handler() http.Handler { return http.HandlerFunc(m.serveHTTP) }

type errorReply struct {
	Error string `json:"error"`
}

type okReply struct {
	OK            bool   `json:"ok"`
	Op            string `json:"op"`
	Channel       string `json:"channel,omitempty"`
	Kind          string `json:"kind,omitempty"`
	RestartedFrom string `json:"restarted_from,omitempty"`
}

func (m *Manager) serveHTTP(w http.ResponseWriter, r *http.Request) {
	action, id, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok || (action != "cancel" && action != "restart") || id == "" || strings.Contains(id, "/") {
		reply(w, http.StatusNotFound, errorReply{"not_found"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, errorReply{"method_not_allowed"})
		return
	}
	if m.cfg.CSRF == nil || m.cfg.Identify == nil {
		m.log.Error("ops: Handler needs Config.CSRF and Config.Identify; refusing the request")
		forbidden(w)
		return
	}
	if err := m.cfg.CSRF.Check(r); err != nil {
		m.deny(r, audit.TypeCSRFRejected, err.Error(), auth.Identity{})
		forbidden(w)
		return
	}
	who, err := m.cfg.Identify(r)
	if err != nil || who.User == "" {
		m.deny(r, EventDenied, "unauthenticated", auth.Identity{})
		forbidden(w)
		return
	}
	ctx := r.Context()
	var res okReply
	if action == "cancel" {
		err = m.Cancel(ctx, who, id)
		res = okReply{OK: true, Op: id}
	} else {
		var op *Operation
		if op, err = m.Restart(ctx, who, id); err == nil {
			res = okReply{OK: true, Op: op.ID, Channel: op.Channel(), Kind: op.Kind, RestartedFrom: id}
		}
	}
	switch {
	case err == nil:
		reply(w, http.StatusOK, res)
	case errors.Is(err, ErrNotFound):
		m.deny(r, EventDenied, "not_found_or_not_owner", who)
		forbidden(w)
	case errors.Is(err, ErrNotRunning):
		reply(w, http.StatusConflict, errorReply{"not_running"})
	case errors.Is(err, ErrTooMany):
		reply(w, http.StatusTooManyRequests, errorReply{"too_many_operations"})
	case errors.Is(err, ErrClosed):
		reply(w, http.StatusServiceUnavailable, errorReply{"unavailable"})
	default:
		m.log.Error("ops: "+action, "op", logsafe.String(id), "err", logsafe.String(err.Error())) // #nosec G706 -- action is "cancel" or "restart"; the rest passes logsafe
		reply(w, http.StatusInternalServerError, errorReply{"internal"})
	}
}

// deny records a refused request.
func (m *Manager) deny(r *http.Request, typ, reason string, who auth.Identity) {
	m.events.Record(context.WithoutCancel(r.Context()), audit.Event{
		Type:     typ,
		Time:     m.cfg.Now(),
		Severity: audit.SeverityWarning,
		User:     who.User,
		Session:  who.Session,
		Tenant:   who.Tenant,
		IP:       m.clientIP(r),
		Reason:   reason,
		Detail:   r.Method + " " + r.URL.Path,
	})
}

func (m *Manager) clientIP(r *http.Request) string {
	if m.cfg.ClientIP != nil {
		return m.cfg.ClientIP(r)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func forbidden(w http.ResponseWriter) { reply(w, http.StatusForbidden, errorReply{"forbidden"}) }

func reply(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) // #nosec G104 -- the status is sent; a failed write means the client left
}
