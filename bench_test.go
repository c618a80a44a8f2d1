package livegate_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/protocol"
)

// Benchmarks over real WebSockets on loopback. BenchmarkIdleConnections
// keeps its clients in a child process (benchClientProcess, via TestMain) so the
// server's memory and file descriptors are measured alone.

// Environment of the client child process.
const (
	benchClientEnv      = "LIVEGATE_BENCH_CLIENT" // "1" in the child only
	benchClientURLEnv   = "LIVEGATE_BENCH_CLIENT_URL"
	benchClientConnsEnv = "LIVEGATE_BENCH_CLIENT_CONNS"
	benchClientAddrsEnv = "LIVEGATE_BENCH_CLIENT_ADDRS"
)

// benchConnsPerAddr is how many client sockets share one local source
// address, well inside one address's ephemeral port range.
const benchConnsPerAddr = 2500

// benchDialWorkers is how many clients dial at once.
const benchDialWorkers = 32

// benchFrame decodes one server frame.
func benchFrame(b []byte) (protocol.ServerFrame, error) {
	var f protocol.ServerFrame
	err := json.Unmarshal(b, &f)
	return f, err
}

// benchCall writes one command and reads its reply.
func benchCall(ctx context.Context, ws *websocket.Conn, cmd string, id uint64) error {
	if err := ws.Write(ctx, websocket.MessageText, []byte(cmd)); err != nil {
		return err
	}
	_, msg, err := ws.Read(ctx)
	if err != nil {
		return err
	}
	f, err := benchFrame(msg)
	if err != nil {
		return err
	}
	if f.Push != nil || f.ID != id || f.Error != nil {
		return fmt.Errorf("command %d: unexpected reply %s", id, msg)
	}
	return nil
}

// benchDialSubscribe dials url, connects with token and subscribes to
// channel. Nothing may be published to channel before it returns.
func benchDialSubscribe(ctx context.Context, url string, client *http.Client, token, channel string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols: []string{protocol.Subprotocol},
		HTTPClient:   client,
	})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	connect := `{"id":1,"method":"connect","params":{"token":"` + token + `"}}`
	subscribe := `{"id":2,"method":"subscribe","params":{"channel":"` + channel + `"}}`
	if err := benchCall(ctx, ws, connect, 1); err != nil {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := benchCall(ctx, ws, subscribe, 2); err != nil {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return ws, nil
}

// benchDialMany opens n subscribed connections with benchDialWorkers
// dialing at once. dial gets the connection's index. On error every
// connection opened is closed.
func benchDialMany(ctx context.Context, n int, dial func(ctx context.Context, i int) (*websocket.Conn, error)) ([]*websocket.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(benchDialWorkers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				ws, err := dial(ctx, i)
				if err != nil {
					once.Do(func() { first = fmt.Errorf("connection %d: %w", i, err); cancel() })
					return
				}
				conns[i] = ws
			}
		})
	}
	wg.Wait()
	if first != nil {
		for _, ws := range conns {
			if ws != nil {
				_ = ws.CloseNow()
			}
		}
		return nil, first
	}
	return conns, nil
}

// benchTimestamp extracts T from a push whose data is {"t":T}.
func benchTimestamp(msg []byte) (int64, bool) {
	i := bytes.LastIndex(msg, []byte(`{"t":`))
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(`{"t":`):]
	j := bytes.IndexByte(rest, '}')
	if j < 0 {
		return 0, false
	}
	t, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return t, err == nil
}

// BenchmarkFanoutSockets publishes one message per iteration to 1000 real
// WebSocket subscribers and waits until every one has read it. The
// clients run in this process, so allocs/op counts their reads too.
func BenchmarkFanoutSockets(b *testing.B) {
	const n = 1000
	const channel = "room:fanout"
	e := newEnv(b, nil)
	signer := e.signer
	ctx, cancel := context.WithCancel(context.Background())
	conns, err := benchDialMany(ctx, n, func(ctx context.Context, i int) (*websocket.Conn, error) {
		tok, _, err := signer.Sign(auth.Identity{User: fmt.Sprintf("sub%d", i)}, auth.KindConnect, 10*time.Minute)
		if err != nil {
			return nil, err
		}
		return benchDialSubscribe(ctx, e.url, nil, tok, channel)
	})
	if err != nil {
		cancel()
		b.Fatal(err)
	}

	// Each reader sends the publish-to-read latency of every push.
	lat := make(chan int64, n)
	errc := make(chan error, 1)
	var readers sync.WaitGroup
	for _, ws := range conns {
		readers.Go(func() {
			for {
				_, msg, err := ws.Read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						select {
						case errc <- fmt.Errorf("read: %w", err):
						default:
						}
					}
					return
				}
				t, ok := benchTimestamp(msg)
				if !ok {
					select {
					case errc <- fmt.Errorf("unexpected frame %s", msg):
					default:
					}
					return
				}
				select {
				case lat <- time.Now().UnixNano() - t:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	// Runs before newEnv's cleanup, which shuts the gateway down.
	b.Cleanup(func() {
		cancel()
		for _, ws := range conns {
			_ = ws.CloseNow()
		}
		readers.Wait()
	})

	b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
		lats := make([]int64, 0, b.N*n)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			// A new slice each time: the memory broker keeps it as history.
			data := strconv.AppendInt([]byte(`{"t":`), time.Now().UnixNano(), 10)
			data = append(data, '}')
			if _, err := e.gw.Publish(ctx, channel, json.RawMessage(data)); err != nil {
				b.Fatal(err)
			}
			timeout := time.NewTimer(10 * time.Second)
			for range n {
				select {
				case l := <-lat:
					lats = append(lats, l)
				case err := <-errc:
					b.Fatal(err)
				case <-timeout.C:
					b.Fatalf("timed out: %d of %d subscribers read the message", len(lats)%n, n)
				}
			}
			timeout.Stop()
		}
		b.StopTimer()
		slices.Sort(lats)
		pct := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))]) / 1e3 }
		b.ReportMetric(float64(len(lats))/b.Elapsed().Seconds(), "deliveries/s")
		b.ReportMetric(pct(0.50), "p50-us")
		b.ReportMetric(pct(0.99), "p99-us")
	})
}

// BenchmarkIdleConnections opens authenticated, subscribed connections
// from a child process and measures the server's Go heap and stacks per
// connection and the connect rate. Each iteration is one full cycle:
// connect all, measure, disconnect all. With LIVEGATE_BENCH_HEAPPROFILE
// set, an in-use heap profile is written while the connections are open.
// conns=10000 (about 5 s, 10,000
// descriptors in each process) is left out in -short mode.
func BenchmarkIdleConnections(b *testing.B) {
	sizes := []int{1000}
	if !testing.Short() {
		sizes = append(sizes, 10000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			e := newEnv(b, nil)
			var heap, stack, rate, gor float64
			b.ReportAllocs()
			for range b.N {
				before, g0 := benchServerMemory()
				cl, elapsed := startBenchClients(b, e.url, n)
				if got := e.gw.Connections(); got != n {
					cl.stop(b)
					b.Fatalf("gateway has %d connections, want %d", got, n)
				}
				after, g1 := benchServerMemory()
				writeBenchHeapProfile(b, n)
				cl.stop(b)
				waitForConnections(b, e, 0)
				perConn := func(a, b uint64) float64 { return (float64(a) - float64(b)) / 1024 / float64(n) }
				heap += perConn(after.HeapInuse, before.HeapInuse)
				stack += perConn(after.StackInuse, before.StackInuse)
				rate += float64(n) / elapsed.Seconds()
				gor += float64(g1-g0) / float64(n)
			}
			b.ReportMetric((heap+stack)/float64(b.N), "KiB/conn")
			b.ReportMetric(heap/float64(b.N), "heap-KiB/conn")
			b.ReportMetric(stack/float64(b.N), "stack-KiB/conn")
			b.ReportMetric(rate/float64(b.N), "conns/s")
			b.ReportMetric(gor/float64(b.N), "goroutines/conn")
		})
	}
}

// benchServerMemory returns this process's memory statistics after two
// collections, and its number of goroutines.
func benchServerMemory() (*runtime.MemStats, int) {
	runtime.GC()
	runtime.GC()
	ms := new(runtime.MemStats)
	runtime.ReadMemStats(ms)
	return ms, runtime.NumGoroutine()
}

// writeBenchHeapProfile writes the in-use heap, with the connections
// open, to $LIVEGATE_BENCH_HEAPPROFILE.<n> when that variable is set.
func writeBenchHeapProfile(b *testing.B, n int) {
	b.Helper()
	path := os.Getenv("LIVEGATE_BENCH_HEAPPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path + "." + strconv.Itoa(n))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func waitForConnections(b *testing.B, e *env, n int) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.gw.Connections() != n {
		if time.Now().After(deadline) {
			b.Fatalf("gateway still has %d connections, want %d", e.gw.Connections(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// benchClients is a running client child process.
type benchClients struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stdout   chan string   // lines; closed at EOF
	stderr   *bytes.Buffer // guarded by the process: read after Wait
	stopOnce sync.Once
}

// startBenchClients starts the child process dialing n connections to
// url and waits until it reports them ready, returning the time it took
// them to connect and subscribe. The process is stopped by stop or, at
// the latest, by the benchmark's cleanup.
func startBenchClients(b *testing.B, url string, n int) (*benchClients, time.Duration) {
	b.Helper()
	addrs := (n + benchConnsPerAddr - 1) / benchConnsPerAddr
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(),
		benchClientEnv+"=1",
		benchClientURLEnv+"="+url,
		benchClientConnsEnv+"="+strconv.Itoa(n),
		benchClientAddrsEnv+"="+strconv.Itoa(addrs),
	)
	cl := &benchClients{cmd: cmd, stdout: make(chan string, 16), stderr: new(bytes.Buffer)}
	cmd.Stderr = cl.stderr
	var err error
	if cl.stdin, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.stop(b) })
	go func() {
		defer close(cl.stdout)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			cl.stdout <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()

	timeout := time.NewTimer(3 * time.Minute)
	defer timeout.Stop()
	var output []string
	for {
		select {
		case line, ok := <-cl.stdout:
			if !ok {
				cl.stop(b)
				b.Fatalf("client process exited before ready:\n%s\n%s", strings.Join(output, "\n"), cl.stderr)
			}
			var got int
			var ns int64
			if _, err := fmt.Sscanf(line, "ready %d %d", &got, &ns); err == nil && got == n {
				// Keep draining so the child never blocks on stdout.
				go func() {
					for range cl.stdout {
					}
				}()
				return cl, time.Duration(ns)
			}
			output = append(output, line)
		case <-timeout.C:
			cl.stop(b)
			b.Fatalf("client process not ready in time:\n%s", strings.Join(output, "\n"))
		}
	}
}

// stop asks the child to close its connections and exit by closing its
// stdin, and kills it if it has not exited within 30 seconds.
func (cl *benchClients) stop(b *testing.B) {
	cl.stopOnce.Do(func() {
		_ = cl.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cl.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("client process: %v\n%s", err, cl.stderr)
			}
		case <-time.After(30 * time.Second):
			_ = cl.cmd.Process.Kill()
			<-done
			b.Error("client process did not exit; killed")
		}
	})
}

// TestMain runs the client side of BenchmarkIdleConnections when the test
// binary is started as that benchmark's child process, and the tests
// otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(benchClientEnv) == "1" {
		t := &childT{}
		benchClientProcess(t)
		os.Exit(t.status)
	}
	os.Exit(m.Run())
}

// childT reports failures of the benchmark's child process on stderr.
type childT struct{ status int }

func (c *childT) Error(args ...any) { fmt.Fprintln(os.Stderr, args...); c.status = 1 }
func (c *childT) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(1) }
func (c *childT) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// benchClientProcess is the client side of BenchmarkIdleConnections, run
// in a child process. It dials the connections from 127.0.0.2 onwards,
// each authenticated with its own signed token and subscribed to its own
// channel, prints "ready <n> <nanoseconds>" and holds them until stdin is
// closed.
func benchClientProcess(t *childT) {
	url := os.Getenv(benchClientURLEnv)
	n, err := strconv.Atoi(os.Getenv(benchClientConnsEnv))
	if err != nil || n <= 0 {
		t.Fatalf("bad %s: %v", benchClientConnsEnv, err)
	}
	addrs, err := strconv.Atoi(os.Getenv(benchClientAddrsEnv))
	if err != nil || addrs <= 0 || addrs > 250 {
		t.Fatalf("bad %s: %v", benchClientAddrsEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: auth.AlgHS256, HMACSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, n)
	for i := range tokens {
		if tokens[i], _, err = signer.Sign(auth.Identity{User: fmt.Sprintf("idle%d", i)}, auth.KindConnect, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clients := make([]*http.Client, addrs)
	for i := range clients {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}, Timeout: 10 * time.Second}
		tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: tr}
	}

	start := time.Now()
	conns, err := benchDialMany(ctx, n, func(dialCtx context.Context, i int) (*websocket.Conn, error) {
		ws, err := benchDialSubscribe(dialCtx, url, clients[i%addrs], tokens[i], fmt.Sprintf("room:idle%d", i))
		if err != nil {
			return nil, err
		}
		// Answer the server's pings while idle, until the test's deadline
		// (dialCtx ends when dialing does).
		ws.CloseRead(ctx)
		return ws, nil
	})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, ws := range conns {
			_ = ws.CloseNow()
		}
	}()
	fmt.Printf("ready %d %d\n", n, elapsed.Nanoseconds())

	// Hold the connections until the parent closes stdin (or dies).
	stdin := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdin)
	}()
	select {
	case <-stdin:
	case <-ctx.Done():
		t.Error("held connections until the deadline")
	}
}
