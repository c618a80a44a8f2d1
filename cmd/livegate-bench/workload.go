package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegate/livegate/internal/loadgen"
)

// Bounds of every run: the tool is for this machine only, and everything
// it does is capped.
const (
	maxConns      = 20000
	maxDuration   = 5 * time.Minute
	maxRate       = 100000 // publishes a second
	maxSize       = 60 << 10
	minSize       = 64
	maxMessages   = 1000000
	maxPublishers = 64
	maxChannels   = maxConns
	// connsPerSource connections share one source address (127.0.x.y).
	connsPerSource = 500
	dialParallel   = 64
	dialTimeout    = 10 * time.Second
	writeTimeout   = 10 * time.Second
	readLimit      = 1 << 20
	tokenTTL       = 30 * time.Minute
	fileShare      = 0.95
	// stallTimeout ends the wait for deliveries that stopped coming.
	stallTimeout = 3 * time.Second
	// settle is the pause before the memory of idle connections is read.
	settle    = 3 * time.Second
	echoEvent = "echo"
)

// Workloads.
const (
	wIdle     = "idle"
	wFanout   = "fanout"
	wChannels = "channels"
	wEvents   = "events"
)

// runConfig is one `livegate-bench run`.
type runConfig struct {
	Driver     string
	URL        string // WebSocket URL
	PublishURL string
	APIKey     string
	Secret     []byte
	Audience   string

	Workload   string
	Conns      int
	Channels   int // idle: distinct channels (default one each)
	Publishers int
	Sizes      []int
	Messages   int
	// MaxMessages is the number of publications of a max-rate fanout
	// phase; 0: Messages.
	MaxMessages int
	Rate        float64 // fixed publish rate; fanout also runs at max rate
	Duration    time.Duration
	Hold        time.Duration // idle: keep the connections open this long after measuring
	Spread      bool
	// NoBatch keeps the livegate driver from asking for batched messages.
	NoBatch bool

	ServerPID      int
	MetricsURL     string
	MetricsKey     string
	PprofURL       string
	ProfileDir     string
	ProfileSeconds int

	Label string // free text recorded with the results (e.g. "history=on")
	// Settle is the pause before the memory of idle connections is read;
	// zero: settle.
	Settle time.Duration
}

// result is one measured variant of a workload, one JSON line of --out.
type result struct {
	Driver   string             `json:"driver"`
	Workload string             `json:"workload"`
	Variant  string             `json:"variant,omitempty"`
	Label    string             `json:"label,omitempty"`
	Params   map[string]any     `json:"params"`
	Metrics  map[string]float64 `json:"metrics"`
	Errors   map[string]int     `json:"errors,omitempty"`
	Start    time.Time          `json:"start"`
}

func (cfg *runConfig) validate() error {
	target, err := loadgen.CheckLoopbackURL(cfg.URL, "ws")
	if err != nil {
		return fmt.Errorf("--url %w", err)
	}
	_ = target
	for _, u := range []struct{ flag, url string }{{"--publish-url", cfg.PublishURL}, {"--metrics-url", cfg.MetricsURL}, {"--pprof-url", cfg.PprofURL}} {
		if u.url == "" {
			continue
		}
		if _, err := loadgen.CheckLoopbackURL(u.url, "http"); err != nil {
			return fmt.Errorf("%s %w", u.flag, err)
		}
	}
	switch {
	case cfg.Driver != "livegate" && cfg.Driver != "centrifugo":
		return errors.New("--driver must be livegate or centrifugo")
	case cfg.Workload != wIdle && cfg.Workload != wFanout && cfg.Workload != wChannels && cfg.Workload != wEvents:
		return fmt.Errorf("--workload must be %s, %s, %s or %s", wIdle, wFanout, wChannels, wEvents)
	case cfg.Conns < 1 || cfg.Conns > maxConns:
		return fmt.Errorf("--conns must be between 1 and %d", maxConns)
	case cfg.Channels < 0 || cfg.Channels > maxChannels:
		return fmt.Errorf("--channels must be between 0 and %d", maxChannels)
	case cfg.Publishers < 1 || cfg.Publishers > maxPublishers:
		return fmt.Errorf("--publishers must be between 1 and %d", maxPublishers)
	case cfg.Messages < 1 || cfg.Messages > maxMessages:
		return fmt.Errorf("--messages must be between 1 and %d", maxMessages)
	case cfg.MaxMessages < 0 || cfg.MaxMessages > maxMessages:
		return fmt.Errorf("--max-messages must be between 0 and %d", maxMessages)
	case math.IsNaN(cfg.Rate) || cfg.Rate < 0 || cfg.Rate > maxRate:
		return fmt.Errorf("--rate must be between 0 and %d", maxRate)
	case cfg.Duration <= 0 || cfg.Duration > maxDuration:
		return fmt.Errorf("--duration must be positive and at most %s", maxDuration)
	case cfg.Hold < 0 || cfg.Hold > maxDuration:
		return fmt.Errorf("--hold must be between 0 and %s", maxDuration)
	case len(cfg.Sizes) == 0:
		return errors.New("--sizes must not be empty")
	case cfg.ProfileSeconds < 0 || cfg.ProfileSeconds > 300:
		return errors.New("--profile-seconds must be between 0 and 300")
	case cfg.PublishURL == "" && cfg.Workload != wIdle && cfg.Workload != wEvents:
		return errors.New("--publish-url is required for " + cfg.Workload)
	case len(cfg.Secret) == 0:
		return errors.New("no token secret: set " + envSecret)
	}
	for _, s := range cfg.Sizes {
		if s < minSize || s > maxSize {
			return fmt.Errorf("--sizes: %d is not between %d and %d", s, minSize, maxSize)
		}
	}
	// The bench holds one socket per connection, plus a few.
	if err := loadgen.CheckOpenFiles(cfg.Conns+64, fileShare); err != nil {
		return fmt.Errorf("--conns: %w", err)
	}
	return nil
}

func (cfg *runConfig) driver() (driver, error) {
	if cfg.Driver == "centrifugo" {
		return &centrifugoDriver{secret: cfg.Secret, publishURL: cfg.PublishURL, apiKey: cfg.APIKey}, nil
	}
	d, err := newLivegateDriver(cfg.Secret, cfg.Audience, cfg.PublishURL, cfg.APIKey)
	if err != nil {
		return nil, err
	}
	d.batch = !cfg.NoBatch
	return d, nil
}

// bench is one run in progress.
type bench struct {
	cfg     *runConfig
	d       driver
	clients []*http.Client // per source address
	pub     *http.Client
	admin   *http.Client
	log     io.Writer
}

func newBench(cfg *runConfig, log io.Writer) (*bench, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d, err := cfg.driver()
	if err != nil {
		return nil, err
	}
	target, _ := loadgen.CheckLoopbackURL(cfg.URL, "ws")
	b := &bench{cfg: cfg, d: d, pub: newPublishClient(cfg.Publishers), admin: newPublishClient(2), log: log}
	for _, src := range loadgen.Sources(target, cfg.Conns, connsPerSource, cfg.Spread) {
		b.clients = append(b.clients, &http.Client{
			Transport:     loadgen.NewTransport(src, dialTimeout),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
	}
	return b, nil
}

// run runs the configured workload and returns its results.
func (b *bench) run(ctx context.Context) ([]result, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Duration+maxDuration) // a hard bound on everything
	defer cancel()
	switch b.cfg.Workload {
	case wIdle:
		return b.idle(ctx)
	case wFanout:
		return b.fanout(ctx)
	case wChannels:
		return b.channels(ctx)
	default:
		return b.events(ctx)
	}
}

func (b *bench) newResult(variant string, params map[string]any) result {
	return result{
		Driver: b.d.Name(), Workload: b.cfg.Workload, Variant: variant, Label: b.cfg.Label,
		Params: params, Metrics: map[string]float64{}, Errors: map[string]int{}, Start: time.Now().UTC(),
	}
}

// errCounter counts errors by a short description.
type errCounter struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errCounter) add(err error) {
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[msg]++
	e.mu.Unlock()
}

func (e *errCounter) into(dst map[string]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, v := range e.m {
		dst[k] += v
	}
}

// open dials n connections, dialParallel at a time, connects each as user
// "b<i>", subscribes it to channels(i) and returns the connections that
// got that far (nil entries for the others) and how long it took.
func (b *bench) open(ctx context.Context, n int, channels func(i int) []string, onPush func(i int) pushFunc, errs *errCounter) ([]*benchConn, time.Duration) {
	conns := make([]*benchConn, n)
	slots := make(chan struct{}, dialParallel)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			errs.add(ctx.Err())
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			var push pushFunc
			if onPush != nil {
				push = onPush(i)
			}
			c, err := dialConn(dctx, b.d, b.clients[i%len(b.clients)], b.cfg.URL, fmt.Sprintf("b%d", i), push)
			if err != nil {
				errs.add(err)
				return
			}
			for _, ch := range channels(i) {
				if err := c.Subscribe(dctx, ch); err != nil {
					errs.add(err)
					c.Close()
					return
				}
			}
			conns[i] = c
		})
	}
	wg.Wait()
	return conns, time.Since(start)
}

func closeAll(conns []*benchConn) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, 256)
	for _, c := range conns {
		if c == nil {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			c.Close()
		})
	}
	wg.Wait()
}

func countOpen(conns []*benchConn) int {
	n := 0
	for _, c := range conns {
		if c != nil {
			n++
		}
	}
	return n
}

// profile starts a CPU profile of the server when --pprof-url is set and
// returns a function that waits for it and then takes a heap profile.
func (b *bench) profile(ctx context.Context, name string, seconds int) func() {
	if b.cfg.PprofURL == "" || b.cfg.ProfileDir == "" || seconds <= 0 {
		return func() {}
	}
	base := filepath.Join(b.cfg.ProfileDir, name)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.fetchProfile(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), base+"-cpu.pprof"); err != nil {
			fmt.Fprintf(b.log, "cpu profile: %v\n", err)
		}
	})
	return func() {
		wg.Wait()
		if err := b.fetchProfile(ctx, "/debug/pprof/heap", base+"-heap.pprof"); err != nil {
			fmt.Fprintf(b.log, "heap profile: %v\n", err)
		}
	}
}

func (b *bench) fetchProfile(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(b.cfg.PprofURL, "/")+path, nil)
	if err != nil {
		return err
	}
	if b.cfg.MetricsKey != "" {
		req.Header.Set("Authorization", "Bearer "+b.cfg.MetricsKey)
	}
	hc := &http.Client{Transport: b.admin.Transport, Timeout: 6 * time.Minute}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 256<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *bench) profileName(variant string) string {
	n := b.d.Name() + "-" + b.cfg.Workload
	if variant != "" {
		n += "-" + variant
	}
	if b.cfg.Label != "" {
		n += "-" + strings.NewReplacer("=", "-", " ", "_", "/", "_").Replace(b.cfg.Label)
	}
	return n
}

// idle opens --conns connections, each subscribed to one channel, and
// measures the connect rate and the server's memory per connection.
func (b *bench) idle(ctx context.Context) ([]result, error) {
	cfg := b.cfg
	channels := cfg.Channels
	if channels == 0 {
		channels = cfg.Conns
	}
	r := b.newResult("", map[string]any{"conns": cfg.Conns, "channels": channels})
	runtimeSettle(ctx)
	before := probeMemory(ctx, b.admin, cfg)
	done := b.profile(ctx, b.profileName(""), cfg.ProfileSeconds)
	var errs errCounter
	conns, took := b.open(ctx, cfg.Conns, func(i int) []string {
		return []string{fmt.Sprintf("bench:idle.%d", i%channels)}
	}, nil, &errs)
	open := countOpen(conns)
	r.Metrics["connected"] = float64(open)
	r.Metrics["connect_seconds"] = took.Seconds()
	r.Metrics["connect_per_s"] = float64(open) / took.Seconds()
	sleepCtx(ctx, cmp.Or(cfg.Settle, settle))
	after := probeMemory(ctx, b.admin, cfg)
	if open > 0 && before.RSS >= 0 && after.RSS >= 0 {
		r.Metrics["rss_before_bytes"] = float64(before.RSS)
		r.Metrics["rss_after_bytes"] = float64(after.RSS)
		r.Metrics["rss_per_conn_bytes"] = float64(after.RSS-before.RSS) / float64(open)
	}
	if open > 0 && before.HeapStack >= 0 && after.HeapStack >= 0 {
		r.Metrics["heap_stack_per_conn_bytes"] = float64(after.HeapStack-before.HeapStack) / float64(open)
	}
	done()
	if cfg.Hold > 0 {
		sleepCtx(ctx, cfg.Hold)
		r.Metrics["still_open"] = float64(stillOpen(conns))
	}
	closeAll(conns)
	errs.into(r.Errors)
	return []result{r}, nil
}

func stillOpen(conns []*benchConn) int {
	n := 0
	for _, c := range conns {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
		default:
			n++
		}
	}
	return n
}

// runtimeSettle gives the server a moment after the previous workload's
// connections closed.
func runtimeSettle(ctx context.Context) { sleepCtx(ctx, 500*time.Millisecond) }

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// phase is the measuring state of one publish phase; pushes of a
// connection record into recs[i].
type phase struct {
	recs      []*recorder
	delivered atomic.Int64
	last      atomic.Int64 // unix nanos of the latest delivery
	// serverCPU is the CPU time the server (--server-pid) used from the
	// first publish until the deliveries were in; -1 when unknown.
	serverCPU time.Duration
	// loadCPU is the same for this process, the load generator.
	loadCPU time.Duration
	// framesPerWrite is the server's average frames per network write in
	// the phase (livegate's socket write counters); 0: unknown.
	framesPerWrite float64
}

func newPhase(n int) *phase {
	p := &phase{recs: make([]*recorder, n), serverCPU: -1, loadCPU: -1}
	for i := range p.recs {
		p.recs[i] = &recorder{}
	}
	return p
}

// pushRecorder returns the push callback of connection i, recording into
// whatever phase is current.
func pushRecorder(cur *atomic.Pointer[phase], i int) pushFunc {
	return func(frame []byte, at time.Time) {
		p := cur.Load()
		if p == nil {
			return
		}
		p.delivered.Add(1)
		n := at.UnixNano()
		for {
			old := p.last.Load()
			if n <= old || p.last.CompareAndSwap(old, n) {
				break
			}
		}
		if t, ok := stamp(frame); ok {
			p.recs[i].add(at.Sub(t))
		}
	}
}

// serverCPU returns the CPU time --server-pid has used so far.
func (b *bench) serverCPU() (time.Duration, error) {
	if b.cfg.ServerPID <= 0 {
		return 0, errors.New("no --server-pid")
	}
	return readCPU(b.cfg.ServerPID)
}

// socketWrites reads livegate's socket write counters (writes, frames)
// from --metrics-url; other servers have none.
func (b *bench) socketWrites(ctx context.Context) ([]float64, error) {
	if b.cfg.MetricsURL == "" || b.d.Name() != "livegate" {
		return nil, errors.New("no livegate metrics")
	}
	return scrapeValues(ctx, b.admin, b.cfg.MetricsURL, b.cfg.MetricsKey, "livegate_socket_writes_total", "livegate_socket_write_frames_total")
}

// publishPlan says where message seq goes and how many deliveries it makes.
type publishPlan func(seq int) (channel string, deliveries int)

// publishAll publishes msgs messages of size bytes, at rate a second
// (0: as fast as --publishers concurrent publishers go), and waits until
// every expected delivery arrived or deliveries stalled.
func (b *bench) publishAll(ctx context.Context, p *phase, plan publishPlan, msgs, size int, rate float64, errs *errCounter) (published int, expected int64, elapsed time.Duration) {
	jobs := make(chan int)
	var ok atomic.Int64
	var exp atomic.Int64
	var wg sync.WaitGroup
	for range b.cfg.Publishers {
		wg.Go(func() {
			for seq := range jobs {
				ch, n := plan(seq)
				if err := b.d.Publish(ctx, b.pub, ch, payload(size, uint64(seq), time.Now())); err != nil {
					errs.add(err)
					continue
				}
				ok.Add(1)
				exp.Add(int64(n))
			}
		})
	}
	cpu0, cpuErr := b.serverCPU()
	load0, loadErr := readCPU(os.Getpid())
	writes0, writesErr := b.socketWrites(ctx)
	start := time.Now()
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
	}
feed:
	for seq := range msgs {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				break feed
			}
		}
		select {
		case jobs <- seq:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	// Wait for the deliveries.
	want := exp.Load()
	lastCount, lastChange := p.delivered.Load(), time.Now()
	for p.delivered.Load() < want && ctx.Err() == nil {
		sleepCtx(ctx, 20*time.Millisecond)
		if n := p.delivered.Load(); n != lastCount {
			lastCount, lastChange = n, time.Now()
		} else if time.Since(lastChange) > stallTimeout {
			break
		}
	}
	if cpu1, err := b.serverCPU(); err == nil && cpuErr == nil {
		p.serverCPU = cpu1 - cpu0
	}
	if load1, err := readCPU(os.Getpid()); err == nil && loadErr == nil {
		p.loadCPU = load1 - load0
	}
	if writes1, err := b.socketWrites(ctx); err == nil && writesErr == nil && writes1[0] > writes0[0] {
		p.framesPerWrite = (writes1[1] - writes0[1]) / (writes1[0] - writes0[0])
	}
	end := time.Unix(0, p.last.Load())
	if end.Before(start) {
		end = time.Now()
	}
	return int(ok.Load()), want, end.Sub(start)
}

func (b *bench) phaseMetrics(r *result, p *phase, published int, expected int64, elapsed time.Duration) {
	got := p.delivered.Load()
	r.Metrics["published"] = float64(published)
	r.Metrics["expected_deliveries"] = float64(expected)
	r.Metrics["deliveries"] = float64(got)
	r.Metrics["seconds"] = elapsed.Seconds()
	if p.framesPerWrite > 0 {
		r.Metrics["frames_per_write"] = p.framesPerWrite
	}
	if expected > 0 {
		// Below 100: the server dropped deliveries (typically it closed
		// subscribers it judged too slow); deliveries/s then covers fewer.
		r.Metrics["delivered_pct"] = 100 * float64(got) / float64(expected)
	}
	if elapsed > 0 {
		r.Metrics["deliveries_per_s"] = float64(got) / elapsed.Seconds()
		r.Metrics["publishes_per_s"] = float64(published) / elapsed.Seconds()
	}
	if p.serverCPU >= 0 && got > 0 {
		// The server's CPU per delivery: what a delivery costs the server
		// whatever the load generator's pace.
		r.Metrics["server_cpu_seconds"] = p.serverCPU.Seconds()
		r.Metrics["server_cpu_us_per_delivery"] = float64(p.serverCPU.Microseconds()) / float64(got)
	}
	// Busy: CPU time over the phase's time, in cores (1 = one core all the
	// time; both sides run with GOMAXPROCS=1 in the comparison). The side
	// near 1 is the one that set the pace. CPU is read up to 20 ms after
	// the last delivery, so a figure can exceed the truth by that much.
	if elapsed > 0 {
		if p.serverCPU >= 0 {
			r.Metrics["server_busy"] = p.serverCPU.Seconds() / elapsed.Seconds()
		}
		if p.loadCPU >= 0 {
			r.Metrics["load_busy"] = p.loadCPU.Seconds() / elapsed.Seconds()
		}
	}
	for k, v := range latencySummary("latency_", p.recs...) {
		r.Metrics[k] = v
	}
}

// rateMode names a publishing pace in a variant: "100-per-s" for a fixed
// rate, "max-4pub" for as fast as 4 concurrent publishers go (how many
// publications arrive together, and so how large the batches a server can
// form, depends on that number).
func rateMode(rate float64, publishers int) string {
	if rate > 0 {
		return fmt.Sprintf("%g-per-s", rate)
	}
	return fmt.Sprintf("max-%dpub", publishers)
}

// fanout subscribes --conns connections to one channel and publishes
// --messages messages of each --sizes size at --rate, then at max rate.
func (b *bench) fanout(ctx context.Context) ([]result, error) {
	cfg := b.cfg
	var cur atomic.Pointer[phase]
	var errs errCounter
	const channel = "bench:fanout"
	conns, took := b.open(ctx, cfg.Conns, func(int) []string { return []string{channel} },
		func(i int) pushFunc { return pushRecorder(&cur, i) }, &errs)
	defer closeAll(conns)
	open := countOpen(conns)
	if open == 0 {
		return nil, fmt.Errorf("no connection subscribed (%v)", errs.m)
	}
	var out []result
	rates := []float64{cfg.Rate, 0}
	if cfg.Rate == 0 {
		rates = []float64{0}
	}
	for _, size := range cfg.Sizes {
		for _, rate := range rates {
			variant := fmt.Sprintf("%dB-%s", size, rateMode(rate, cfg.Publishers))
			msgs := cfg.Messages
			if rate == 0 && cfg.MaxMessages > 0 {
				msgs = cfg.MaxMessages
			}
			r := b.newResult(variant, map[string]any{"subscribers": open, "size": size, "rate": rate, "messages": msgs, "publishers": cfg.Publishers})
			r.Metrics["subscribe_seconds"] = took.Seconds()
			p := newPhase(cfg.Conns)
			cur.Store(p)
			seconds := cfg.ProfileSeconds
			if rate > 0 {
				seconds = min(seconds, max(1, int(float64(msgs)/rate)))
			}
			done := b.profile(ctx, b.profileName(variant), seconds)
			var perr errCounter
			published, expected, elapsed := b.publishAll(ctx, p, func(int) (string, int) { return channel, open }, msgs, size, rate, &perr)
			done()
			cur.Store(nil)
			b.phaseMetrics(&r, p, published, expected, elapsed)
			r.Metrics["still_open"] = float64(stillOpen(conns))
			perr.into(r.Errors)
			out = append(out, r)
		}
	}
	if len(out) > 0 {
		errs.into(out[0].Errors)
	}
	return out, nil
}

// channels subscribes each connection to its own channel and a shared
// one; one publish in ten goes to the shared channel, the others to the
// connections' own channels in turn.
func (b *bench) channels(ctx context.Context) ([]result, error) {
	cfg := b.cfg
	var cur atomic.Pointer[phase]
	var errs errCounter
	const shared = "bench:all"
	own := func(i int) string { return fmt.Sprintf("bench:u.%d", i) }
	conns, took := b.open(ctx, cfg.Conns, func(i int) []string { return []string{own(i), shared} },
		func(i int) pushFunc { return pushRecorder(&cur, i) }, &errs)
	defer closeAll(conns)
	open := countOpen(conns)
	if open == 0 {
		return nil, fmt.Errorf("no connection subscribed (%v)", errs.m)
	}
	size := cfg.Sizes[0]
	variant := fmt.Sprintf("%dB-%s", size, rateMode(cfg.Rate, cfg.Publishers))
	r := b.newResult(variant, map[string]any{"conns": open, "size": size, "rate": cfg.Rate, "messages": cfg.Messages, "publishers": cfg.Publishers, "shared_share": 0.1})
	r.Metrics["subscribe_seconds"] = took.Seconds()
	p := newPhase(cfg.Conns)
	cur.Store(p)
	done := b.profile(ctx, b.profileName(variant), cfg.ProfileSeconds)
	plan := func(seq int) (string, int) {
		if seq%10 == 0 {
			return shared, open
		}
		i := seq % cfg.Conns
		if conns[i] == nil {
			return own(i), 0
		}
		return own(i), 1
	}
	published, expected, elapsed := b.publishAll(ctx, p, plan, cfg.Messages, size, cfg.Rate, &errs)
	done()
	cur.Store(nil)
	b.phaseMetrics(&r, p, published, expected, elapsed)
	r.Metrics["still_open"] = float64(stillOpen(conns))
	errs.into(r.Errors)
	return []result{r}, nil
}

// events has --conns connections call the echo handler in a closed loop
// for --duration: round trips a second and their latency.
func (b *bench) events(ctx context.Context) ([]result, error) {
	cfg := b.cfg
	var errs errCounter
	conns, took := b.open(ctx, cfg.Conns, func(int) []string { return nil }, nil, &errs)
	defer closeAll(conns)
	open := countOpen(conns)
	if open == 0 {
		return nil, fmt.Errorf("no connection connected (%v)", errs.m)
	}
	size := cfg.Sizes[0]
	r := b.newResult(fmt.Sprintf("%dB", size), map[string]any{"conns": open, "size": size, "duration_s": cfg.Duration.Seconds()})
	r.Metrics["connect_seconds"] = took.Seconds()
	recs := make([]*recorder, len(conns))
	var calls, failed atomic.Int64
	done := b.profile(ctx, b.profileName(""), min(cfg.ProfileSeconds, max(1, int(cfg.Duration.Seconds()))))
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		recs[i] = &recorder{}
		if c == nil {
			continue
		}
		wg.Go(func() {
			for seq := uint64(0); runCtx.Err() == nil; seq++ {
				t := time.Now()
				err := c.Call(runCtx, payload(size, seq, t))
				if err != nil {
					if runCtx.Err() == nil {
						errs.add(err)
						failed.Add(1)
					}
					if errors.Is(err, errClosed) {
						return
					}
					continue
				}
				recs[i].add(time.Since(t))
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	done()
	r.Metrics["round_trips"] = float64(calls.Load())
	r.Metrics["failed"] = float64(failed.Load())
	r.Metrics["seconds"] = elapsed.Seconds()
	r.Metrics["round_trips_per_s"] = float64(calls.Load()) / elapsed.Seconds()
	for k, v := range latencySummary("latency_", recs...) {
		r.Metrics[k] = v
	}
	r.Metrics["still_open"] = float64(stillOpen(conns))
	errs.into(r.Errors)
	return []result{r}, nil
}

// loopbackListenAddr refuses listen addresses that are not loopback.
func loopbackListenAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return fmt.Errorf("%q: %w", addr, loadgen.ErrNotLoopback)
	}
	return nil
}
