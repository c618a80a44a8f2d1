package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/httpapi"
	"github.com/livegate/livegate/internal/wstest"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
	"github.com/livegate/livegate/store"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// recorder is an audit.Sink keeping events for assertions.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

// last returns the newest event of type typ.
func (r *recorder) last(typ string) (audit.Event, bool) {
	evs := r.all()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return evs[i], true
		}
	}
	return audit.Event{}, false
}

// lockedBuffer collects logs from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// env is a real gateway with the HTTP API mounted, on loopback, with keys
// in a real SQLite file.
type env struct {
	t       *testing.T
	gw      *livegate.Gateway
	keys    *apikey.Manager
	db      *store.DB
	srv     *httptest.Server
	events  *recorder
	logs    *lockedBuffer
	clock   *fakeClock // the key manager's and the handler's clock
	signer  *auth.Signer
	mu      sync.Mutex
	secrets []string // every key text handed out, for leak checks
	bodies  []string // every response body, for leak checks
}

type envOptions struct {
	gateway func(*livegate.Config)
	api     func(*httpapi.Config)
}

func namespaces() []policy.NamespaceConfig {
	return []policy.NamespaceConfig{
		{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: 100},
		{Name: "admin", Subscribe: policy.SubscribeAuthenticated},
		{Name: "lobby", Subscribe: policy.SubscribeAuthenticated, Presence: true},
		{Name: "org", Subscribe: policy.SubscribeAuthenticated, TenantScoped: true, HistorySize: 10, Presence: true},
	}
}

func noLimits() livegate.Limits {
	off := ratelimit.Rule{Limit: -1}
	return livegate.Limits{
		AttemptsPerIP: off, AttemptsPerUser: off, TokensPerUser: off, TokensPerIP: off,
		ConnsPerIP: -1, ConnsPerUser: -1, Cooldown: -1,
	}
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, events: &recorder{}, logs: &lockedBuffer{}, clock: newClock()}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "livegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	if e.keys, err = apikey.New(apikey.Config{Store: db.APIKeys(), Now: e.clock.Now, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	cfg := livegate.Config{
		TokenHMACSecret: testSecret,
		Namespaces:      namespaces(),
		SecurityEvents:  e.events,
		Logger:          logger,
		Limits:          noLimits(),
	}
	if o.gateway != nil {
		o.gateway(&cfg)
	}
	if e.gw, err = livegate.New(cfg); err != nil {
		t.Fatal(err)
	}
	acfg := httpapi.Config{
		Gateway:        e.gw,
		Keys:           e.keys,
		SecurityEvents: e.events,
		Logger:         logger,
		Now:            e.clock.Now,
	}
	if o.api != nil {
		o.api(&acfg)
	}
	api, err := httpapi.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", e.gw)
	mux.Handle("/api/", api)
	e.srv = httptest.NewServer(mux)
	if e.signer, err = auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: testSecret}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.checkNoLeaks()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.gw.Shutdown(ctx)
		e.srv.Close()
		db.Close()
	})
	return e
}

// key creates an API key and remembers its text for the leak check.
func (e *env) key(scopes string, mutate ...func(*apikey.CreateRequest)) (string, apikey.Key) {
	e.t.Helper()
	ss, err := apikey.ParseScopes(scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	req := apikey.CreateRequest{Name: "backend", Scopes: ss}
	for _, m := range mutate {
		m(&req)
	}
	text, k, err := e.keys.Create(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.secrets = append(e.secrets, text)
	e.mu.Unlock()
	return text, k
}

// checkNoLeaks fails if a key's text or secret appears in the logs, the
// audit events or any response body.
func (e *env) checkNoLeaks() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.logs.String()
	evs, _ := json.Marshal(e.events.all())
	bodies := strings.Join(e.bodies, "\n")
	for _, text := range e.secrets {
		secret := text[12:]
		for what, s := range map[string]string{"logs": logs, "audit events": string(evs), "responses": bodies} {
			if strings.Contains(s, secret) {
				e.t.Errorf("a key's secret appears in the %s", what)
			}
		}
	}
}

// response is an API reply.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("bad JSON %s: %v", r.body, err)
	}
}

// do sends a request to the API with the headers given as name, value
// pairs.
func (e *env) do(method, path, contentType string, body io.Reader, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.bodies = append(e.bodies, string(b))
	e.mu.Unlock()
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends a JSON body with the key as a bearer token.
func (e *env) post(key, path, body string) response {
	e.t.Helper()
	return e.do(http.MethodPost, path, "application/json", strings.NewReader(body), "Authorization", "Bearer "+key)
}

// expect checks a reply's status and, for refusals, that the body is the
// generic JSON error with code.
func expect(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if code == "" {
		return
	}
	var b struct{ Error, Message string }
	r.json(t, &b)
	if b.Error != code || b.Message == "" {
		t.Fatalf("body %s, want error %q with a message", r.body, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

// connect dials the gateway and authenticates with id.
func (e *env) connect(id auth.Identity) *wstest.Conn {
	e.t.Helper()
	c := wstest.Dial(e.t, wstest.URL(e.srv.URL), nil)
	tok, _, err := e.signer.Sign(id, auth.KindConnect, 5*time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	c.Connect(protocol.ConnectParams{Token: tok})
	return c
}
