package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// ipRecorder keeps the client IPs of the gateway's security events.
type ipRecorder struct {
	mu  sync.Mutex
	ips map[string]bool
}

func (r *ipRecorder) Record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ips == nil {
		r.ips = map[string]bool{}
	}
	r.ips[e.IP] = true
}

func (r *ipRecorder) seen(ip string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ips[ip]
}

// startLoadGateway serves a real gateway with a "room" namespace on
// 127.0.0.1, with a small command rate (5/s, burst 2) and limits.
func startLoadGateway(t *testing.T, limits livegate.Limits, events audit.Sink) (*livegate.Gateway, string) {
	t.Helper()
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: []byte(testSecret),
		Namespaces:      []policy.NamespaceConfig{{Name: "room", Subscribe: policy.SubscribeAuthenticated}},
		CommandRate:     5,
		CommandBurst:    2,
		Limits:          limits,
		SecurityEvents:  events,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	})
	return gw, srv.URL
}

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") + "/ws" }

func TestLoadFloodIsRateLimitedAndClosed4429(t *testing.T) {
	t.Parallel()
	events := &ipRecorder{}
	_, base := startLoadGateway(t, livegate.Limits{}, events)
	spread := runtime.GOOS == "linux"
	var out bytes.Buffer
	const conns = 4
	s, err := runLoad(context.Background(), loadConfig{
		URL: wsURL(base), Conns: conns, Rate: 50, Duration: 2 * time.Second,
		Channel: "room:load", UserPrefix: "load", Origin: base, Spread: spread,
		Secret: []byte(testSecret), Audience: livegate.DefaultAudience,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	if s.attempted != conns || s.upgraded != conns || s.connected != conns || s.subscribed != conns {
		t.Fatalf("attempted %d upgraded %d connected %d subscribed %d, want %d each",
			s.attempted, s.upgraded, s.connected, s.subscribed, conns)
	}
	// Each connection gets MaxRateWarnings rate_limited replies, then 4429.
	if got := s.replyErrors[protocol.CodeRateLimited]; got < conns {
		t.Errorf("rate_limited replies %d, want at least %d", got, conns)
	}
	if got := s.closed[int(protocol.CloseRateLimited)]; got != conns {
		t.Errorf("4429 closes %d, want %d (closed %v)", got, conns, s.closed)
	}
	if s.replyErrors[protocol.CodeBadRequest] == 0 {
		t.Error("no bad_request reply to the default flood (unsubscribe of a channel not subscribed)")
	}
	if s.sent < conns*2+s.replyErrors[protocol.CodeRateLimited] || len(s.latencies) != conns {
		t.Errorf("sent %d, latencies %d", s.sent, len(s.latencies))
	}
	// Every connection was closed, so the run did not wait for the deadline.
	if s.deadline || s.elapsed >= 2*time.Second {
		t.Errorf("run took %s after every connection was closed", s.elapsed)
	}
	for _, want := range []string{"rate_limited: ", "4429 rate limited: 4", "connect latency (upgrade + connect reply): p50 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if spread && !events.seen("127.0.0.2") {
		t.Errorf("the gateway did not see source address 127.0.0.2: %v", events.ips)
	}
}

func TestLoadConnsPerIPRefusesUpgrades429(t *testing.T) {
	t.Parallel()
	gw, base := startLoadGateway(t, livegate.Limits{ConnsPerIP: 3}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Publish while the connections are open, so they count pushes.
	published := make(chan struct{})
	go func() {
		defer close(published)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = gw.Publish(ctx, "room:load", map[string]string{"hello": "load"})
			}
		}
	}()
	var out bytes.Buffer
	start := time.Now()
	s, err := runLoad(ctx, loadConfig{
		URL: wsURL(base), Conns: 5, Duration: 1500 * time.Millisecond,
		Channel: "room:load", UserPrefix: "load", Spread: false,
		Secret: []byte(testSecret), Audience: livegate.DefaultAudience,
	}, &out)
	cancel()
	<-published
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	if s.attempted != 5 || s.upgraded != 3 || s.refused[http.StatusTooManyRequests] != 2 || len(s.refused) != 1 {
		t.Fatalf("attempted %d upgraded %d refused %v, want 5, 3, {429: 2}", s.attempted, s.upgraded, s.refused)
	}
	if s.connected != 3 || s.subscribed != 3 || len(s.closed) != 0 || s.dropped != 0 || s.dialErrors != 0 {
		t.Fatalf("connected %d subscribed %d closed %v dropped %d dial errors %d",
			s.connected, s.subscribed, s.closed, s.dropped, s.dialErrors)
	}
	if s.pushes == 0 {
		t.Error("no pushes received")
	}
	if s.sent != 6 || s.repliesOK != 6 {
		t.Errorf("sent %d, replies ok %d; want 6 each (connect and subscribe)", s.sent, s.repliesOK)
	}
	// Connections stay open until the deadline, then are closed within the grace.
	if d := time.Since(start); d < 1500*time.Millisecond || d > 1500*time.Millisecond+loadCloseGrace+500*time.Millisecond {
		t.Errorf("run took %s", d)
	}
	if !strings.Contains(out.String(), "refused 2 (HTTP 429: 2)") {
		t.Errorf("summary lacks the refusals")
	}
}

func TestLoadStopsAndSummarisesWhenInterrupted(t *testing.T) {
	t.Parallel()
	_, base := startLoadGateway(t, livegate.Limits{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel) // as SIGINT does via signal.NotifyContext
	var out bytes.Buffer
	s, err := runLoad(ctx, loadConfig{
		URL: wsURL(base), Conns: 3, Rate: 1, Duration: time.Minute,
		Channel: "room:load", UserPrefix: "load", SameUser: true,
		Secret: []byte(testSecret), Audience: livegate.DefaultAudience,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !s.interrupted || s.elapsed > time.Second || s.connected != 3 {
		t.Fatalf("interrupted %v after %s, connected %d", s.interrupted, s.elapsed, s.connected)
	}
	if len(s.closed) != 0 || s.dropped != 0 {
		t.Errorf("the tool's own stop was counted: closed %v, dropped %d", s.closed, s.dropped)
	}
	if !strings.Contains(out.String(), "--- summary (interrupted, ") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestLoadRefusesNonLoopbackWithoutDialing(t *testing.T) {
	t.Setenv(envSecret, testSecret)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, u := range []string{
		"ws://0.0.0.0:" + port + "/ws", // reaches this machine, but is no loopback literal
		"ws://192.0.2.1:" + port + "/ws",
		"ws://[::ffff:192.0.2.1]:" + port + "/ws",
		"ws://127.0.0.1.nip.io:" + port + "/ws", // a name that resolves to loopback
		"ws://localhost@192.0.2.1:" + port + "/ws",
		"ws://example.com/ws",
		"http://127.0.0.1:" + port + "/ws",
		"ws://[::1%25lo]:" + port + "/ws",
	} {
		var out bytes.Buffer
		cmd := rootCommand()
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"load", "--url", u, "--duration", "1s"})
		start := time.Now()
		err := cmd.ExecuteContext(context.Background())
		if err == nil {
			t.Errorf("%s accepted", u)
			continue
		}
		if d := time.Since(start); d > 500*time.Millisecond || out.Len() != 0 {
			t.Errorf("%s: took %s, printed %q", u, d, out.String())
		}
	}
	// Defence in depth: the dialer refuses non-loopback addresses whatever
	// a URL passed.
	tr := newLoadTransport(nil)
	if c, err := tr.DialContext(context.Background(), "tcp", "0.0.0.0:"+port); err == nil {
		c.Close()
		t.Error("dialer connected to 0.0.0.0")
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
	// A loopback URL is accepted by the same path (and gets the 418).
	var out bytes.Buffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"load", "--url", "ws://127.0.0.1:" + port + "/ws", "--conns", "1", "--duration", "1s", "--spread=false"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 1 || !strings.Contains(out.String(), "HTTP 418: 1") {
		t.Fatalf("requests %d, output %s", requests.Load(), out.String())
	}
}

func TestLoadConfigBounds(t *testing.T) {
	good := loadConfig{
		URL: "ws://localhost:8080/ws", Conns: 10, Duration: time.Second, UserPrefix: "load",
		Secret: []byte(testSecret),
	}
	if _, err := good.plan(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, mutate := range map[string]func(*loadConfig){
		"no conns":           func(c *loadConfig) { c.Conns = 0 },
		"too many conns":     func(c *loadConfig) { c.Conns = loadMaxConns + 1 },
		"negative rate":      func(c *loadConfig) { c.Rate = -1 },
		"rate too high":      func(c *loadConfig) { c.Rate = loadMaxRate + 1 },
		"rate too low":       func(c *loadConfig) { c.Rate = 1e-12 },
		"no duration":        func(c *loadConfig) { c.Duration = 0 },
		"duration too long":  func(c *loadConfig) { c.Duration = loadMaxDuration + time.Second },
		"payload no event":   func(c *loadConfig) { c.Payload = `{}` },
		"payload not JSON":   func(c *loadConfig) { c.Event, c.Payload = "say", `{` },
		"no secret":          func(c *loadConfig) { c.Secret = nil },
		"empty user prefix":  func(c *loadConfig) { c.UserPrefix = "" },
		"multi-line origin":  func(c *loadConfig) { c.Origin = "http://x\r\nX-Evil: 1" },
		"non-loopback IPv6":  func(c *loadConfig) { c.URL = "ws://[2001:db8::1]/ws" },
		"localhost-ish name": func(c *loadConfig) { c.URL = "ws://localhost.evil.example/ws" },
	} {
		c := good
		mutate(&c)
		if _, err := c.plan(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Spreading: IPv4 loopback targets only, about one source per 500.
	c := good
	c.URL, c.Conns, c.Spread = "ws://127.0.0.1:8080/ws", 1200, true
	p, err := c.plan()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.sources) != 3 || p.sources[0].String() != "127.0.0.2:0" || p.sources[2].String() != "127.0.0.4:0" {
		t.Errorf("sources %v", p.sources)
	}
	for _, u := range []string{"ws://[::1]:8080/ws", "ws://localhost:8080/ws"} {
		c.URL = u
		if p, err := c.plan(); err != nil || len(p.sources) != 1 || p.sources[0] != nil {
			t.Errorf("%s: sources %v, %v", u, p.sources, err)
		}
	}
	// The open-files limit.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<30 {
		if err := checkOpenFiles(int(rl.Cur)); err == nil {
			t.Errorf("%d connections accepted under an open-files limit of %d", rl.Cur, rl.Cur)
		}
	}
}
