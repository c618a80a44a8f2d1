package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/policy"
)

// selftestCaseNames are the cases in the order they run.
var selftestCaseNames = []string{
	"valid_token_connects", "origin_foreign_refused",
	"token_alg_none", "token_forged_signature", "token_expired", "token_hs512",
	"token_wrong_audience", "token_kind_subscribe", "token_replayed", "token_in_url_ignored",
	"frame_oversize", "frame_malformed_json", "event_names_guarded",
	"subscribe_cross_user_token", "command_flood", "connect_rate",
}

// caseLines returns the PASS/FAIL/SKIP line of each case by name.
func caseLines(t *testing.T, out string) map[string]string {
	t.Helper()
	lines := map[string]string{}
	for l := range strings.SplitSeq(out, "\n") {
		status, rest, _ := strings.Cut(l, " ")
		if status != "PASS" && status != "FAIL" && status != "SKIP" {
			continue
		}
		name, _, _ := strings.Cut(rest, ":")
		if _, dup := lines[name]; dup {
			t.Errorf("case %s reported twice", name)
		}
		lines[name] = l
	}
	return lines
}

func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// startDev runs `livegate dev` on 127.0.0.1:0 with the test secret and
// returns its address.
func startDev(t *testing.T) string {
	t.Helper()
	t.Setenv(envSecret, testSecret)
	t.Setenv(envAudience, "")
	t.Setenv(envAdminSecret, "")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, "127.0.0.1:0", t.TempDir()+"/dev.db", &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runDev: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("dev server did not stop")
		}
	})
	re := regexp.MustCompile(`on http://(127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev server did not start: %s", out.String())
		}
	}
}

func TestSelftestPassesAgainstDevServer(t *testing.T) {
	addr := startDev(t)
	var out bytes.Buffer
	start := time.Now()
	code, err := runSelftest(context.Background(), selftestConfig{
		URL: "ws://" + addr + "/ws", Origin: "http://" + addr, Timeout: 30 * time.Second,
		ConnectTimeout: livegate.DefaultConnectTimeout, Channel: "room:selftest", ConnectRateLimit: 20,
		Spread: runtime.GOOS == "linux", Secret: []byte(testSecret), Audience: livegate.DefaultAudience,
	}, &out)
	t.Logf("%s in %s", out.String(), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	lines := caseLines(t, out.String())
	for _, name := range selftestCaseNames {
		if lines[name] != "PASS "+name {
			t.Errorf("case %s: %q", name, lines[name])
		}
	}
	if len(lines) != len(selftestCaseNames) {
		t.Errorf("%d cases reported, want %d", len(lines), len(selftestCaseNames))
	}
	if got, want := lastLine(out.String()), "16 passed, 0 failed"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// A gateway that allows a foreign origin pattern and has no command rate
// limit fails exactly those cases, and the command exits non-zero.
func TestSelftestDetectsWeakenedGateway(t *testing.T) {
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret: []byte(testSecret),
		Namespaces:      []policy.NamespaceConfig{{Name: "room", Subscribe: policy.SubscribeAuthenticated}},
		AllowedOrigins:  []string{"https://*.evil.example"},
		CommandRate:     -1,
		ConnectTimeout:  2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewServer(mux)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	}()
	t.Setenv(envSecret, testSecret)
	t.Setenv(envAudience, "")
	out, err := runCLI(t, "selftest", "--url", wsURL(srv.URL), "--connect-timeout", "2s", "--skip-connect-rate")
	t.Logf("%s", out)
	if err == nil {
		t.Fatal("selftest of a weakened gateway succeeded: the exit status would be 0")
	}
	lines := caseLines(t, out)
	failing := map[string]string{
		"origin_foreign_refused": "FAIL origin_foreign_refused: expected HTTP 403 for Origin https://attacker.evil.example, got HTTP 101 (upgraded)",
		// How many of the 500 replies arrived before the case gave up
		// depends on the machine's speed; none may be rate_limited.
		"command_flood": `^FAIL command_flood: expected rate_limited replies, then close 4429 \(rate limited\), got 500 commands: 0 rate_limited and \d+ other replies, then the connection still open$`,
	}
	for _, name := range selftestCaseNames {
		want := "PASS " + name
		if f, ok := failing[name]; ok {
			want = f
		}
		if name == "connect_rate" {
			want = "SKIP connect_rate: --skip-connect-rate"
		}
		if strings.HasPrefix(want, "^") && regexp.MustCompile(want).MatchString(lines[name]) {
			continue
		}
		if lines[name] != want {
			t.Errorf("case %s:\n got %q\nwant %q", name, lines[name], want)
		}
	}
	if got, want := lastLine(out), "13 passed, 2 failed, 1 skipped"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// With a token secret that is not the gateway's, the control case fails
// and the run stops: the refusals would prove nothing.
func TestSelftestStopsWhenValidTokenFails(t *testing.T) {
	_, base := startLoadGateway(t, livegate.Limits{}, nil)
	var out bytes.Buffer
	code, err := runSelftest(context.Background(), selftestConfig{
		URL: wsURL(base), Timeout: 10 * time.Second, ConnectTimeout: time.Second, Channel: "room:x",
		ConnectRateLimit: 20, Secret: []byte("another-secret-0123456789abcdef-xyz"), Audience: livegate.DefaultAudience,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "livegate selftest: " + wsURL(base) + " from one source address\n" +
		"FAIL valid_token_connects: expected a connect result for a valid token, got close 4401 (unauthorized)\n"
	if code != 1 || !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "stopping: ") ||
		lastLine(out.String()) != "0 passed, 1 failed" {
		t.Fatalf("exit status %d, output:\n%s", code, out.String())
	}
}

func TestSelftestRefusesNonLoopbackWithoutDialing(t *testing.T) {
	t.Setenv(envSecret, testSecret)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, args := range [][]string{
		{"--url", "ws://0.0.0.0:" + port + "/ws"}, // reaches this machine, but is no loopback literal
		{"--url", "ws://192.0.2.1:" + port + "/ws"},
		{"--url", "ws://[::ffff:192.0.2.1]:" + port + "/ws"},
		{"--url", "ws://127.0.0.1.nip.io:" + port + "/ws"}, // a name that resolves to loopback
		{"--url", "ws://localhost@192.0.2.1:" + port + "/ws"},
		{"--url", "wss://example.com/ws"},
		{"--url", "http://127.0.0.1:" + port + "/ws"},
		{"--url", "ws://[::1%25lo]:" + port + "/ws"},
		// --allow-host must name the URL's host exactly.
		{"--url", "ws://192.0.2.1:" + port + "/ws", "--allow-host", "192.0.2.2"},
		{"--url", "wss://app.example.com/ws", "--allow-host", "example.com"},
		{"--url", "wss://app.example.com/ws", "--allow-host", "*.example.com"},
		// Even when allowed, no unspecified or multicast address.
		{"--url", "ws://0.0.0.0:" + port + "/ws", "--allow-host", "0.0.0.0"},
		{"--url", "ws://[::]:" + port + "/ws", "--allow-host", "::"},
		{"--url", "ws://224.0.0.1:" + port + "/ws", "--allow-host", "224.0.0.1"},
		// Bounds.
		{"--url", "ws://127.0.0.1:" + port + "/ws", "--timeout", "0s"},
		{"--url", "ws://127.0.0.1:" + port + "/ws", "--timeout", "1h"},
		{"--url", "ws://127.0.0.1:" + port + "/ws", "--connect-timeout", "0s"},
		{"--url", "ws://127.0.0.1:" + port + "/ws", "--connect-rate-limit", "1000"},
	} {
		out, err := runCLI(t, append([]string{"selftest"}, args...)...)
		if err == nil {
			t.Errorf("%v accepted", args)
			continue
		}
		// Refused before any case ran; the request counter below proves
		// nothing was dialed.
		if strings.Contains(out, "PASS") || strings.Contains(out, "FAIL") {
			t.Errorf("%v: printed %q", args, out)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
	// No secret, no run.
	t.Setenv(envSecret, "")
	if _, err := runCLI(t, "selftest", "--url", "ws://127.0.0.1:"+port+"/ws"); err == nil || !strings.Contains(err.Error(), envSecret) {
		t.Errorf("missing secret: %v", err)
	}

	// Defence in depth: the dialer refuses what the URL check did not
	// allow, whatever a name resolves to.
	loop := newSelftestTransport(nil, netip.Addr.IsLoopback)
	if c, err := loop.DialContext(context.Background(), "tcp", "0.0.0.0:"+port); err == nil {
		c.Close()
		t.Error("loopback dialer connected to 0.0.0.0")
	}
	// An allowed host pins the addresses it resolved to: nothing else,
	// not even loopback, is dialed.
	cfg := selftestConfig{
		URL: "ws://192.0.2.1:" + port + "/ws", AllowHost: "192.0.2.1", Timeout: time.Second, ConnectTimeout: time.Second,
		Channel: "room:x", ConnectRateLimit: 20, Spread: true, Secret: []byte(testSecret),
	}
	p, err := cfg.plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.spread || !p.allowed(netip.MustParseAddr("192.0.2.1")) || p.allowed(netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("plan for an allowed host: spread %v, allowed 192.0.2.1 %v, 127.0.0.1 %v", p.spread,
			p.allowed(netip.MustParseAddr("192.0.2.1")), p.allowed(netip.MustParseAddr("127.0.0.1")))
	}
	pinned := newSelftestTransport(nil, p.allowed)
	if c, err := pinned.DialContext(context.Background(), "tcp", srv.Listener.Addr().String()); err == nil {
		c.Close()
		t.Error("pinned dialer connected to loopback")
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

// A redirect is taken as the answer: the selftest never follows it.
func TestSelftestDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		followed.Add(1)
	}))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/ws", http.StatusTemporaryRedirect))
	defer redirect.Close()
	var out bytes.Buffer
	code, err := runSelftest(context.Background(), selftestConfig{
		URL: wsURL(redirect.URL), Timeout: 10 * time.Second, ConnectTimeout: time.Second, Channel: "room:x",
		ConnectRateLimit: 20, Secret: []byte(testSecret), Audience: livegate.DefaultAudience,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(out.String(), "got HTTP 307 to \""+elsewhere.URL+"/ws\" (redirects are not followed)") {
		t.Errorf("exit status %d, output:\n%s", code, out.String())
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
}
