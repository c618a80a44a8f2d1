package livegate

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Pinger is implemented by back ends that can tell whether they are
// reachable: the Broker, ReplayStore and Revocations of Config may. Ping
// returns nil when the back end answers, an error otherwise (for example
// after it was closed), and returns by ctx's deadline. ReadyHandler
// counts a back end without Ping as reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ReadyTimeout bounds the back-end checks of one ReadyHandler request.
const ReadyTimeout = 2 * time.Second

// readyStatus is ReadyHandler's JSON body.
type readyStatus struct {
	Status string   `json:"status"`
	Failed []string `json:"failed,omitempty"`
}

// HealthHandler returns the liveness endpoint (mount it at /healthz): 200
// "ok" for as long as the process serves HTTP, shutdown included. It
// checks nothing else; ReadyHandler does.
func (g *Gateway) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !probeMethod(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// ReadyHandler returns the readiness endpoint (mount it at /readyz): 200
// {"status":"ok"} when the broker, the replay store and the revocation
// store answer their Ping (those that implement Pinger), within
// ReadyTimeout. Otherwise it answers 503 with the names of the failed
// checks, {"status":"unavailable","failed":["broker","replay_store",
// "revocations"]}, and logs the errors; the body never carries error
// text. From Shutdown on it answers 503 with failed ["shutdown"], so a
// load balancer stops sending new connections.
func (g *Gateway) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !probeMethod(w, r) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		st := readyStatus{Status: "ok"}
		if st.Failed = g.failedChecks(ctx); len(st.Failed) > 0 {
			st.Status = "unavailable"
		}
		w.Header().Set("Content-Type", "application/json")
		if len(st.Failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(st)
	})
}

// failedChecks returns the names of the readiness checks that fail.
func (g *Gateway) failedChecks(ctx context.Context) []string {
	if g.closing.Load() {
		return []string{"shutdown"}
	}
	var failed []string
	for _, c := range []struct {
		name    string
		backend any
	}{
		{"broker", g.broker},
		{"replay_store", g.replay},
		{"revocations", g.revocations},
	} {
		p, ok := c.backend.(Pinger)
		if !ok {
			continue
		}
		if err := p.Ping(ctx); err != nil {
			g.cfg.Logger.WarnContext(ctx, "readiness check failed", "check", c.name, "err", err)
			failed = append(failed, c.name)
		}
	}
	return failed
}

// probeMethod allows GET and HEAD, answering 405 otherwise, and marks the
// answer uncacheable.
func probeMethod(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return false
	}
	return true
}
