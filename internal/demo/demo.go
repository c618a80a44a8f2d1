// Package demo is the application served by `livegate dev`: a page that
// shows what livegate does, secure by default.
//
//   - Sign-in with passwords (package identity: Argon2id, a password policy,
//     lockout with back-off) and a server-side session in an HttpOnly,
//     SameSite=Strict cookie; new accounts can register.
//   - A chat room over channels and an allow-listed event.
//   - A live view (package live): a shared counter and message board,
//     rendered over plain HTTP first, then kept up to date with patches.
//   - A live operation (package ops): a long task with status, percent,
//     log, error and result, persisted in the store, with cancel and
//     restart.
//   - Every page under httpsec.Headers (a CSP with a per-request nonce) and
//     every state-changing request behind a CSRF check.
//
// Its contract is relied on by documentation and tests: namespace "room",
// which any authenticated connection may subscribe to and no client may
// publish to, and event "say" with payload {"room", "text"} that publishes
// {"user", "text"} to room:<room>. POST /dev/token issues a connect token
// for the user named in its JSON body to any page of the demo (CSRF token
// and cookie from GET /): a development shortcut that is not a login (see
// Server.identify).
package demo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/csrf"
	"github.com/livegate/livegate/httpsec"
	"github.com/livegate/livegate/identity"
	"github.com/livegate/livegate/internal/origin"
	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/ops"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/web"
)

//go:embed static templates
var embedded embed.FS

// Limits of the demo's inputs.
const (
	MaxRoomLen = 64
	MaxTextLen = 500
	MaxUserLen = 32
	// TokenTTL is the lifetime of tokens handed out by /dev/token.
	TokenTTL = 5 * time.Minute
	// SweepInterval is how often finished operations, expired sessions
	// and idle lockout records are swept.
	SweepInterval = time.Minute
)

var (
	roomRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	userRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
)

// Config configures the demo server.
type Config struct {
	// Secret is the HS256 token secret, at least 32 bytes. The CSRF key
	// and the live-view session key are derived from it.
	Secret []byte
	// Audience of tokens; default "livegate".
	Audience string
	// Logger receives logs; nil discards.
	Logger *slog.Logger
	// Gateway is applied on top of the demo's gateway configuration
	// (secret, audience, namespaces, views and logger are set by the
	// demo). Its SecurityEvents also receive the demo's own refusals.
	Gateway livegate.Config
	// AdminSecret, when set (at least 32 bytes), enables
	// POST /admin/revoke for backends (see Gateway.RevokeHandler).
	AdminSecret []byte
	// Operations persists live operations (store.DB.Operations()); nil
	// keeps them in memory.
	Operations ops.Store
	// DemoPassword is the password of the demo users (DemoUsers); empty
	// generates a random one (see Server.DemoPassword). It must pass the
	// password policy.
	DemoPassword string
	// TaskStep is the duration of each of the long task's TaskSteps
	// steps; zero means 250 ms (five seconds in all).
	TaskStep time.Duration
	// TaskWatchWait is how long a new long task waits for its page to
	// watch it before it reports anything; zero means 2 s.
	TaskWatchWait time.Duration
}

// Server is the demo application: pages, sign-in, the dev token endpoint,
// the live view, the live operations and the gateway, as one http.Handler.
type Server struct {
	gw       *livegate.Gateway
	handler  http.Handler
	mux      *http.ServeMux
	log      *slog.Logger
	events   audit.Sink
	csrf     *csrf.Protector
	secure   bool
	index    *template.Template
	users    *identity.Users
	sessions *sessions
	password string
	views    *live.Registry
	board    *board
	ops      *ops.Manager
	tasks    *tasks

	stop     chan struct{}
	stopOnce sync.Once
	bg       sync.WaitGroup
}

// Namespaces returns the demo's channel namespaces: "room" (chat rooms)
// and "op" (live operations; the ops Manager's Authorizer admits only the
// owner).
func Namespaces() []policy.NamespaceConfig {
	return []policy.NamespaceConfig{{
		Name:        "room",
		Subscribe:   policy.SubscribeAuthenticated,
		HistorySize: 100,
		HistoryTTL:  10 * time.Minute,
	}, {
		Name:        ops.Namespace,
		Subscribe:   policy.SubscribeAuthenticated,
		HistorySize: 50,
		HistoryTTL:  10 * time.Minute,
	}}
}

// New returns the demo server. Call Shutdown to stop it.
func New(cfg Config) (*Server, error) {
	if len(cfg.Secret) < 32 {
		return nil, errors.New("demo: secret must be at least 32 bytes")
	}
	if cfg.Audience == "" {
		cfg.Audience = livegate.DefaultAudience
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		mux:      http.NewServeMux(),
		log:      cfg.Logger,
		events:   cfg.Gateway.SecurityEvents,
		sessions: newSessions(time.Now),
		board:    newBoard(),
		stop:     make(chan struct{}),
	}
	if s.events == nil {
		s.events = audit.NewSlogSink(cfg.Logger)
	}
	s.tasks = newTasks(cfg.TaskStep, cfg.TaskWatchWait)

	gcfg := cfg.Gateway
	gcfg.TokenAlgorithm = "HS256"
	gcfg.TokenHMACSecret = cfg.Secret
	gcfg.Audience = cfg.Audience
	gcfg.Namespaces = Namespaces()
	gcfg.Logger = cfg.Logger
	if gcfg.TokenTTL == 0 {
		gcfg.TokenTTL = TokenTTL
	}
	// One CSRF key for the gateway (token endpoint, view joins) and the
	// demo's own forms and the ops endpoints: the page has one token.
	if len(gcfg.CSRFKey) == 0 {
		gcfg.CSRFKey = derive(cfg.Secret, "livegate demo csrf key v1")
	}
	var err error
	if s.csrf, s.secure, err = protector(gcfg); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	s.views, err = live.NewRegistry(cfg.Secret, live.Options{MaxStateBytes: 64 << 10})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := s.views.Register(s.boardView()); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	gcfg.Views = s.views
	s.gw, err = livegate.New(gcfg)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := s.setup(cfg); err != nil {
		if s.ops != nil {
			_ = s.ops.Shutdown(context.Background())
		}
		_ = s.gw.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	s.handler = httpsec.Headers(httpsec.HeadersConfig{}, s.mux)
	s.bg.Add(1)
	go s.sweepLoop()
	return s, nil
}

// setup registers the event, the accounts, the live operations and the
// routes on a new gateway.
func (s *Server) setup(cfg Config) error {
	if err := s.gw.Handle("say", livegate.HandlerFunc[Say](s.say)); err != nil {
		return err
	}
	if err := s.setupAccounts(cfg.DemoPassword); err != nil {
		return err
	}
	if err := s.setupOps(cfg); err != nil {
		return err
	}
	return s.routes(cfg)
}

// derive returns a 32-byte key for purpose, derived from secret.
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// protector returns a csrf.Protector that issues and accepts the same
// tokens as the gateway's: same key, cookie and origin policy.
func protector(gcfg livegate.Config) (*csrf.Protector, bool, error) {
	secure := gcfg.SecureCookies || strings.HasPrefix(gcfg.PublicURL, "https://")
	allowed := gcfg.AllowedOrigins
	if len(allowed) == 0 && gcfg.PublicURL != "" {
		if o := publicOrigin(gcfg.PublicURL); o != "" {
			allowed = []string{o}
		}
	}
	allow := func(r *http.Request, o string) bool {
		own := origin.FromRequest(r, false)
		return own != "" && origin.Equal(o, own)
	}
	if len(allowed) > 0 {
		p, err := origin.New(allowed)
		if err != nil {
			return nil, false, err
		}
		allow = func(_ *http.Request, o string) bool { return p.Allowed(o) }
	}
	p, err := csrf.New(gcfg.CSRFKey, csrf.Options{Secure: secure, AllowOrigin: allow})
	return p, secure, err
}

func publicOrigin(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host
}

func (s *Server) routes(cfg Config) error {
	files, err := fs.Sub(embedded, "static")
	if err != nil {
		return err
	}
	s.index, err = template.ParseFS(embedded, "templates/index.html")
	if err != nil {
		return err
	}
	guard := func(h http.HandlerFunc) (http.Handler, error) {
		return httpsec.CSRF(httpsec.CSRFConfig{Protector: s.csrf, OnReject: s.csrfRejected}, h)
	}
	guarded := map[string]http.HandlerFunc{
		"POST /login":     s.login,
		"POST /logout":    s.logout,
		"POST /register":  s.register,
		"POST /ops/start": s.startTask,
	}
	for pattern, h := range guarded {
		g, err := guard(h)
		if err != nil {
			return err
		}
		s.mux.Handle(pattern, g)
	}
	s.mux.HandleFunc("GET /{$}", s.indexPage)
	s.mux.HandleFunc("GET /ops/{id}", s.opPage)
	s.mux.Handle("/ops/", http.StripPrefix("/ops", s.tasks.restartParams(s.ops.Handler())))
	s.mux.HandleFunc("GET /board/session", s.boardSession)
	s.mux.Handle("GET /demo.css", static(files, "demo.css"))
	s.mux.Handle("GET /demo.js", static(files, "demo.js"))
	for _, p := range web.Paths() {
		s.mux.Handle("GET "+p, web.Handler())
	}
	s.mux.Handle("/ws", s.gw)
	s.mux.Handle("/dev/token", s.gw.TokenHandler(s.identify))
	if len(cfg.AdminSecret) > 0 {
		h, err := s.gw.RevokeHandler(cfg.AdminSecret)
		if err != nil {
			return err
		}
		s.mux.Handle("/admin/revoke", h)
	}
	return nil
}

// Gateway returns the demo's gateway.
func (s *Server) Gateway() *livegate.Gateway { return s.gw }

// ServeHTTP serves the demo.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Shutdown stops the background sweeps, cancels the running operations
// and waits for them, then closes the gateway's connections (1001) and
// waits for them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.bg.Wait()
	oerr := s.ops.Shutdown(ctx)
	return errors.Join(oerr, s.gw.Shutdown(ctx))
}

// sweepLoop drops finished operations past their retention, expired
// sessions and idle lockout records, every SweepInterval until Shutdown.
func (s *Server) sweepLoop() {
	defer s.bg.Done()
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := s.ops.Sweep(ctx); err != nil {
				s.log.Warn("demo: sweep operations", "err", err)
			}
			cancel()
			s.sessions.sweep()
			s.users.Sweep(time.Now())
		}
	}
}

// csrfRejected records a request refused by the CSRF guard.
func (s *Server) csrfRejected(r *http.Request, reason string) {
	s.events.Record(context.WithoutCancel(r.Context()), audit.Event{
		Type: audit.TypeCSRFRejected, Time: time.Now(), Severity: audit.SeverityWarning,
		IP: clientIP(r), Reason: reason, Detail: r.Method + " " + r.URL.Path,
	})
}

// Say is the payload of the "say" event.
type Say struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

// Validate checks the room name and the text length.
func (p Say) Validate() error {
	if !roomRe.MatchString(p.Room) {
		return errors.New("room: 1..64 characters of [A-Za-z0-9_.-]")
	}
	if !utf8.ValidString(p.Text) {
		return errors.New("text: invalid UTF-8")
	}
	if n := utf8.RuneCountInString(p.Text); n < 1 || n > MaxTextLen {
		return errors.New("text: 1..500 characters")
	}
	return nil
}

// Message is what "say" publishes to room:<room>.
type Message struct {
	User string `json:"user"`
	Text string `json:"text"`
}

func (s *Server) say(ctx context.Context, r *livegate.Request, p Say) (any, error) {
	if _, err := s.gw.Publish(ctx, "room:"+p.Room, Message{User: r.Identity.User, Text: p.Text}); err != nil {
		if errors.Is(err, livegate.ErrTooLarge) {
			return nil, livegate.NewError(livegate.CodeBadRequest)
		}
		return nil, err
	}
	return map[string]bool{"ok": true}, nil
}

// static serves one embedded file.
func static(files fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, name)
	})
}
