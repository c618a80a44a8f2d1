// Package demo is the application served by `livegate dev`: a chat room
// demonstrating authenticated connections, channels and allow-listed events.
//
// Its contract is relied on by documentation and tests: namespace "room",
// which any authenticated connection may subscribe to and no client may
// publish to, and event "say" with payload {"room", "text"} that publishes
// {"user", "text"} to room:<room>.
package demo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/web"
)

//go:embed static
var static embed.FS

// Limits of the demo's inputs.
const (
	MaxRoomLen = 64
	MaxTextLen = 500
	MaxUserLen = 32
	// TokenTTL is the lifetime of tokens handed out by /dev/token.
	TokenTTL = 5 * time.Minute
)

var (
	roomRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	userRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
)

// Config configures the demo server.
type Config struct {
	// Secret is the HS256 token secret, at least 32 bytes.
	Secret []byte
	// Audience of tokens; default "livegate".
	Audience string
	// Logger receives logs; nil discards.
	Logger *slog.Logger
	// Gateway is applied on top of the demo's gateway configuration
	// (secret, audience, namespaces and logger are set by the demo).
	Gateway livegate.Config
	// AdminSecret, when set (at least 32 bytes), enables
	// POST /admin/revoke for backends (see Gateway.RevokeHandler).
	AdminSecret []byte
}

// Server is the demo application: pages, the dev token endpoint and the
// gateway, as one http.Handler.
type Server struct {
	gw    *livegate.Gateway
	mux   *http.ServeMux
	log   *slog.Logger
	index *template.Template
}

// Namespaces returns the demo's channel namespaces.
func Namespaces() []policy.NamespaceConfig {
	return []policy.NamespaceConfig{{
		Name:        "room",
		Subscribe:   policy.SubscribeAuthenticated,
		HistorySize: 100,
		HistoryTTL:  10 * time.Minute,
	}}
}

// New returns the demo server.
func New(cfg Config) (*Server, error) {
	if cfg.Audience == "" {
		cfg.Audience = livegate.DefaultAudience
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	gcfg := cfg.Gateway
	gcfg.TokenAlgorithm = "HS256"
	gcfg.TokenHMACSecret = cfg.Secret
	gcfg.Audience = cfg.Audience
	gcfg.Namespaces = Namespaces()
	gcfg.Logger = cfg.Logger
	if gcfg.TokenTTL == 0 {
		gcfg.TokenTTL = TokenTTL
	}
	gw, err := livegate.New(gcfg)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	s := &Server{gw: gw, mux: http.NewServeMux(), log: cfg.Logger}
	if err := gw.Handle("say", livegate.HandlerFunc[Say](s.say)); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	s.index, err = template.ParseFS(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	s.mux.HandleFunc("GET /{$}", s.indexPage)
	s.mux.Handle("GET /demo.css", page(files, "demo.css"))
	s.mux.Handle("GET /demo.js", page(files, "demo.js"))
	s.mux.Handle("GET /livegate.js", web.ClientHandler())
	s.mux.Handle("/ws", gw)
	s.mux.Handle("/dev/token", gw.TokenHandler(identify))
	if len(cfg.AdminSecret) > 0 {
		h, err := gw.RevokeHandler(cfg.AdminSecret)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		s.mux.Handle("/admin/revoke", h)
	}
	return s, nil
}

// Gateway returns the demo's gateway.
func (s *Server) Gateway() *livegate.Gateway { return s.gw }

// ServeHTTP serves the demo.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Shutdown closes the gateway's connections (1001) and waits for them.
func (s *Server) Shutdown(ctx context.Context) error { return s.gw.Shutdown(ctx) }

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

type tokenRequest struct {
	User string `json:"user"`
}

// identify is the dev server's stand-in for a login: the page names its
// user in a JSON body. The gateway's TokenHandler around it enforces CSRF
// (Fetch Metadata, Origin and the page's token) and issues a single-use
// token bound to a fresh session.
func identify(r *http.Request) (auth.Identity, error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return auth.Identity{}, errors.New("demo: want application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<10+1))
	if err != nil || len(body) > 1<<10 {
		return auth.Identity{}, errors.New("demo: body too large")
	}
	var req tokenRequest
	if err := protocol.Unmarshal(body, &req); err != nil || !userRe.MatchString(req.User) {
		return auth.Identity{}, errors.New("demo: bad user name")
	}
	sid, err := auth.GenerateSecret(12)
	if err != nil {
		return auth.Identity{}, err
	}
	return auth.Identity{User: req.User, Session: fmt.Sprintf("%x", sid)}, nil
}

// indexPage renders the page with its CSRF token.
func (s *Server) indexPage(w http.ResponseWriter, r *http.Request) {
	tok, err := s.gw.CSRFToken(w, r)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.index.Execute(w, struct{ CSRFToken string }{tok}); err != nil {
		s.log.Error("render index", "err", err)
	}
}

const csp = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

// page serves one embedded file with the security headers.
func page(files fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, name)
	})
}
