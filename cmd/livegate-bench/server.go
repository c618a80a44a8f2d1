package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/metrics"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/ratelimit"
)

// serverConfig configures the bench's own livegate server.
type serverConfig struct {
	Addr        string // WebSocket listener, loopback only
	AdminAddr   string // admin listener (metrics, pprof, publish), loopback only
	Secret      []byte // token HMAC secret
	APIKey      string // bearer secret of the admin listener, at least 32 bytes
	HistorySize int
	HistoryTTL  time.Duration
	MaxConns    int
	// CoalesceDelay is livegate.Config.CoalesceDelay (0: its default).
	CoalesceDelay time.Duration
	Logger        *slog.Logger
}

// Raised limits of the bench server. livegate's defaults (10 connections
// and 20 upgrade attempts a minute per IP, 20 connects a minute per user,
// 100 commands a second per connection, 10,000 connections per node) are
// meant for the open internet and would stop a benchmark from one host
// at once; a benchmark measures the gateway's work, not its refusals.
var benchLimits = livegate.Limits{
	AttemptsPerIP:   ratelimit.PerMinute(10_000_000),
	AttemptsPerUser: ratelimit.PerMinute(10_000_000),
	ConnsPerIP:      1_000_000,
}

const (
	benchCommandRate  = 1_000_000
	benchCommandBurst = 100_000
	benchNamespace    = "bench"
	// maxPublishBody bounds a POST /api/publish body.
	maxPublishBody = 1 << 20
)

// echoPayload is what the echo handler takes and returns: the bench's
// stamped payload, decoded and checked like any typed handler input.
type echoPayload struct {
	T int64  `json:"t"`
	S uint64 `json:"s"`
	P string `json:"p"`
}

// Validate refuses payloads without a time stamp.
func (p echoPayload) Validate() error {
	if p.T <= 0 {
		return errors.New("t must be positive")
	}
	return nil
}

// benchServer is a running bench server.
type benchServer struct {
	gw      *livegate.Gateway
	ws      *http.Server
	admin   *http.Server
	wsAddr  net.Addr
	admAddr net.Addr
}

// info is what `livegate-bench server` prints on its first line.
type serverInfo struct {
	PID        int    `json:"pid"`
	URL        string `json:"url"`
	PublishURL string `json:"publish_url"`
	MetricsURL string `json:"metrics_url"`
	PprofURL   string `json:"pprof_url"`
}

func (s *benchServer) info() serverInfo {
	adm := "http://" + s.admAddr.String()
	return serverInfo{
		PID: os.Getpid(), URL: "ws://" + s.wsAddr.String() + "/ws",
		PublishURL: adm + "/api/publish", MetricsURL: adm + "/metrics", PprofURL: adm,
	}
}

// startServer starts a livegate gateway for benchmarks: the defaults of
// livegate.Config except the raised limits above and MaxConns, namespace
// "bench" (any authenticated connection may subscribe, the server
// publishes), an "echo" event handler, and an admin listener whose every
// endpoint needs "Authorization: Bearer <APIKey>": /metrics,
// /debug/pprof/ and POST /api/publish {"channel","data"}.
func startServer(cfg serverConfig) (*benchServer, error) {
	if err := loopbackListenAddr(cfg.Addr); err != nil {
		return nil, fmt.Errorf("--addr %w", err)
	}
	if err := loopbackListenAddr(cfg.AdminAddr); err != nil {
		return nil, fmt.Errorf("--admin-addr %w", err)
	}
	if len(cfg.APIKey) < 32 {
		return nil, fmt.Errorf("%s must be at least 32 bytes", envAPIKey)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	aln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		ln.Close()
		return nil, err
	}
	m := metrics.New()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: cfg.Secret,
		Namespaces: []policy.NamespaceConfig{{
			Name: benchNamespace, Subscribe: policy.SubscribeAuthenticated,
			HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL,
		}},
		Hosts:          []string{"127.0.0.1:" + port, "localhost:" + port},
		MaxConnections: cfg.MaxConns,
		CoalesceDelay:  cfg.CoalesceDelay,
		CommandRate:    benchCommandRate,
		CommandBurst:   benchCommandBurst,
		Limits:         benchLimits,
		Metrics:        m,
		Logger:         cfg.Logger,
	})
	if err != nil {
		ln.Close()
		aln.Close()
		return nil, err
	}
	if err := gw.Handle(echoEvent, livegate.HandlerFunc[echoPayload](func(_ context.Context, _ *livegate.Request, p echoPayload) (any, error) {
		return p, nil
	})); err != nil {
		gw.Close()
		ln.Close()
		aln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	admin := http.NewServeMux()
	admin.Handle("/metrics", m.Handler())
	admin.HandleFunc("/debug/pprof/", pprof.Index)
	admin.HandleFunc("/debug/pprof/profile", pprof.Profile)
	admin.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	admin.HandleFunc("/debug/pprof/trace", pprof.Trace)
	admin.Handle("POST /api/publish", publishHandler(gw, cfg.Logger))
	s := &benchServer{
		gw:      gw,
		ws:      &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10},
		admin:   &http.Server{Handler: bearer(cfg.APIKey, admin), ReadHeaderTimeout: 10 * time.Second},
		wsAddr:  ln.Addr(),
		admAddr: aln.Addr(),
	}
	go func() { _ = s.ws.Serve(ln) }()
	go func() { _ = s.admin.Serve(aln) }()
	return s, nil
}

// Shutdown closes the connections and both listeners.
func (s *benchServer) Shutdown(ctx context.Context) error {
	gerr := s.gw.Shutdown(ctx)
	return errors.Join(gerr, s.ws.Shutdown(ctx), s.admin.Shutdown(ctx))
}

// bearer refuses requests without "Authorization: Bearer <key>".
func bearer(key string, next http.Handler) http.Handler {
	want := []byte("Bearer " + key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// publishRequest is the body of POST /api/publish.
type publishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func publishHandler(gw *livegate.Gateway, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublishBody))
		var req publishRequest
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil || req.Channel == "" || len(req.Data) == 0 {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		res, err := gw.Publish(r.Context(), req.Channel, req.Data)
		if err != nil {
			logger.Warn("publish", "channel", req.Channel, "err", err)
			http.Error(w, `{"error":"publish failed"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"result": map[string]any{"offset": res.Offset, "epoch": res.Epoch}})
	})
}
