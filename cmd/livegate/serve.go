package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/config"
	"github.com/livegate/livegate/httpapi"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/metrics"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/proxy"
	"github.com/livegate/livegate/redis"
	"github.com/livegate/livegate/store"
)

// Security event types of configuration reloads.
const (
	eventConfigReloaded     = "config_reloaded"
	eventConfigReloadFailed = "config_reload_failed"
)

// runtimeOptions configure the wiring shared by `dev` and `serve`.
type runtimeOptions struct {
	dbPath, adminAddr string
	logger            *slog.Logger
	// jsonl, when set, also receives every security event as a JSON line.
	jsonl io.Writer
	// retention is how long security events are kept (0: the default).
	retention time.Duration
}

// sharedRuntime is the wiring shared by `dev` and `serve`: the SQLite store
// (single-use tokens, revocations, security events), the security event
// recorder writing to it and to the log, the metrics, the optional admin
// listener, and the store's periodic sweep.
type sharedRuntime struct {
	db        *store.DB
	events    *audit.Recorder
	metrics   *metrics.Metrics
	admin     *adminServer
	logger    *slog.Logger
	stopSweep context.CancelFunc
}

func openRuntime(ctx context.Context, o runtimeOptions) (*sharedRuntime, error) {
	db, err := store.Open(ctx, o.dbPath)
	if err != nil {
		return nil, err
	}
	adminSrv, err := listenAdmin(o.adminAddr)
	if err != nil {
		db.Close()
		return nil, err
	}
	// Security events go to the database (see `livegate audit`) and the log.
	events := audit.NewRecorder(audit.RecorderConfig{
		Store: db.Audit(), Logger: o.logger, JSONLines: o.jsonl, Retention: o.retention,
	})
	m := metrics.New()
	m.SetAuditDropped(func() uint64 { return events.Stats().Dropped })
	sweepCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	go sweep(sweepCtx, db, o.logger)
	return &sharedRuntime{db: db, events: events, metrics: m, admin: adminSrv, logger: o.logger, stopSweep: stop}, nil
}

// close stops the admin listener and the sweep, writes the queued
// security events and closes the store.
func (rt *sharedRuntime) close() {
	rt.admin.Close()
	rt.stopSweep()
	closeRecorder(rt.events, rt.logger)
	rt.db.Close()
}

func serveCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the gateway from a configuration file (production)",
		Long: `Run the gateway as the configuration file says: WebSocket at /ws,
/healthz and /readyz, the token endpoint and the HTTP API (/api/) when
configured, metrics on the admin listener, Redis when configured (cluster
mode), proxy mode when configured.

Every key can be set from the environment as LIVEGATE_<PATH>, which wins
over the file (see 'livegate config example'). SIGINT and SIGTERM shut down
gracefully. SIGHUP reloads the file: token keys, namespaces and limits are
applied without dropping connections; other changes are logged as needing
a restart; an invalid file is refused and the running configuration kept.`,
		Example: `  livegate config example > livegate.yaml
  livegate config check --config livegate.yaml
  livegate serve --config livegate.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return runServe(cmd.Context(), serveOptions{
				path: path, env: os.Environ(), out: cmd.OutOrStdout(), log: cmd.ErrOrStderr(), reload: hup,
			})
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (YAML); required")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// serveOptions are the inputs of runServe.
type serveOptions struct {
	path string
	env  []string
	// out receives the start-up lines, log the operational log.
	out, log io.Writer
	// reload delivers SIGHUP.
	reload <-chan os.Signal
}

// server is a running `livegate serve`.
type server struct {
	opts    serveOptions
	started *config.File // the file the process started with
	logger  *slog.Logger
	events  audit.Sink
	gw      *livegate.Gateway
	engine  *redis.Engine
	// wireProxy gives namespaces added by a reload the proxy's authorizer.
	wireProxy proxyWiring
}

// newLogger returns the operational logger the file asks for, sanitising
// every value.
func newLogger(f *config.File, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch f.Log.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if f.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(logsafe.Handler(h))
}

// loadServeConfig loads and validates the file.
func loadServeConfig(path string, env []string) (*config.File, error) {
	f, err := config.Load(path, env)
	if err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func runServe(ctx context.Context, o serveOptions) error {
	f, err := loadServeConfig(o.path, o.env)
	if err != nil {
		return fmt.Errorf("configuration refused:\n%w", indentErrors(err))
	}
	logger := newLogger(f, o.log)
	for _, w := range f.Warnings() {
		logger.Warn("config: " + w)
	}
	var jsonl io.Writer
	if p := f.Audit.JSONLPath; p != "" {
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("audit.jsonl_path: %w", err)
		}
		defer fh.Close()
		jsonl = fh
	}
	rt, err := openRuntime(ctx, runtimeOptions{
		dbPath: f.StorePath(), adminAddr: f.Admin.Listen, logger: logger, jsonl: jsonl, retention: f.Audit.Retention,
	})
	if err != nil {
		return err
	}
	defer rt.close()

	cfg, err := f.GatewayConfig()
	if err != nil {
		return err
	}
	cfg.ReplayStore = rt.db.ReplayStore()
	cfg.Revocations = rt.db.Revocations()
	cfg.SecurityEvents = rt.events
	cfg.Metrics = rt.metrics
	cfg.Logger = logger
	s := &server{opts: o, started: f, logger: logger, events: rt.events}
	if f.RedisEnabled() {
		tlsCfg, err := f.RedisTLSConfig()
		if err != nil {
			return err
		}
		s.engine, err = redis.New(ctx, redis.Options{
			Addr: f.Redis.Addr, Username: f.Redis.Username, Password: f.RedisPassword(), DB: f.Redis.DB,
			TLS: tlsCfg, KeyPrefix: f.Redis.KeyPrefix, Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		defer s.engine.Close()
		cfg.Broker = s.engine.Broker()
		cfg.ReplayStore = s.engine.ReplayStore()
		cfg.Revocations = s.engine.Revocations()
		cfg.Limits.Store = s.engine.LimitStore()
		cfg.NodeID = s.engine.NodeID()
	}
	wireProxy, err := setupProxy(f, &cfg, logger)
	if err != nil {
		return err
	}
	s.gw, err = livegate.New(cfg)
	if err != nil {
		return err
	}
	s.wireProxy = wireProxy
	if err := wireProxy(s.gw, cfg.Namespaces); err != nil {
		_ = s.gw.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", s.gw)
	mux.Handle("/healthz", s.gw.HealthHandler())
	mux.Handle("/readyz", s.gw.ReadyHandler())
	if te := f.TokenEndpoint; te.Path != "" {
		id, err := headerIdentity(f)
		if err != nil {
			_ = s.gw.Close()
			return err
		}
		mux.Handle(te.Path, s.gw.TokenHandler(id))
		mux.Handle(te.Path+"/csrf", csrfHandler(s.gw))
	}
	if f.API.Enabled {
		keys, err := apikey.New(apikey.Config{Store: rt.db.APIKeys(), Logger: logger})
		if err != nil {
			_ = s.gw.Close()
			return err
		}
		api, err := httpapi.New(httpapi.Config{
			Gateway: s.gw, Keys: keys, SecurityEvents: rt.events, Logger: logger,
			LimitStore: cfg.Limits.Store, MaxBodyBytes: f.API.MaxBodySize, TrustedProxies: f.TrustedProxies,
		})
		if err != nil {
			_ = s.gw.Close()
			return err
		}
		mux.Handle("/api/", api)
	}
	if secret := f.AdminSecret(); secret != nil && rt.admin != nil {
		rh, err := s.gw.RevokeHandler(secret)
		if err != nil {
			_ = s.gw.Close()
			return err
		}
		rt.admin.revoke = rh
	}

	ln, err := net.Listen("tcp", f.ListenAddr())
	if err != nil {
		_ = s.gw.Close()
		return err
	}
	hs := newHTTPServer(mux)
	fmt.Fprintf(o.out, "livegate serving on http://%s, WebSocket at ws://%s/ws\n", ln.Addr(), ln.Addr())
	rt.admin.serve(s.gw, rt.metrics, o.out)
	logger.Info("livegate started", "listen", ln.Addr().String(), "config", o.path, "redis", f.RedisEnabled(),
		"proxy", f.ProxyEnabled(), "api", f.API.Enabled)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	for done := false; !done; {
		select {
		case err := <-errc:
			_ = s.gw.Close()
			return err
		case <-ctx.Done():
			done = true
		case <-o.reload:
			s.reload(ctx)
		}
	}
	fmt.Fprintln(o.out, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gerr := s.gw.Shutdown(sctx)
	herr := hs.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(gerr, herr)
}

// reload re-reads the configuration file and applies what can change at
// run time: token keys, namespaces and limits. On any error the running
// configuration stays as it is.
func (s *server) reload(ctx context.Context) {
	fail := func(err error) {
		reasons := problemList(err)
		s.logger.Error("config reload failed; keeping the running configuration", "config", s.opts.path, "reasons", reasons)
		s.events.Record(ctx, audit.Event{
			Type: eventConfigReloadFailed, Severity: audit.SeverityWarning, Reason: "invalid",
			Detail: strings.Join(reasons, "; "),
		})
	}
	f, err := loadServeConfig(s.opts.path, s.opts.env)
	if err != nil {
		fail(err)
		return
	}
	ns, err := f.NamespaceConfigs()
	if err != nil {
		fail(err)
		return
	}
	limits, err := f.GatewayLimits()
	if err != nil {
		fail(err)
		return
	}
	if s.engine != nil {
		limits.Store = s.engine.LimitStore()
	}
	keys, err := f.TokenKeys()
	if err != nil {
		fail(err)
		return
	}
	// Namespaces first: of the three it is the one most likely to be
	// refused, and nothing has changed yet when it is.
	if err := s.gw.SetNamespaces(ns); err != nil {
		fail(fmt.Errorf("namespaces: %w", err))
		return
	}
	if err := s.wireProxy(s.gw, ns); err != nil {
		fail(fmt.Errorf("proxy authorizer for new namespaces (namespaces already applied): %w", err))
		return
	}
	if err := s.gw.SetLimits(limits); err != nil {
		fail(fmt.Errorf("limits (namespaces already applied): %w", err))
		return
	}
	if keys != nil {
		if err := s.gw.SetTokenKeys(keys); err != nil {
			fail(fmt.Errorf("tokens (namespaces and limits already applied): %w", err))
			return
		}
	}
	restart := config.NeedsRestart(s.started, f)
	for _, w := range f.Warnings() {
		s.logger.Warn("config: " + w)
	}
	detail := "applied: token keys, namespaces, limits"
	if len(restart) > 0 {
		detail += "; needs restart: " + strings.Join(restart, ", ")
		s.logger.Warn("config changes need a restart and were not applied", "keys", strings.Join(restart, ", "))
	}
	if s.started.TokenEndpoint.Path != "" && !tokenKeysEqual(s.started, f) {
		s.logger.Warn("the token endpoint keeps signing with the key it started with until a restart")
	}
	s.logger.Info("config reloaded", "config", s.opts.path, "namespaces", len(ns))
	s.events.Record(ctx, audit.Event{Type: eventConfigReloaded, Severity: audit.SeverityInfo, Reason: "sighup", Detail: detail})
}

func tokenKeysEqual(a, b *config.File) bool {
	ka, _ := a.TokenKeys()
	kb, _ := b.TokenKeys()
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if ka[i].ID != kb[i].ID || ka[i].Algorithm != kb[i].Algorithm || string(ka[i].Secret) != string(kb[i].Secret) {
			return false
		}
	}
	return true
}

// problemList returns one line per configuration problem in err.
func problemList(err error) []string {
	var out []string
	for _, e := range config.Errors(err) {
		out = append(out, e.Error())
	}
	if len(out) == 0 && err != nil {
		out = append(out, err.Error())
	}
	return out
}

// indentErrors formats every problem of err on its own indented line.
func indentErrors(err error) error {
	lines := problemList(err)
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return fmt.Errorf("%s%w", strings.Join(lines, "\n"), errSilent{err})
}

// errSilent wraps an error for errors.Is without adding to the message.
type errSilent struct{ err error }

func (e errSilent) Error() string { return "" }
func (e errSilent) Unwrap() error { return e.err }

// headerIdentity returns the token endpoint's identify function: the user
// named by the configured header, believed only when the TCP peer is one
// of trusted_proxies.
func headerIdentity(f *config.File) (func(*http.Request) (auth.Identity, error), error) {
	var trusted []netip.Prefix
	for _, p := range f.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("trusted_proxies: %q: %w", p, err)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		trusted = append(trusted, pfx)
	}
	te := f.TokenEndpoint
	return func(r *http.Request) (auth.Identity, error) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return auth.Identity{}, errors.New("token endpoint: unparsable peer address")
		}
		peer := ap.Addr().Unmap()
		ok := false
		for _, p := range trusted {
			ok = ok || p.Contains(peer)
		}
		if !ok {
			return auth.Identity{}, errors.New("token endpoint: request not from a trusted proxy")
		}
		id := auth.Identity{User: strings.TrimSpace(r.Header.Get(te.UserHeader))}
		if te.GroupsHeader != "" {
			id.Groups = splitList(r.Header.Get(te.GroupsHeader))
		}
		if te.TenantHeader != "" {
			id.Tenant = strings.TrimSpace(r.Header.Get(te.TenantHeader))
		}
		if id.User == "" {
			return auth.Identity{}, errors.New("token endpoint: no user header")
		}
		return id, nil
	}, nil
}

// proxyWiring registers proxy mode on a gateway: the event handlers once,
// and the subscribe authorizer on every namespace not yet given it (called
// again after a reload adds namespaces).
type proxyWiring func(gw *livegate.Gateway, namespaces []policy.NamespaceConfig) error

// setupProxy prepares proxy mode: it sets the gateway hooks in cfg and
// returns the wiring to run once the gateway is made.
func setupProxy(f *config.File, cfg *livegate.Config, logger *slog.Logger) (proxyWiring, error) {
	if !f.ProxyEnabled() {
		return func(*livegate.Gateway, []policy.NamespaceConfig) error { return nil }, nil
	}
	pc := f.Proxy
	p, err := proxy.New(proxy.Config{
		Backend:           pc.URL,
		InsecureAllowHTTP: pc.InsecureAllowHTTP,
		Secret:            f.ProxySecret(),
		Timeout:           pc.Timeout,
		MaxResponseBytes:  pc.MaxResponseBytes,
		Routes: proxy.Routes{
			Connect: pc.Connect, Subscribe: pc.Subscribe, Disconnect: pc.Disconnect, Events: pc.Events,
		},
		Paths: proxy.Paths{
			Connect: pc.Paths.Connect, Subscribe: pc.Paths.Subscribe, Event: pc.Paths.Event, Disconnect: pc.Paths.Disconnect,
		},
		ForwardHeaders: pc.ForwardHeaders,
		ForwardToken:   pc.ForwardToken,
		Breaker: proxy.BreakerConfig{
			Failures: uint32(pc.CircuitBreaker.Failures), OpenFor: pc.CircuitBreaker.OpenFor,
			HalfOpenRequests: uint32(pc.CircuitBreaker.HalfOpenRequests),
		},
		Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if hook := p.ConnectHook(); hook != nil {
		cfg.ConnectHook = hook
		cfg.AllowConnectWithoutToken = pc.ConnectWithoutToken
		cfg.OnDisconnect = p.OnDisconnect // also frees what connect remembered
	} else if pc.Disconnect {
		cfg.OnDisconnect = p.OnDisconnect
	}
	var mu sync.Mutex
	registered, authorized := false, map[string]bool{}
	return func(gw *livegate.Gateway, namespaces []policy.NamespaceConfig) error {
		mu.Lock()
		defer mu.Unlock()
		if !registered {
			if err := p.Register(gw); err != nil {
				return err
			}
			registered = true
		}
		if az := p.Authorizer(); az != nil {
			for _, ns := range namespaces {
				if authorized[ns.Name] {
					continue
				}
				if err := gw.Authorize(ns.Name, az); err != nil {
					return err
				}
				authorized[ns.Name] = true
			}
		}
		return nil
	}, nil
}

// csrfHandler answers GET with {"csrf_token": …}, setting the CSRF cookie,
// for pages that call the token endpoint: they send the value back in
// X-CSRF-Token. Another site's page cannot read the answer (no CORS).
func csrfHandler(gw *livegate.Gateway) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		tok, err := gw.CSRFToken(w, r)
		if err != nil {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"csrf_token": tok})
	})
}
