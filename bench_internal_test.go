package livegate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"golang.org/x/time/rate"
)

// In-process benchmarks of the event pipeline and the hub's fan-out. They
// use connections without a socket (newConn(nil, ...)) and drain their
// queues by hand, so they measure the gateway's own work, not the network.

var benchSecret = []byte("0123456789abcdef0123456789abcdef-bench")

// benchEventFrame is the client frame both event benchmarks process.
var benchEventFrame = []byte(`{"id":42,"method":"event","params":{"name":"echo","payload":{"text":"hello"}}}`)

// benchEventReply is the reply both must produce for benchEventFrame.
const benchEventReply = `{"id":42,"result":{"echo":"hello"}}`

type benchEchoPayload struct {
	Text string `json:"text"`
}

type benchEchoResult struct {
	Echo string `json:"echo"`
}

// benchEcho is the handler of both the pipeline and the bare baseline.
func benchEcho(_ context.Context, _ *Request, p benchEchoPayload) (any, error) {
	return benchEchoResult{Echo: p.Text}, nil
}

// benchRateVariants are the two rate limit settings the pipeline runs
// with: disabled, and enabled with a bucket the benchmark never empties.
var benchRateVariants = []struct {
	name   string
	mutate func(*Config)
}{
	{"ratelimit=off", func(c *Config) { c.CommandRate = -1 }},
	{"ratelimit=on", func(c *Config) { c.CommandRate, c.CommandBurst = 1e9, 1e9 }},
}

func newBenchGateway(tb testing.TB, mutate func(*Config)) *Gateway {
	tb.Helper()
	cfg := Config{
		TokenHMACSecret: benchSecret,
		Namespaces: []policy.NamespaceConfig{
			{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: 100},
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := g.Close(); err != nil {
			tb.Error(err)
		}
	})
	return g
}

// newBenchConn returns a socketless connection of g that has completed
// connect with a real signed token; its connect reply is drained.
func newBenchConn(tb testing.TB, g *Gateway, user string) *conn {
	tb.Helper()
	signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: auth.AlgHS256, HMACSecret: benchSecret})
	if err != nil {
		tb.Fatal(err)
	}
	tok, _, err := signer.Sign(auth.Identity{User: user}, auth.KindConnect, 10*time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	c := g.newConn(nil, "127.0.0.1", "")
	tb.Cleanup(func() { benchReleaseConn(c) })
	if !c.handleFrame([]byte(`{"id":1,"method":"connect","params":{"token":"` + tok + `"}}`)) {
		tb.Fatal("connect refused")
	}
	frames, ok := c.queue.Drain()
	if !ok || len(frames) != 1 || !bytes.Contains(frames[0], []byte(`"result":{"client":`)) {
		tb.Fatalf("connect reply: %q", frames)
	}
	return c
}

// benchReleaseConn undoes what a socketless connection holds: its
// subscriptions, its expiry timer and its context.
func benchReleaseConn(c *conn) {
	for _, s := range c.subs {
		c.g.hub.remove(s)
	}
	c.subs = nil
	c.stopTimers()
	c.stop()
}

// benchSubscribe subscribes c to channel through the hub, as
// handleSubscribe does, and drains the subscribe reply.
func benchSubscribe(tb testing.TB, c *conn, channel string) {
	tb.Helper()
	s := &subscription{c: c, channel: channel}
	if err := c.g.hub.add(context.Background(), s); err != nil {
		tb.Fatal(err)
	}
	if c.subs == nil {
		c.subs = make(map[string]*subscription)
	}
	c.subs[channel] = s
	s.goLive(protocol.AppendReply(nil, 2, []byte(`{}`)), broker.Position{})
	if frames, ok := c.queue.Drain(); !ok || len(frames) != 1 {
		tb.Fatalf("subscribe reply: %q", frames)
	}
}

// newBenchEventConn returns a connected socketless connection of a new
// gateway that has the echo handler registered.
func newBenchEventConn(tb testing.TB, mutate func(*Config)) *conn {
	tb.Helper()
	g := newBenchGateway(tb, mutate)
	if err := g.Handle("echo", HandlerFunc[benchEchoPayload](benchEcho)); err != nil {
		tb.Fatal(err)
	}
	c := newBenchConn(tb, g, "alice")
	// One checked round first, so the loop measures the steady state.
	if got := benchPipelineOnce(c); string(got) != benchEventReply {
		tb.Fatalf("pipeline reply %q, want %q", got, benchEventReply)
	}
	return c
}

// benchPipelineOnce runs benchEventFrame through the whole pipeline and
// returns the reply it queued, or nil.
func benchPipelineOnce(c *conn) []byte {
	if !c.handleFrame(benchEventFrame) {
		return nil
	}
	frames, ok := c.queue.Drain()
	if !ok || len(frames) != 1 {
		return nil
	}
	return frames[0]
}

// benchCommand and benchEventParams are plain, non-strict copies of the
// protocol's command types for the bare baseline.
type benchCommand struct {
	ID     uint64          `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

type benchEventParams struct {
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload"`
}

var errBenchBare = errors.New("bare: unexpected command")

// benchBare is the least work that answers an event frame: decode the
// command, its params and payload, call the handler function, encode the
// result and build the reply. No strict decoding, identity, rate limit,
// handler registry, panic recovery, size check or queue.
func benchBare(ctx context.Context, frame []byte) ([]byte, error) {
	var cmd benchCommand
	if err := json.Unmarshal(frame, &cmd); err != nil {
		return nil, err
	}
	if cmd.Method != protocol.MethodEvent {
		return nil, errBenchBare
	}
	var ep benchEventParams
	if err := json.Unmarshal(cmd.Params, &ep); err != nil {
		return nil, err
	}
	if ep.Name != "echo" {
		return nil, errBenchBare
	}
	var p benchEchoPayload
	if err := json.Unmarshal(ep.Payload, &p); err != nil {
		return nil, err
	}
	res, err := benchEcho(ctx, &Request{Event: ep.Name, Payload: ep.Payload}, p)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	return protocol.AppendReply(make([]byte, 0, len(b)+24), cmd.ID, b), nil
}

func BenchmarkEventPipeline(b *testing.B) {
	for _, v := range benchRateVariants {
		b.Run(v.name, func(b *testing.B) {
			c := newBenchEventConn(b, v.mutate)
			b.ReportAllocs()
			for b.Loop() {
				if benchPipelineOnce(c) == nil {
					b.Fatal("pipeline failed")
				}
			}
		})
	}
}

func BenchmarkEventBare(b *testing.B) {
	ctx := context.Background()
	if got, err := benchBare(ctx, benchEventFrame); err != nil || string(got) != benchEventReply {
		b.Fatalf("bare reply %q (%v), want %q", got, err, benchEventReply)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := benchBare(ctx, benchEventFrame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipelineOverhead runs the pipeline and the bare baseline in
// alternating batches of one invocation, so both see the same machine
// state, and reports the pipeline's extra cost. ns/op and allocs/op are
// for one pipeline run plus one bare run.
func BenchmarkPipelineOverhead(b *testing.B) {
	const batch = 64
	for _, v := range benchRateVariants {
		b.Run(v.name, func(b *testing.B) {
			c := newBenchEventConn(b, v.mutate)
			ctx := context.Background()
			var pipe, bare time.Duration
			var replied int
			b.ReportAllocs()
			b.ResetTimer()
			for done, round := 0, 0; done < b.N; round++ {
				n := min(batch, b.N-done)
				runBare := func() {
					t := time.Now()
					for range n {
						out, err := benchBare(ctx, benchEventFrame)
						if err != nil {
							b.Fatal(err)
						}
						replied += len(out)
					}
					bare += time.Since(t)
				}
				runPipe := func() {
					t := time.Now()
					for range n {
						out := benchPipelineOnce(c)
						if out == nil {
							b.Fatal("pipeline failed")
						}
						replied += len(out)
					}
					pipe += time.Since(t)
				}
				// Alternate which goes first, so neither always runs
				// right after the other's garbage.
				if round%2 == 0 {
					runBare()
					runPipe()
				} else {
					runPipe()
					runBare()
				}
				done += n
			}
			b.StopTimer()
			if replied != 2*b.N*len(benchEventReply) {
				b.Fatalf("replied %d bytes, want %d", replied, 2*b.N*len(benchEventReply))
			}
			pipeNs := float64(pipe.Nanoseconds()) / float64(b.N)
			bareNs := float64(bare.Nanoseconds()) / float64(b.N)
			b.ReportMetric(pipeNs, "pipeline-ns/op")
			b.ReportMetric(bareNs, "bare-ns/op")
			b.ReportMetric((pipeNs-bareNs)/bareNs*100, "overhead-%")
		})
	}
}

// benchFanoutConns returns n socketless connections of g subscribed to
// channel, each with its queue warmed up so pushes do not grow it.
func benchFanoutConns(b *testing.B, g *Gateway, channel string, n int) []*conn {
	b.Helper()
	conns := make([]*conn, n)
	for i := range conns {
		c := g.newConn(nil, "127.0.0.1", "")
		conns[i] = c
		b.Cleanup(func() { benchReleaseConn(c) })
		benchSubscribe(b, c, channel)
	}
	return conns
}

// benchDrainOne checks every connection received exactly one frame, the
// same slice for all (encoded once), and returns it.
func benchDrainOne(conns []*conn) ([]byte, error) {
	var first []byte
	for i, c := range conns {
		frames, ok := c.queue.Drain()
		if !ok || len(frames) != 1 {
			return nil, fmt.Errorf("subscriber %d got %d frames (open %v)", i, len(frames), ok)
		}
		if i == 0 {
			first = frames[0]
		} else if &frames[0][0] != &first[0] {
			return nil, fmt.Errorf("subscriber %d got its own copy of the frame", i)
		}
	}
	return first, nil
}

// BenchmarkFanout measures the hub alone: one publication handed to
// HandlePublication, then every subscriber's queue drained. The frame is
// encoded once and shared, so allocs/op should stay at one whatever the
// number of subscribers.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			g := newBenchGateway(b, nil)
			const channel = "room:fanout"
			conns := benchFanoutConns(b, g, channel, n)
			pub := broker.Publication{Channel: channel, Epoch: "bench", Data: []byte(`{"text":"hello"}`)}
			// Two rounds give every queue both of its slices at capacity.
			for range 2 {
				pub.Offset++
				g.hub.HandlePublication(pub)
				frame, err := benchDrainOne(conns)
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Contains(frame, []byte(`"data":{"text":"hello"}`)) {
					b.Fatalf("push frame %s", frame)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				pub.Offset++
				g.hub.HandlePublication(pub)
				for _, c := range conns {
					if frames, ok := c.queue.Drain(); !ok || len(frames) != 1 {
						b.Fatalf("got %d frames", len(frames))
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkFanoutPublish is BenchmarkFanout through Gateway.Publish and
// the memory broker (with a 100-message history), as an application
// publishes.
func BenchmarkFanoutPublish(b *testing.B) {
	for _, n := range []int{1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			g := newBenchGateway(b, nil)
			const channel = "room:fanout"
			conns := benchFanoutConns(b, g, channel, n)
			ctx := context.Background()
			// Boxed once: converting a slice to Publish's any parameter
			// costs the caller an allocation per call.
			var data any = json.RawMessage(`{"text":"hello"}`)
			for range 2 {
				if _, err := g.Publish(ctx, channel, data); err != nil {
					b.Fatal(err)
				}
				if _, err := benchDrainOne(conns); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Publish(ctx, channel, data); err != nil {
					b.Fatal(err)
				}
				for _, c := range conns {
					if frames, ok := c.queue.Drain(); !ok || len(frames) != 1 {
						b.Fatalf("got %d frames", len(frames))
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkFanoutHistory is BenchmarkFanoutPublish with history off and
// on (100 publications kept, the bench server's setting), with 4 KiB
// payloads and a fresh payload slice per publication as an HTTP publisher
// makes. Run it with -mutexprofile and -blockprofile to see whether the
// history append serialises anything the fan-out needs.
func BenchmarkFanoutHistory(b *testing.B) {
	const n = 1000
	payload := append(append([]byte(`{"t":"`), bytes.Repeat([]byte("x"), 4<<10)...), `"}`...)
	for _, size := range []int{0, 100} {
		b.Run(fmt.Sprintf("history=%d", size), func(b *testing.B) {
			g := newBenchGateway(b, func(c *Config) {
				c.Namespaces = []policy.NamespaceConfig{{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: size, HistoryTTL: 5 * time.Minute}}
			})
			const channel = "room:fanout"
			conns := benchFanoutConns(b, g, channel, n)
			ctx := context.Background()
			publish := func() {
				data := json.RawMessage(bytes.Clone(payload))
				if _, err := g.Publish(ctx, channel, data); err != nil {
					b.Fatal(err)
				}
			}
			for range 2 {
				publish()
				if _, err := benchDrainOne(conns); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				publish()
				for _, c := range conns {
					if frames, ok := c.queue.Drain(); !ok || len(frames) != 1 {
						b.Fatalf("got %d frames", len(frames))
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkCommandLimiter is the per-command cost of the connection's
// token bucket, as handleFrame pays it.
func BenchmarkCommandLimiter(b *testing.B) {
	g, err := New(Config{TokenHMACSecret: []byte("bench-secret-0123456789abcdef-0123456"), CommandRate: 1e9, CommandBurst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	c := g.newConn(nil, "127.0.0.1", "")
	f := protocol.ClientFrame{ID: 1, Method: protocol.MethodUnsubscribe}
	b.ReportAllocs()
	for b.Loop() {
		if run, _ := c.allow(f); !run {
			b.Fatal("limited")
		}
	}
}

// BenchmarkLimiterMemory reports the heap each connection's limiter state
// adds, measured over 10,000 connections' worth.
func BenchmarkLimiterMemory(b *testing.B) {
	const n = 10000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ls := make([]*rate.Limiter, n)
		for i := range ls {
			ls[i] = rate.NewLimiter(rate.Limit(DefaultCommandRate), DefaultCommandBurst)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/conn")
		runtime.KeepAlive(ls)
	}
}
