package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/loadgen"
	"github.com/livegate/livegate/protocol"
)

// Bounds of `livegate load`. The tool is for exercising a gateway's abuse
// limits by hand and in tests, on this machine only: it refuses any target
// that is not a loopback address, and everything it does is capped.
const (
	loadMaxConns    = 5000
	loadMaxDuration = 5 * time.Minute
	loadMaxRate     = 1000    // commands per second per connection
	loadMinRate     = 0.01    // below it (but not 0) the interval would overflow
	loadMaxPayload  = 1 << 20 // bytes of --payload
	// loadConnsPerSource is how many connections share one source address
	// when they are spread over 127.0.0.2.., well below the ephemeral
	// port range of one (source, destination) pair.
	loadConnsPerSource = 500
	loadDialParallel   = 64              // handshakes in flight at once
	loadDialTimeout    = 5 * time.Second // one handshake
	// loadCloseGrace is how long after the deadline the close handshakes
	// may take; then the remaining sockets are dropped.
	loadCloseGrace = time.Second
	loadReadLimit  = 1 << 20
	// loadFileShare is the share of the open-files limit --conns may use.
	loadFileShare = 0.9
	// loadNotSubscribed is the channel the default flood command
	// unsubscribes from: never subscribed, so each one is a cheap
	// bad_request.
	loadNotSubscribed = "load:not-subscribed"
)

// Command ids: connect and subscribe come first, the flood after.
const (
	loadConnectID   = 1
	loadSubscribeID = 2
)

// loadConfig is what `livegate load` runs.
type loadConfig struct {
	URL        string
	Conns      int
	Rate       float64 // commands a second per connection; 0: only connect
	Duration   time.Duration
	Channel    string // subscribed by each connection; "" for none
	Event      string // flood with this event instead of unsubscribe
	Payload    string // JSON payload of Event
	UserPrefix string
	SameUser   bool
	Origin     string
	Spread     bool   // spread source addresses over 127.0.0.2.. (IPv4 targets)
	Secret     []byte // HS256 secret the connect tokens are signed with
	Audience   string
}

func loadCommand() *cobra.Command {
	var cfg loadConfig
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Open connections to a loopback gateway and flood it, to exercise its abuse limits",
		Long: `Load opens --conns WebSocket connections to a gateway on this machine, connects
each with a token signed with ` + envSecret + ` (user --user-prefix plus the
connection's index), subscribes each to --channel and sends --rate commands a
second on each until --duration is over. Then it prints what happened:
upgrades refused by HTTP status, connections closed by close code, replies by
error code, pushes, connect latency. Ctrl-C stops early and prints the same.

Only loopback targets are accepted (127.0.0.0/8, ::1, localhost). For an IPv4
target the connections come from 127.0.0.2 and up, ` + fmt.Sprint(loadConnsPerSource) + ` per source address
(--spread=false: all from the default address, to test per-IP limits).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := secretFromEnv()
			if err != nil {
				return err
			}
			cfg.Secret, cfg.Audience = secret, audience()
			_, err = runLoad(cmd.Context(), cfg, cmd.OutOrStdout())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/ws", "gateway WebSocket URL; the host must be a loopback IP or localhost")
	f.IntVar(&cfg.Conns, "conns", 10, fmt.Sprintf("connections to open (at most %d)", loadMaxConns))
	f.Float64Var(&cfg.Rate, "rate", 0, fmt.Sprintf("commands a second per connection (at most %d); 0 only connects", loadMaxRate))
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, fmt.Sprintf("how long to run (at most %s)", loadMaxDuration))
	f.StringVar(&cfg.Channel, "channel", "room:load", "channel each connection subscribes to (\"\" for none)")
	f.StringVar(&cfg.Event, "event", "", "flood with this client event (default: unsubscribe from a channel not subscribed)")
	f.StringVar(&cfg.Payload, "payload", "", "JSON payload of --event")
	f.StringVar(&cfg.UserPrefix, "user-prefix", "load", "user of each connection: prefix plus index")
	f.BoolVar(&cfg.SameUser, "same-user", false, "connect every connection as the user --user-prefix")
	f.StringVar(&cfg.Origin, "origin", "", "Origin header to send (default none)")
	f.BoolVar(&cfg.Spread, "spread", runtime.GOOS == "linux", "spread source addresses over 127.0.0.2.. for IPv4 loopback targets")
	return cmd
}

// loadPlan is a validated loadConfig.
type loadPlan struct {
	url     string
	sources []net.Addr // local addresses to dial from, round robin; nil entry: default
	header  http.Header
	flood   []byte // params of the flood command
	method  string // method of the flood command
	ttl     time.Duration
}

// checkLoopbackURL accepts ws:// and wss:// URLs whose host is a loopback
// IP literal or "localhost". It returns the literal address (invalid for
// localhost).
func checkLoopbackURL(raw string) (netip.Addr, error) {
	a, err := loadgen.CheckLoopbackURL(raw, "ws", "wss")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--url %w", err)
	}
	return a, nil
}

func (cfg *loadConfig) plan() (*loadPlan, error) {
	target, err := checkLoopbackURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Conns < 1 || cfg.Conns > loadMaxConns:
		return nil, fmt.Errorf("--conns must be between 1 and %d", loadMaxConns)
	case math.IsNaN(cfg.Rate) || cfg.Rate < 0 || cfg.Rate > loadMaxRate || (cfg.Rate > 0 && cfg.Rate < loadMinRate):
		return nil, fmt.Errorf("--rate must be 0 or between %g and %d", loadMinRate, loadMaxRate)
	case cfg.Duration <= 0 || cfg.Duration > loadMaxDuration:
		return nil, fmt.Errorf("--duration must be positive and at most %s", loadMaxDuration)
	case cfg.UserPrefix == "":
		return nil, errors.New("--user-prefix must not be empty")
	case cfg.Payload != "" && cfg.Event == "":
		return nil, errors.New("--payload needs --event")
	case len(cfg.Payload) > loadMaxPayload:
		return nil, fmt.Errorf("--payload is over %d bytes", loadMaxPayload)
	case cfg.Payload != "" && !json.Valid([]byte(cfg.Payload)):
		return nil, errors.New("--payload is not valid JSON")
	case strings.ContainsAny(cfg.Origin, "\r\n"):
		return nil, errors.New("--origin must be one line")
	}
	if err := checkOpenFiles(cfg.Conns); err != nil {
		return nil, err
	}
	if cfg.Secret == nil {
		return nil, fmt.Errorf("%s is not set", envSecret)
	}
	p := &loadPlan{url: cfg.URL, header: http.Header{}, ttl: cfg.Duration + time.Minute}
	if cfg.Origin != "" {
		p.header.Set("Origin", cfg.Origin)
	}
	if cfg.Event != "" {
		p.method = protocol.MethodEvent
		p.flood, err = json.Marshal(protocol.EventParams{Name: cfg.Event, Payload: json.RawMessage(cfg.Payload)})
	} else {
		p.method = protocol.MethodUnsubscribe
		p.flood, err = json.Marshal(protocol.UnsubscribeParams{Channel: loadNotSubscribed})
	}
	if err != nil {
		return nil, err
	}
	p.sources = loadgen.Sources(target, cfg.Conns, loadConnsPerSource, cfg.Spread)
	return p, nil
}

// loadSummary is what a load run observed.
type loadSummary struct {
	attempted   int            // handshakes started
	upgraded    int            // handshakes answered 101
	refused     map[int]int    // handshakes refused, by HTTP status
	dialErrors  int            // handshakes that failed without a response
	cutOff      int            // handshakes still running at the deadline
	firstError  string         // the first of those errors
	connected   int            // connects answered ok
	subscribed  int            // subscribes answered ok
	closed      map[int]int    // closed by the server before the deadline, by close code
	dropped     int            // lost without a close frame before the deadline
	sent        int            // commands sent, connect and subscribe included
	repliesOK   int            // replies without error
	replyErrors map[string]int // error replies by code
	pushes      int            // pushes received
	latencies   []time.Duration
	elapsed     time.Duration
	interrupted bool // ctx was cancelled (SIGINT)
	deadline    bool // the run lasted until the deadline
}

// loadStats collects a summary from all connections.
type loadStats struct {
	mu sync.Mutex
	s  loadSummary
}

func (st *loadStats) update(f func(s *loadSummary)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

// loadRun is one run of `livegate load`.
type loadRun struct {
	cfg     loadConfig
	plan    *loadPlan
	signer  *auth.Signer
	clients []*http.Client // one per source address
	slots   chan struct{}  // handshakes in flight
	runCtx  context.Context
	hardCtx context.Context
	stats   loadStats
}

// runLoad runs cfg until its duration is over, every connection has ended
// or ctx is done, prints the summary to out and returns it. An invalid cfg
// is an error before anything is dialed.
func runLoad(ctx context.Context, cfg loadConfig, out io.Writer) (*loadSummary, error) {
	plan, err := cfg.plan()
	if err != nil {
		return nil, err
	}
	signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: auth.AlgHS256, HMACSecret: cfg.Secret, Audience: cfg.Audience})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	runCtx, cancelRun := context.WithTimeout(ctx, cfg.Duration)
	defer cancelRun()
	// Reads go on for a moment after the deadline, for the close
	// handshakes; then every socket still open is dropped.
	hardCtx, cancelHard := context.WithDeadline(ctx, start.Add(cfg.Duration+loadCloseGrace))
	defer cancelHard()
	r := &loadRun{
		cfg: cfg, plan: plan, signer: signer,
		slots:  make(chan struct{}, loadDialParallel),
		runCtx: runCtx, hardCtx: hardCtx,
	}
	r.stats.s = loadSummary{refused: map[int]int{}, closed: map[int]int{}, replyErrors: map[string]int{}}
	for _, src := range plan.sources {
		tr := newLoadTransport(src)
		defer tr.CloseIdleConnections()
		r.clients = append(r.clients, &http.Client{
			Transport: tr,
			// A redirect could lead off this machine: take the 3xx as the answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
	}
	fmt.Fprintf(out, "livegate load: %d connections to %s from %s, %s, for %s\n",
		cfg.Conns, cfg.URL, describeSources(plan.sources), describeRate(cfg, plan), cfg.Duration)

	var wg sync.WaitGroup
	for i := range cfg.Conns {
		wg.Go(func() { r.conn(i) })
	}
	wg.Wait()

	r.stats.mu.Lock()
	s := r.stats.s
	r.stats.mu.Unlock()
	s.elapsed = time.Since(start)
	s.interrupted = errors.Is(runCtx.Err(), context.Canceled)
	s.deadline = errors.Is(runCtx.Err(), context.DeadlineExceeded)
	s.print(out)
	return &s, nil
}

// newLoadTransport dials from src (nil: the default address) and only
// ever to loopback addresses, whatever a name resolves to.
func newLoadTransport(src net.Addr) *http.Transport {
	return loadgen.NewTransport(src, loadDialTimeout)
}

func (r *loadRun) user(i int) string {
	if r.cfg.SameUser {
		return r.cfg.UserPrefix
	}
	return fmt.Sprintf("%s%d", r.cfg.UserPrefix, i)
}

// conn runs connection i: handshake, connect, subscribe, flood, close.
func (r *loadRun) conn(i int) {
	ctx := r.runCtx
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	ws, start, ok := r.dial(i)
	<-r.slots
	if !ok {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(loadReadLimit)

	var closing atomic.Bool // set when this side starts closing
	connected := make(chan bool, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		r.read(ws, &closing, connected)
	}()
	defer func() {
		closing.Store(true)
		select {
		case <-readerDone:
			return
		default:
		}
		// Bounded: the reader's context ends loadCloseGrace after the
		// deadline, which drops the socket and ends Close too.
		_ = ws.Close(websocket.StatusNormalClosure, "load done")
		<-readerDone
	}()

	var id uint64 = loadConnectID
	send := func(method string, params any) bool {
		raw, err := json.Marshal(params)
		if err != nil {
			return false
		}
		frame, err := json.Marshal(protocol.Command{ID: id, Method: method, Params: raw})
		if err != nil {
			return false
		}
		id++
		if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
			return false
		}
		r.stats.update(func(s *loadSummary) { s.sent++ })
		return true
	}
	tok, _, err := r.signer.Sign(auth.Identity{User: r.user(i)}, auth.KindConnect, r.plan.ttl)
	if err != nil || !send(protocol.MethodConnect, protocol.ConnectParams{Token: tok}) {
		return
	}
	select {
	case ok := <-connected:
		if !ok {
			return
		}
		d := time.Since(start)
		r.stats.update(func(s *loadSummary) { s.latencies = append(s.latencies, d) })
	case <-readerDone:
		return
	case <-ctx.Done():
		return
	}
	if r.cfg.Channel != "" && !send(protocol.MethodSubscribe, protocol.SubscribeParams{Channel: r.cfg.Channel}) {
		return
	}
	if r.cfg.Rate <= 0 {
		select {
		case <-readerDone:
		case <-ctx.Done():
		}
		return
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Rate))
	defer t.Stop()
	flood := json.RawMessage(r.plan.flood)
	for {
		select {
		case <-readerDone:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if !send(r.plan.method, flood) {
				return
			}
		}
	}
}

// dial performs connection i's handshake. It returns when it started, for
// the connect latency.
func (r *loadRun) dial(i int) (*websocket.Conn, time.Time, bool) {
	r.stats.update(func(s *loadSummary) { s.attempted++ })
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.runCtx, loadDialTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, r.plan.url, &websocket.DialOptions{
		HTTPClient:   r.clients[i%len(r.clients)],
		HTTPHeader:   r.plan.header,
		Subprotocols: []string{protocol.Subprotocol},
	})
	if err != nil {
		r.stats.update(func(s *loadSummary) {
			if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
				s.refused[resp.StatusCode]++
				return
			}
			if r.runCtx.Err() != nil {
				s.cutOff++
				return
			}
			s.dialErrors++
			if s.firstError == "" {
				s.firstError = err.Error()
			}
		})
		return nil, start, false
	}
	r.stats.update(func(s *loadSummary) { s.upgraded++ })
	return ws, start, true
}

// read counts what the server sends until the connection ends, and
// reports the connect reply on connected.
func (r *loadRun) read(ws *websocket.Conn, closing *atomic.Bool, connected chan<- bool) {
	defer func() {
		select {
		case connected <- false:
		default:
		}
	}()
	for {
		_, data, err := ws.Read(r.hardCtx)
		if err != nil {
			if closing.Load() || r.runCtx.Err() != nil {
				return // our own close, or the deadline
			}
			code := int(websocket.CloseStatus(err))
			r.stats.update(func(s *loadSummary) {
				if code >= 0 {
					s.closed[code]++
				} else {
					s.dropped++
				}
			})
			return
		}
		var f protocol.ServerFrame
		if err := json.Unmarshal(data, &f); err != nil {
			r.stats.update(func(s *loadSummary) { s.replyErrors["(malformed frame)"]++ })
			continue
		}
		r.stats.update(func(s *loadSummary) {
			switch {
			case f.Push != nil:
				s.pushes++
			case f.Error != nil:
				s.replyErrors[f.Error.Code]++
			default:
				s.repliesOK++
				if f.ID == loadConnectID {
					s.connected++
				} else if f.ID == loadSubscribeID && r.cfg.Channel != "" {
					s.subscribed++
				}
			}
		})
		if f.Push == nil && f.ID == loadConnectID {
			select {
			case connected <- f.Error == nil:
			default:
			}
		}
	}
}

func describeSources(sources []net.Addr) string { return loadgen.DescribeSources(sources) }

func describeRate(cfg loadConfig, p *loadPlan) string {
	if cfg.Rate <= 0 {
		return "connect only"
	}
	what := "unsubscribe " + loadNotSubscribed
	if p.method == protocol.MethodEvent {
		what = "event " + cfg.Event
	}
	return fmt.Sprintf("%g %s/s per connection", cfg.Rate, what)
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	return loadgen.Percentile(sorted, p)
}

func (s *loadSummary) print(w io.Writer) {
	ended := "deadline"
	switch {
	case s.interrupted:
		ended = "interrupted"
	case !s.deadline:
		ended = "every connection ended"
	}
	fmt.Fprintf(w, "--- summary (%s, %s)\n", ended, s.elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "connections: attempted %d, upgraded %d, refused %d%s, dial errors %d",
		s.attempted, s.upgraded, sum(s.refused), breakdown(s.refused, func(k int) string { return fmt.Sprintf("HTTP %d", k) }), s.dialErrors)
	if s.cutOff > 0 {
		fmt.Fprintf(w, ", cut off at the deadline %d", s.cutOff)
	}
	fmt.Fprintln(w)
	if s.firstError != "" {
		fmt.Fprintf(w, "  first dial error: %s\n", s.firstError)
	}
	fmt.Fprintf(w, "sessions:    connected %d, subscribed %d\n", s.connected, s.subscribed)
	fmt.Fprintf(w, "closed:      by server %d%s, dropped %d\n", sum(s.closed),
		breakdown(s.closed, func(k int) string { return fmt.Sprintf("%d %s", k, protocol.CloseCode(k)) }), s.dropped)
	fmt.Fprintf(w, "commands:    sent %d, replies ok %d, errors %d%s\n", s.sent, s.repliesOK, sum(s.replyErrors),
		breakdown(s.replyErrors, func(k string) string { return k }))
	fmt.Fprintf(w, "pushes:      %d\n", s.pushes)
	lat := slices.Sorted(slices.Values(s.latencies))
	if len(lat) == 0 {
		fmt.Fprintln(w, "connect latency: no connects")
		return
	}
	fmt.Fprintf(w, "connect latency (upgrade + connect reply): p50 %s, p99 %s, max %s\n",
		percentile(lat, 50).Round(time.Microsecond), percentile(lat, 99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}

func sum[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// breakdown formats m as " (name: n, ...)" in key order, or "" when empty.
func breakdown[K int | string](m map[K]int, name func(K) string) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", name(k), m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
