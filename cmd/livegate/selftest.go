package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/livegate/livegate/protocol"
)

// Bounds of `livegate selftest`. The tool attacks a gateway, so it only
// targets this machine (a loopback IP or localhost) or the one host the
// user names with --allow-host, follows no redirect, and everything it
// does is capped in count and time.
const (
	selftestMaxTimeout        = 5 * time.Minute
	selftestMaxConnectTimeout = time.Minute
	selftestDialTimeout       = 5 * time.Second // one handshake
	selftestReplyTimeout      = 5 * time.Second // one reply or close
	selftestResolveTimeout    = 5 * time.Second // resolving --allow-host
	// selftestCaseTimeout bounds one case on top of the connect timeout.
	selftestCaseTimeout = 20 * time.Second
	// selftestURLGrace is how long after the connect timeout the
	// token-in-URL case still waits for the 4408.
	selftestURLGrace = time.Second
	// selftestFloodMax is the most commands the flood case sends.
	selftestFloodMax = 500
	// selftestFloodSettle is how long the flood case waits for a close
	// after its last command.
	selftestFloodSettle = 2 * time.Second
	// selftestMaxConnectRate caps --connect-rate-limit: the connect-rate
	// case opens at most one more upgrade than it.
	selftestMaxConnectRate = 100
	// selftestMaxCooldownWait caps the wait for a cooldown (after the
	// flood case's 4429) before the connect-rate case, when every case
	// shares one source address.
	selftestMaxCooldownWait = 10 * time.Second
	// selftestInboundLimit is the inbound frame limit the gateway
	// documents (64 KiB); the oversize case sends one byte more.
	selftestInboundLimit = 64 << 10
	selftestReadLimit    = 1 << 20
	selftestTokenTTL     = 5 * time.Minute
	// selftestNotSubscribed is what the flood unsubscribes from: never
	// subscribed, so each command is a cheap bad_request.
	selftestNotSubscribed = "selftest:not-subscribed"
	// selftestForeignOrigin matches no sane allow-list; a gateway that
	// allows it (a wildcard over a foreign domain, or no origin check)
	// fails the origin case.
	selftestForeignOrigin = "https://attacker.evil.example"
	// selftestUnknownEvent is a well-formed event name no application
	// registers; the guarded names must get the same reply.
	selftestUnknownEvent = "selftest_no_such_event"
)

// selftestGuardedNames are event names that must be answered exactly like
// an unknown name: prototype keys, an upper-case name and a name outside
// the event-name alphabet.
var selftestGuardedNames = []string{"__proto__", "constructor", "Increment", "a-b"}

// selftestConfig is what `livegate selftest` runs.
type selftestConfig struct {
	URL              string
	Origin           string // Origin header of the legitimate requests; "" for none
	AllowHost        string // the one non-loopback host the user allows
	Timeout          time.Duration
	ConnectTimeout   time.Duration // the gateway's connect deadline
	Channel          string        // channel of the cross-user subscription case
	ConnectRateLimit int           // upgrades a minute the gateway allows per IP
	SkipConnectRate  bool
	Spread           bool   // one source address per case (127.x.y.z), IPv4 loopback targets only
	Secret           []byte // the gateway's HS256 secret, to mint tokens
	Audience         string
}

func selftestCommand() *cobra.Command {
	cfg := selftestConfig{Spread: runtime.GOOS == "linux"}
	cmd := &cobra.Command{
		Use:   "selftest --url ws://127.0.0.1:8080/ws",
		Short: "Attack your own gateway with known-bad requests and check that each is refused",
		Long: `Selftest runs a fixed list of attacks against a gateway and checks that each is
refused the way docs/protocol.md says: a foreign Origin (HTTP 403), tokens with
alg none, a forged signature, expired, HS512, another audience, kind subscribe
(close 4401), a replayed token (4401), a token in the URL (ignored: 4408), an
oversize frame (1009), malformed JSON (4400), guarded event names (the same
bytes as an unknown name), another user's subscription token (forbidden), a
command flood (rate_limited, then 4429) and, last, the per-IP connect rate
(HTTP 429). It prints one line per case, PASS, FAIL or SKIP, then
"N passed, N failed", and exits with status 1 if any case failed.

It mints its own tokens with ` + envSecret + ` and ` + envAudience + `:
set them to the gateway's. Targets are loopback IPs and localhost only, unless
--allow-host names the URL's host exactly (your own deployment); the host is
resolved once and only those addresses are dialed. Redirects are never
followed. For an IPv4 loopback target each case connects from its own source
address (127.x.y.z), so the gateway's per-IP limits do not mix the cases up.
Otherwise all cases share one address: wait a minute between runs, because the
connect-rate case uses up the address's upgrade budget (or pass
--skip-connect-rate).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := secretFromEnv()
			if err != nil {
				return err
			}
			if secret == nil {
				return fmt.Errorf("%s is not set: selftest signs its tokens with the gateway's secret", envSecret)
			}
			cfg.Secret, cfg.Audience = secret, audience()
			code, err := runSelftest(cmd.Context(), cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if code != 0 {
				return errors.New("selftest: some cases failed")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/ws", "gateway WebSocket URL (ws:// or wss://); a loopback IP or localhost unless --allow-host")
	f.StringVar(&cfg.Origin, "origin", "", "Origin header of the legitimate requests (default none)")
	f.StringVar(&cfg.AllowHost, "allow-host", "", "allow this one non-loopback host: must equal the URL's host")
	f.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, fmt.Sprintf("bound of the whole run (at most %s)", selftestMaxTimeout))
	f.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 5*time.Second, "the gateway's connect deadline: how long the token-in-URL case waits for 4408 (plus 1s)")
	f.StringVar(&cfg.Channel, "channel", "room:selftest", "channel of the cross-user subscription-token case: one in a namespace that requires subscription tokens, if the gateway has one")
	f.IntVar(&cfg.ConnectRateLimit, "connect-rate-limit", 20, fmt.Sprintf("upgrades a minute the gateway allows per IP (at most %d); the connect-rate case expects HTTP 429 by the next one", selftestMaxConnectRate))
	f.BoolVar(&cfg.SkipConnectRate, "skip-connect-rate", false, "skip the connect-rate case (it uses up the source address's upgrade budget for a minute)")
	f.BoolVar(&cfg.Spread, "spread", cfg.Spread, "one source address per case (127.x.y.z) for IPv4 loopback targets")
	return cmd
}

// selftestPlan is a validated selftestConfig.
type selftestPlan struct {
	url     string
	allowed func(netip.Addr) bool // the addresses the dialer may connect to
	spread  bool
	base    [2]byte // source addresses are 127.base[0].base[1].(2+case)
	origin  string
}

// checkSelftestURL validates raw and returns which addresses may be
// dialed: loopback ones for a loopback URL, otherwise (only when
// allowHost equals the URL's host) the addresses the host resolves to
// now. ipv4Loopback reports an IPv4 loopback literal.
func checkSelftestURL(ctx context.Context, raw, allowHost string) (allowed func(netip.Addr) bool, ipv4Loopback bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, false, fmt.Errorf("--url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, false, fmt.Errorf("--url %q: scheme must be ws or wss", raw)
	}
	if u.Opaque != "" || u.User != nil || u.Hostname() == "" {
		return nil, false, fmt.Errorf("--url %q: not a plain ws URL", raw)
	}
	host := u.Hostname()
	if allowHost != "" && !strings.EqualFold(allowHost, host) && !strings.EqualFold(allowHost, u.Host) {
		return nil, false, fmt.Errorf("--allow-host %q is not the host of --url %q", allowHost, raw)
	}
	if a, lerr := checkLoopbackURL(raw); lerr == nil {
		return netip.Addr.IsLoopback, a.Is4(), nil
	} else if allowHost == "" {
		return nil, false, fmt.Errorf("%w (to test your own host, pass --allow-host %s)", lerr, host)
	}
	var addrs []netip.Addr
	if a, perr := netip.ParseAddr(host); perr == nil {
		if a.Zone() != "" {
			return nil, false, fmt.Errorf("--url %q: no zones", raw)
		}
		addrs = []netip.Addr{a}
	} else {
		rctx, cancel := context.WithTimeout(ctx, selftestResolveTimeout)
		defer cancel()
		addrs, err = net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		if err != nil {
			return nil, false, fmt.Errorf("--url: resolving %s: %w", host, err)
		}
	}
	pinned := map[netip.Addr]bool{}
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			return nil, false, fmt.Errorf("--url %q: %s resolves to %s, which is not a host", raw, host, a)
		}
		pinned[a] = true
	}
	if len(pinned) == 0 {
		return nil, false, fmt.Errorf("--url: %s has no address", host)
	}
	return func(a netip.Addr) bool { return pinned[a] }, false, nil
}

func (cfg *selftestConfig) plan(ctx context.Context) (*selftestPlan, error) {
	switch {
	case len(cfg.Secret) < 32:
		return nil, fmt.Errorf("the token secret must be at least 32 bytes")
	case cfg.Timeout <= 0 || cfg.Timeout > selftestMaxTimeout:
		return nil, fmt.Errorf("--timeout must be between 0 and %s", selftestMaxTimeout)
	case cfg.ConnectTimeout <= 0 || cfg.ConnectTimeout > selftestMaxConnectTimeout:
		return nil, fmt.Errorf("--connect-timeout must be between 0 and %s", selftestMaxConnectTimeout)
	case cfg.ConnectRateLimit < 1 || cfg.ConnectRateLimit > selftestMaxConnectRate:
		return nil, fmt.Errorf("--connect-rate-limit must be between 1 and %d", selftestMaxConnectRate)
	case cfg.Channel == "" || len(cfg.Channel) > 128:
		return nil, errors.New("--channel must be a channel name")
	case strings.ContainsAny(cfg.Origin, "\r\n"):
		return nil, errors.New("--origin: invalid")
	}
	allowed, ipv4Loopback, err := checkSelftestURL(ctx, cfg.URL, cfg.AllowHost)
	if err != nil {
		return nil, err
	}
	p := &selftestPlan{url: cfg.URL, allowed: allowed, spread: cfg.Spread && ipv4Loopback, origin: cfg.Origin}
	if p.spread {
		// A random /24 inside 127.0.0.0/8, away from 127.0.0.x: a run a
		// few seconds after another does not find its addresses' per-IP
		// budgets already used.
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		p.base = [2]byte{1 + b[0]%254, b[1]}
	}
	return p, nil
}

// newSelftestTransport dials from src (nil: the default address) and
// only to the addresses allowed accepts, whatever a name resolves to.
func newSelftestTransport(src net.Addr, allowed func(netip.Addr) bool) *http.Transport {
	d := &net.Dialer{
		Timeout:   selftestDialTimeout,
		LocalAddr: src,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !allowed(ap.Addr().Unmap().WithZone("")) {
				return fmt.Errorf("refusing to connect to %s: not the target", address)
			}
			return nil
		},
	}
	return &http.Transport{
		Proxy:                  nil, // never through a proxy from the environment
		DialContext:            d.DialContext,
		DisableKeepAlives:      true,
		TLSHandshakeTimeout:    selftestDialTimeout,
		ResponseHeaderTimeout:  selftestDialTimeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// selftestResult is the outcome of one case.
type selftestResult struct {
	status    string // "PASS", "FAIL" or "SKIP"
	want, got string // FAIL
	reason    string // SKIP
}

func stPass() selftestResult { return selftestResult{status: "PASS"} }
func stFail(want, got string) selftestResult {
	return selftestResult{status: "FAIL", want: want, got: got}
}

type selftestCase struct {
	name string
	run  func(ctx context.Context, r *selftestRun, src int) selftestResult
}

// selftestRun is one run of `livegate selftest`.
type selftestRun struct {
	cfg        selftestConfig
	plan       *selftestPlan
	clients    map[int]*http.Client
	transports []*http.Transport
	prefix     string // of the users, unique per run
}

// runSelftest runs every case against cfg.URL, prints one line per case
// and the summary to out, and returns the exit status: 1 if any case
// failed. An invalid cfg is an error before anything is dialed.
func runSelftest(ctx context.Context, cfg selftestConfig, out io.Writer) (int, error) {
	plan, err := cfg.plan(ctx)
	if err != nil {
		return 1, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := &selftestRun{cfg: cfg, plan: plan, clients: map[int]*http.Client{}, prefix: "selftest-" + randHex(4)}
	defer func() {
		for _, tr := range r.transports {
			tr.CloseIdleConnections()
		}
	}()
	from := "one source address"
	if plan.spread {
		from = fmt.Sprintf("127.%d.%d.2 and up", plan.base[0], plan.base[1])
	}
	fmt.Fprintf(out, "livegate selftest: %s from %s\n", cfg.URL, from)

	var passed, failed, skipped int
	for i, c := range selftestCases() {
		var res selftestResult
		switch {
		case c.name == "connect_rate" && cfg.SkipConnectRate:
			res = selftestResult{status: "SKIP", reason: "--skip-connect-rate"}
		case ctx.Err() != nil:
			res = stFail("the case to run", "the run stopped ("+context.Cause(ctx).Error()+"; see --timeout)")
		default:
			cctx, ccancel := context.WithTimeout(ctx, cfg.ConnectTimeout+selftestCaseTimeout)
			res = c.run(cctx, r, i)
			ccancel()
		}
		switch res.status {
		case "PASS":
			passed++
			fmt.Fprintf(out, "PASS %s\n", c.name)
		case "SKIP":
			skipped++
			fmt.Fprintf(out, "SKIP %s: %s\n", c.name, res.reason)
		default:
			failed++
			fmt.Fprintf(out, "FAIL %s: expected %s, got %s\n", c.name, res.want, res.got)
		}
		if i == 0 && res.status != "PASS" {
			// Without a working valid token every refusal below would
			// pass for the wrong reason.
			fmt.Fprintf(out, "stopping: a valid token does not connect, so the other cases would prove nothing (check %s, %s, --url and --origin; after HTTP 429, wait for Retry-After)\n", envSecret, envAudience)
			break
		}
	}
	summary := fmt.Sprintf("%d passed, %d failed", passed, failed)
	if skipped > 0 {
		summary += fmt.Sprintf(", %d skipped", skipped)
	}
	fmt.Fprintln(out, summary)
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

// selftestCases returns the cases in the order they run. The first is the
// control; connect_rate must stay last: it uses up its source address's
// upgrade budget, and when all cases share one address it also waits out
// the cooldown the flood case starts.
func selftestCases() []selftestCase {
	return []selftestCase{
		{"valid_token_connects", caseValidToken},
		{"origin_foreign_refused", caseForeignOrigin},
		{"token_alg_none", tokenCase(func(t *stTokens) string { return t.sign("none", nil, t.claims(t.user, "connect")) })},
		{"token_forged_signature", tokenCase(func(t *stTokens) string {
			return t.sign("HS256", []byte(randHex(32)), t.claims(t.user, "connect"))
		})},
		{"token_expired", tokenCase(func(t *stTokens) string {
			c := t.claims(t.user, "connect")
			now := time.Now().Unix()
			c["iat"], c["exp"] = now-600, now-300
			return t.sign("HS256", t.secret, c)
		})},
		{"token_hs512", tokenCase(func(t *stTokens) string { return t.sign("HS512", t.secret, t.claims(t.user, "connect")) })},
		{"token_wrong_audience", tokenCase(func(t *stTokens) string {
			c := t.claims(t.user, "connect")
			c["aud"] = t.aud + "-selftest-other"
			return t.sign("HS256", t.secret, c)
		})},
		{"token_kind_subscribe", tokenCase(func(t *stTokens) string {
			c := t.claims(t.user, "subscribe")
			c["channels"] = []string{"room:selftest"}
			return t.sign("HS256", t.secret, c)
		})},
		{"token_replayed", caseReplay},
		{"token_in_url_ignored", caseTokenInURL},
		{"frame_oversize", caseOversize},
		{"frame_malformed_json", caseMalformed},
		{"event_names_guarded", caseGuardedNames},
		{"subscribe_cross_user_token", caseCrossUser},
		{"command_flood", caseFlood},
		{"connect_rate", caseConnectRate},
	}
}

// client returns the HTTP client of case src's source address.
func (r *selftestRun) client(src int) *http.Client {
	if c, ok := r.clients[src]; ok {
		return c
	}
	var addr net.Addr
	if r.plan.spread {
		addr = &net.TCPAddr{IP: net.IPv4(127, r.plan.base[0], r.plan.base[1], byte(2+src))} // #nosec G115 -- src indexes the fixed list of selftestCases, far fewer than 254
	}
	tr := newSelftestTransport(addr, r.plan.allowed)
	r.transports = append(r.transports, tr)
	c := &http.Client{
		Transport: tr,
		// A redirect could lead anywhere: take the 3xx as the answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r.clients[src] = c
	return c
}

// tokens returns a token minter for case src's user.
func (r *selftestRun) tokens(src int) *stTokens {
	return &stTokens{secret: r.cfg.Secret, aud: r.cfg.Audience, user: fmt.Sprintf("%s-%d", r.prefix, src)}
}

// dial opens a WebSocket to rawURL from case src's source address with
// origin (none when ""). A refused upgrade returns its response and an
// error.
func (r *selftestRun) dial(ctx context.Context, src int, rawURL, origin string) (*stConn, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	dctx, cancel := context.WithTimeout(ctx, selftestDialTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, rawURL, &websocket.DialOptions{
		HTTPClient:   r.client(src),
		HTTPHeader:   h,
		Subprotocols: []string{protocol.Subprotocol},
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusSwitchingProtocols {
			resp = nil // a broken handshake, not a refusal
		}
		return nil, resp, err
	}
	if ws.Subprotocol() != protocol.Subprotocol {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("the server did not select %s", protocol.Subprotocol)
	}
	ws.SetReadLimit(selftestReadLimit)
	return &stConn{ws: ws, id: 1}, resp, nil
}

// open dials with the configured origin and connects with token. On
// failure it returns what happened instead.
func (r *selftestRun) open(ctx context.Context, src int, token string) (*stConn, string) {
	c, resp, err := r.dial(ctx, src, r.plan.url, r.plan.origin)
	if err != nil {
		return nil, describeDial(resp, err)
	}
	o := c.call(ctx, protocol.MethodConnect, protocol.ConnectParams{Token: token})
	if !o.ok() {
		c.ws.CloseNow()
		return nil, o.String()
	}
	return c, ""
}

func describeDial(resp *http.Response, err error) string {
	if resp != nil {
		s := fmt.Sprintf("HTTP %d", resp.StatusCode)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			s += " (Retry-After " + truncate(ra, 20) + ")"
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			s += " to " + strconv.Quote(truncate(loc, 100)) + " (redirects are not followed)"
		}
		return s
	}
	return "no upgrade: " + truncate(err.Error(), 200)
}

// stConn is one test connection.
type stConn struct {
	ws *websocket.Conn
	id uint64 // of the next command
}

// stOutcome is what the server answered to one command, or did instead.
type stOutcome struct {
	frame   []byte
	f       protocol.ServerFrame
	close   int // close code; -1 when the connection ended without one
	err     error
	timeout time.Duration // no answer within it
}

func (o stOutcome) ok() bool { return o.frame != nil && o.f.Error == nil }

func (o stOutcome) errCode() string {
	if o.frame != nil && o.f.Error != nil {
		return o.f.Error.Code
	}
	return ""
}

func (o stOutcome) String() string {
	switch {
	case o.frame != nil:
		return "reply " + truncate(string(o.frame), 200)
	case o.timeout > 0:
		return fmt.Sprintf("no answer within %s", o.timeout)
	case o.close >= 0:
		return describeClose(o.close)
	default:
		return "connection lost without a close frame (" + truncate(o.err.Error(), 120) + ")"
	}
}

func describeClose(code int) string {
	if s := protocol.CloseCode(code).String(); s != "closed" {
		return fmt.Sprintf("close %d (%s)", code, s)
	}
	return fmt.Sprintf("close %d", code)
}

func (c *stConn) write(ctx context.Context, frame []byte) error {
	wctx, cancel := context.WithTimeout(ctx, selftestReplyTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, frame)
}

// send writes a command and returns its id.
func (c *stConn) send(ctx context.Context, method string, params any) (uint64, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return 0, err
	}
	id := c.id
	c.id++
	frame, err := json.Marshal(protocol.Command{ID: id, Method: method, Params: raw})
	if err != nil {
		return 0, err
	}
	return id, c.write(ctx, frame)
}

// await reads until the reply to id, a close or d. Pushes are skipped.
// Reading past d closes the connection.
func (c *stConn) await(ctx context.Context, id uint64, d time.Duration) stOutcome {
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		_, data, err := c.ws.Read(rctx)
		if err != nil {
			if rctx.Err() != nil && ctx.Err() == nil {
				return stOutcome{timeout: d, close: -1}
			}
			return stOutcome{close: int(websocket.CloseStatus(err)), err: err}
		}
		var f protocol.ServerFrame
		if json.Unmarshal(data, &f) != nil || f.ID != id {
			continue
		}
		return stOutcome{frame: data, f: f, close: -1}
	}
}

// call sends a command and waits for its reply.
func (c *stConn) call(ctx context.Context, method string, params any) stOutcome {
	id, err := c.send(ctx, method, params)
	if err != nil {
		// The server may have closed first: report its close code.
		return c.await(ctx, 0, selftestReplyTimeout)
	}
	return c.await(ctx, id, selftestReplyTimeout)
}

// awaitClose waits up to d for the server to end the connection, and
// describes anything else it sends.
func (c *stConn) awaitClose(ctx context.Context, d time.Duration) (code int, got string) {
	o := c.await(ctx, 0, d) // no reply has id 0
	if o.frame != nil {
		return -1, o.String()
	}
	return o.close, o.String()
}

// closeNormally ends a connection the case is done with.
func (c *stConn) closeNormally() {
	_ = c.ws.Close(websocket.StatusNormalClosure, "selftest")
}

func caseValidToken(ctx context.Context, r *selftestRun, src int) selftestResult {
	t := r.tokens(src)
	c, got := r.open(ctx, src, t.valid())
	if c == nil {
		return stFail("a connect result for a valid token", got)
	}
	c.closeNormally()
	return stPass()
}

func caseForeignOrigin(ctx context.Context, r *selftestRun, src int) selftestResult {
	for _, o := range []string{selftestForeignOrigin, "null"} {
		c, resp, err := r.dial(ctx, src, r.plan.url, o)
		if c != nil {
			c.ws.CloseNow()
			return stFail("HTTP 403 for Origin "+o, "HTTP 101 (upgraded)")
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			return stFail("HTTP 403 for Origin "+o, describeDial(resp, err))
		}
	}
	return stPass()
}

// tokenCase connects with a bad token and expects 4401.
func tokenCase(mint func(*stTokens) string) func(context.Context, *selftestRun, int) selftestResult {
	return func(ctx context.Context, r *selftestRun, src int) selftestResult {
		return expectConnectRefused(ctx, r, src, mint(r.tokens(src)))
	}
}

func expectConnectRefused(ctx context.Context, r *selftestRun, src int, token string) selftestResult {
	const want = "close 4401 (unauthorized)"
	c, resp, err := r.dial(ctx, src, r.plan.url, r.plan.origin)
	if err != nil {
		return stFail(want, describeDial(resp, err))
	}
	defer c.ws.CloseNow()
	o := c.call(ctx, protocol.MethodConnect, protocol.ConnectParams{Token: token})
	if o.frame == nil && o.close == int(protocol.CloseUnauthorized) {
		return stPass()
	}
	if o.ok() {
		return stFail(want, "a connect result: the token was accepted")
	}
	return stFail(want, o.String())
}

func caseReplay(ctx context.Context, r *selftestRun, src int) selftestResult {
	tok := r.tokens(src).valid()
	c, got := r.open(ctx, src, tok)
	if c == nil {
		return stFail("the first connect with the token accepted", got)
	}
	c.closeNormally()
	res := expectConnectRefused(ctx, r, src, tok)
	if res.status != "PASS" {
		res.want = "the second connect with the same token refused with " + res.want
	}
	return res
}

func caseTokenInURL(ctx context.Context, r *selftestRun, src int) selftestResult {
	wait := r.cfg.ConnectTimeout + selftestURLGrace
	want := fmt.Sprintf("close 4408 (connect timeout) within %s: the URL token ignored", wait)
	u, err := url.Parse(r.plan.url)
	if err != nil {
		return stFail(want, err.Error())
	}
	q := u.Query()
	q.Set("token", r.tokens(src).valid())
	u.RawQuery = q.Encode()
	c, resp, err := r.dial(ctx, src, u.String(), r.plan.origin)
	if err != nil {
		return stFail(want, describeDial(resp, err))
	}
	defer c.ws.CloseNow()
	// No connect frame: the token in the URL is all the server has.
	code, got := c.awaitClose(ctx, wait)
	if code == int(protocol.CloseConnectTimeout) {
		return stPass()
	}
	return stFail(want, got)
}

func caseOversize(ctx context.Context, r *selftestRun, src int) selftestResult {
	const want = "close 1009 (message too big)"
	c, resp, err := r.dial(ctx, src, r.plan.url, r.plan.origin)
	if err != nil {
		return stFail(want, describeDial(resp, err))
	}
	defer c.ws.CloseNow()
	// A well-formed connect frame, one byte over the limit.
	head, tail := `{"id":1,"method":"connect","params":{"token":"`, `"}}`
	frame := make([]byte, 0, selftestInboundLimit+1)
	frame = append(frame, head...)
	frame = append(frame, bytes.Repeat([]byte("A"), selftestInboundLimit+1-len(head)-len(tail))...)
	frame = append(frame, tail...)
	_ = c.write(ctx, frame) // the server may close before it has read it all
	code, got := c.awaitClose(ctx, selftestReplyTimeout)
	if code == int(protocol.CloseTooBig) {
		return stPass()
	}
	return stFail(want, got)
}

func caseMalformed(ctx context.Context, r *selftestRun, src int) selftestResult {
	const want = "close 4400 (malformed frame)"
	c, got := r.open(ctx, src, r.tokens(src).valid())
	if c == nil {
		return stFail(want+" after a valid connect", "connect: "+got)
	}
	defer c.ws.CloseNow()
	if err := c.write(ctx, []byte(`{"id":2,"method":"event","params":{"name":"say","payload":{`)); err != nil {
		return stFail(want, "write: "+err.Error())
	}
	code, got := c.awaitClose(ctx, selftestReplyTimeout)
	if code == int(protocol.CloseMalformed) {
		return stPass()
	}
	return stFail(want, got)
}

func caseGuardedNames(ctx context.Context, r *selftestRun, src int) selftestResult {
	c, got := r.open(ctx, src, r.tokens(src).valid())
	if c == nil {
		return stFail("a connect result", got)
	}
	defer c.ws.CloseNow()
	event := func(name string) (uint64, stOutcome) {
		id := c.id
		return id, c.call(ctx, protocol.MethodEvent, protocol.EventParams{Name: name, Payload: json.RawMessage(`{}`)})
	}
	baseID, base := event(selftestUnknownEvent)
	if base.errCode() == "" {
		return stFail("an error reply to the unknown event "+selftestUnknownEvent, base.String())
	}
	for _, name := range selftestGuardedNames {
		id, o := event(name)
		want := "for " + strconv.Quote(name) + " the same bytes as for an unknown name: " + string(withID(base.frame, baseID, id))
		if o.frame == nil {
			return stFail(want, o.String())
		}
		if !bytes.Equal(o.frame, withID(base.frame, baseID, id)) {
			return stFail(want, truncate(string(o.frame), 200))
		}
	}
	c.closeNormally()
	return stPass()
}

// withID returns frame, the reply to command from, as the reply to
// command to.
func withID(frame []byte, from, to uint64) []byte {
	old := []byte(`"id":` + strconv.FormatUint(from, 10) + `,`)
	return bytes.Replace(frame, old, []byte(`"id":`+strconv.FormatUint(to, 10)+`,`), 1)
}

func caseCrossUser(ctx context.Context, r *selftestRun, src int) selftestResult {
	const want = "forbidden for a subscription token of another user"
	t := r.tokens(src)
	c, got := r.open(ctx, src, t.valid())
	if c == nil {
		return stFail(want, "connect: "+got)
	}
	defer c.ws.CloseNow()
	ch := r.cfg.Channel
	other := t.subscription(t.user+"-other", ch)
	o := c.call(ctx, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: ch, Token: other})
	if o.errCode() != protocol.CodeForbidden {
		if o.ok() {
			return stFail(want, "a subscribe result: subscribed to "+ch)
		}
		return stFail(want, o.String())
	}
	// Control: the user's own token is accepted, so the refusal above was
	// about the user and not about the channel.
	o = c.call(ctx, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: ch, Token: t.subscription(t.user, ch)})
	if !o.ok() {
		return stFail(want+", and a result for the user's own token on "+ch+" (see --channel)", "for the own token "+o.String())
	}
	c.closeNormally()
	return stPass()
}

func caseFlood(ctx context.Context, r *selftestRun, src int) selftestResult {
	const want = "rate_limited replies, then close 4429 (rate limited)"
	c, got := r.open(ctx, src, r.tokens(src).valid())
	if c == nil {
		return stFail(want, "connect: "+got)
	}
	defer c.ws.CloseNow()
	type tally struct {
		limited, other int
		close          int
		err            error
	}
	done := make(chan tally, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := tally{close: -1}
		for {
			_, data, err := c.ws.Read(rctx)
			if err != nil {
				t.close, t.err = int(websocket.CloseStatus(err)), err
				done <- t
				return
			}
			var f protocol.ServerFrame
			if json.Unmarshal(data, &f) != nil || f.ID == 0 {
				continue
			}
			if f.Error != nil && f.Error.Code == protocol.CodeRateLimited {
				t.limited++
			} else {
				t.other++
			}
		}
	}()
	params, _ := json.Marshal(protocol.UnsubscribeParams{Channel: selftestNotSubscribed})
	sent := 0
	var t tally
	finished := false
send:
	for sent < selftestFloodMax {
		select {
		case t = <-done:
			finished = true
			break send
		default:
		}
		frame, _ := json.Marshal(protocol.Command{ID: c.id, Method: protocol.MethodUnsubscribe, Params: params})
		c.id++
		if c.write(ctx, frame) != nil {
			break
		}
		sent++
	}
	if !finished {
		select {
		case t = <-done:
		case <-time.After(selftestFloodSettle):
			cancel()
			t = <-done
			t.close = -2 // still open
		case <-ctx.Done():
			cancel()
			t = <-done
			t.close = -2
		}
	}
	if t.limited > 0 && t.close == int(protocol.CloseRateLimited) {
		return stPass()
	}
	end := "the connection still open"
	switch {
	case t.close >= 0:
		end = describeClose(t.close)
	case t.close == -1:
		end = "the connection lost without a close frame"
	}
	return stFail(want, fmt.Sprintf("%d commands: %d rate_limited and %d other replies, then %s", sent, t.limited, t.other, end))
}

func caseConnectRate(ctx context.Context, r *selftestRun, src int) selftestResult {
	n := r.cfg.ConnectRateLimit + 1
	want := fmt.Sprintf("HTTP 429 by upgrade %d from one address", n)
	accepted, waited := 0, false
	for i := 0; i < n; {
		c, resp, err := r.dial(ctx, src, r.plan.url, r.plan.origin)
		if c != nil {
			c.ws.CloseNow()
			accepted++
			i++
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			return stFail(want, fmt.Sprintf("%s at upgrade %d", describeDial(resp, err), i+1))
		}
		// The flood case's 4429 cools the address down for a few
		// seconds when every case shares it: that 429 carries no
		// RateLimit-Limit. Wait it out once, then count again.
		if accepted == 0 && !waited && resp.Header.Get("RateLimit-Limit") == "" {
			waited = true
			d := retryAfter(resp)
			if d > selftestMaxCooldownWait {
				return stFail(want, fmt.Sprintf("a cooldown of %s before the first upgrade", d))
			}
			select {
			case <-time.After(d + 100*time.Millisecond):
				continue
			case <-ctx.Done():
				return stFail(want, "the case stopped while waiting for a cooldown")
			}
		}
		return stPass()
	}
	return stFail(want, fmt.Sprintf("all %d upgrades accepted", accepted))
}

// retryAfter returns a response's Retry-After, at least one second.
func retryAfter(resp *http.Response) time.Duration {
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s < 1 {
		s = 1
	}
	return time.Duration(min(s, 3600)) * time.Second
}

// stTokens mints the tokens of one case's user, good and bad, signing
// them itself so that it can also make the bad ones.
type stTokens struct {
	secret []byte
	aud    string
	user   string
}

func (t *stTokens) claims(user, kind string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"sub": user, "aud": t.aud, "kind": kind,
		"iat": now - 1, "exp": now + int64(selftestTokenTTL/time.Second),
		"jti": randHex(16),
	}
}

// valid returns a fresh single-use connect token.
func (t *stTokens) valid() string { return t.sign("HS256", t.secret, t.claims(t.user, "connect")) }

// subscription returns a subscription token for user on channel.
func (t *stTokens) subscription(user, channel string) string {
	c := t.claims(user, "subscribe")
	c["channels"] = []string{channel}
	return t.sign("HS256", t.secret, c)
}

// sign returns a compact JWT: HS256 or HS512 under key, or alg "none"
// with an empty signature.
func (t *stTokens) sign(alg string, key []byte, claims map[string]any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS512":
		h = sha512.New
	default:
		return input + "."
	}
	m := hmac.New(h, key)
	m.Write([]byte(input))
	return input + "." + enc.EncodeToString(m.Sum(nil))
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
