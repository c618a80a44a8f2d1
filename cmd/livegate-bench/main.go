// Command livegate-bench measures a livegate gateway, and Centrifugo for
// comparison, on this machine: idle connections (memory per connection,
// connect rate), fan-out to many subscribers, many channels, and event
// round trips. Every target must be a loopback address, and every run is
// bounded in connections and time. See docs/performance.md.
//
//	livegate-bench server      a livegate gateway configured for benchmarks
//	livegate-bench rpc-proxy   the RPC backend Centrifugo's client RPC needs
//	livegate-bench run         one workload against one server; JSON lines out
//	livegate-bench mem         a server's memory (RSS, Go heap and stacks)
//	livegate-bench report      the comparison table and chart from JSON lines
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/internal/loadgen"
)

// Environment variables: the secrets never go on a command line.
const (
	envSecret = "LIVEGATE_BENCH_SECRET"  // token HMAC secret, shared with the server
	envAPIKey = "LIVEGATE_BENCH_API_KEY" // publish API key (livegate: also admin bearer)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "livegate-bench:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "livegate-bench",
		Short:         "Benchmark livegate (and Centrifugo) on this machine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCommand(), rpcProxyCommand(), runCommand(), memCommand(), reportCommand())
	return root
}

func secretFromEnv() ([]byte, error) {
	s := os.Getenv(envSecret)
	if len(s) < 32 {
		return nil, fmt.Errorf("%s must be set to at least 32 bytes", envSecret)
	}
	return []byte(s), nil
}

func serverCommand() *cobra.Command {
	cfg := serverConfig{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a livegate gateway configured for benchmarks (loopback only)",
		Long: `Server runs a livegate gateway with the defaults of livegate.Config except
raised abuse limits (connections and attempts per IP and per user, the
command rate) and --max-conns, namespace "bench" open to any authenticated
connection, an "echo" event handler, and an admin listener (Bearer ` + envAPIKey + `)
serving /metrics, /debug/pprof/ and POST /api/publish {"channel","data"}.
It prints one JSON line: pid, url, publish_url, metrics_url, pprof_url.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := secretFromEnv()
			if err != nil {
				return err
			}
			cfg.Secret, cfg.APIKey = secret, os.Getenv(envAPIKey)
			s, err := startServer(cfg)
			if err != nil {
				return err
			}
			line, _ := json.Marshal(s.info())
			fmt.Fprintln(cmd.OutOrStdout(), string(line))
			<-cmd.Context().Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return s.Shutdown(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:0", "WebSocket listener (loopback only)")
	f.StringVar(&cfg.AdminAddr, "admin-addr", "127.0.0.1:0", "admin listener (loopback only)")
	f.IntVar(&cfg.HistorySize, "history-size", 0, "publications each bench channel keeps (0: no history)")
	f.DurationVar(&cfg.HistoryTTL, "history-ttl", 0, "history TTL (0: the broker's default)")
	f.IntVar(&cfg.MaxConns, "max-conns", 50000, "MaxConnections of the gateway")
	f.DurationVar(&cfg.CoalesceDelay, "coalesce-delay", 0, "CoalesceDelay of the gateway (0: its default, negative: off)")
	return cmd
}

func rpcProxyCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "rpc-proxy",
		Short: "Serve the echo RPC backend Centrifugo's client RPC calls (loopback only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loopbackListenAddr(addr); err != nil {
				return fmt.Errorf("--addr %w", err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: rpcProxyHandler(), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "{\"pid\":%d,\"url\":\"http://%s/rpc\"}\n", os.Getpid(), ln.Addr())
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "listener (loopback only)")
	return cmd
}

func runCommand() *cobra.Command {
	cfg := runConfig{}
	var sizes, out string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run one workload against a loopback server and print its results as JSON lines",
		Long: `Run runs one workload against one server:

  idle      --conns connections, each subscribed to one channel: connect rate
            (upgrade, connect with a token, subscribe) and the server's memory
            per connection (RSS of --server-pid, Go heap+stacks of --metrics-url)
  fanout    --conns subscribers of one channel; --messages publications of each
            --sizes size at --rate a second, then --max-messages at max rate
            (--publishers concurrent HTTP publishers): deliveries/s,
            publish-to-deliver latency, the CPU time of --server-pid per
            delivery, and how busy the server and the load generator were
  channels  each connection on its own channel plus a shared one; one publication
            in ten goes to the shared channel (measured as fanout)
  events    --conns connections calling the echo handler (Centrifugo: RPC through
            its proxy) in a closed loop for --duration: round trips/s, latency

Tokens are signed with ` + envSecret + `; the publish API key is ` + envAPIKey + `.
Latency is measured on one clock: the payload carries its publish time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := secretFromEnv()
			if err != nil {
				return err
			}
			cfg.Secret, cfg.APIKey, cfg.MetricsKey = secret, os.Getenv(envAPIKey), ""
			if cfg.Driver == "livegate" {
				cfg.MetricsKey = cfg.APIKey
			}
			if cfg.Sizes, err = parseSizes(sizes); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != "" {
				f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
				if err != nil {
					return err
				}
				defer f.Close()
				w = io.MultiWriter(w, f)
			}
			_, err = runBench(cmd.Context(), &cfg, w, cmd.ErrOrStderr())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Driver, "driver", "livegate", "livegate or centrifugo")
	f.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/ws", "WebSocket URL (loopback only)")
	f.StringVar(&cfg.PublishURL, "publish-url", "", "HTTP publish endpoint (loopback only)")
	f.StringVar(&cfg.Audience, "audience", livegate.DefaultAudience, "token audience (livegate)")
	f.StringVar(&cfg.Workload, "workload", wIdle, "idle, fanout, channels or events")
	f.IntVar(&cfg.Conns, "conns", 100, fmt.Sprintf("connections (at most %d)", maxConns))
	f.IntVar(&cfg.Channels, "channels", 0, "idle: distinct channels the connections use (0: one each)")
	f.IntVar(&cfg.Publishers, "publishers", 4, "concurrent HTTP publishers")
	f.StringVar(&sizes, "sizes", "128,4096", "payload sizes in bytes (fanout runs each; others the first)")
	f.IntVar(&cfg.Messages, "messages", 200, "publications per variant")
	f.IntVar(&cfg.MaxMessages, "max-messages", 0, "fanout: publications of each max-rate variant (0: --messages)")
	f.Float64Var(&cfg.Rate, "rate", 100, "fixed publish rate a second (fanout also runs at max rate; 0: max only)")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "events: how long to call; every workload is bounded by it plus 5m")
	f.DurationVar(&cfg.Hold, "hold", 0, "idle: keep the connections open this long after measuring")
	f.BoolVar(&cfg.NoBatch, "no-batch", false, "livegate: do not ask for batched messages (one frame per WebSocket message)")
	f.BoolVar(&cfg.Spread, "spread", true, "spread connections over source addresses 127.0.x.y")
	f.IntVar(&cfg.ServerPID, "server-pid", 0, "pid of the server, for its RSS and CPU time")
	f.StringVar(&cfg.MetricsURL, "metrics-url", "", "Prometheus endpoint of the server, for go_memstats")
	f.StringVar(&cfg.PprofURL, "pprof-url", "", "base URL of the server's /debug/pprof/ (livegate bench server)")
	f.StringVar(&cfg.ProfileDir, "profile-dir", "", "where CPU and heap profiles go")
	f.IntVar(&cfg.ProfileSeconds, "profile-seconds", 5, "length of the CPU profile")
	f.StringVar(&cfg.Label, "label", "", "free text stored with the results (e.g. history=on)")
	f.StringVar(&out, "out", "", "append the JSON lines to this file too")
	return cmd
}

// runBench runs cfg, writes one JSON line per result to out and a summary
// to log.
func runBench(ctx context.Context, cfg *runConfig, out, log io.Writer) ([]result, error) {
	b, err := newBench(cfg, log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "livegate-bench: %s %s, %d connections, %s\n", cfg.Driver, cfg.Workload, cfg.Conns, cfg.Label)
	res, err := b.run(ctx)
	for _, r := range res {
		line, jerr := json.Marshal(r)
		if jerr != nil {
			return res, jerr
		}
		fmt.Fprintln(out, string(line))
		fmt.Fprintf(log, "  %s %s: %s\n", r.Workload, r.Variant, headline(r))
	}
	return res, err
}

func headline(r result) string {
	m := r.Metrics
	s := ""
	switch r.Workload {
	case wIdle:
		s = fmt.Sprintf("%.0f connected at %.0f/s, RSS %.0f B/conn, heap+stack %.0f B/conn", m["connected"], m["connect_per_s"], m["rss_per_conn_bytes"], m["heap_stack_per_conn_bytes"])
	case wEvents:
		s = fmt.Sprintf("%.0f round trips/s, p50 %.3f ms, p99 %.3f ms", m["round_trips_per_s"], m["latency_p50_ms"], m["latency_p99_ms"])
	default:
		s = fmt.Sprintf("%.0f/%.0f delivered, %.0f/s, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms", m["deliveries"], m["expected_deliveries"], m["deliveries_per_s"], m["latency_p50_ms"], m["latency_p99_ms"], m["latency_p999_ms"])
	}
	if len(r.Errors) > 0 {
		s += fmt.Sprintf(" (errors: %v)", r.Errors)
	}
	return s
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("--sizes: %w", err)
		}
		out = append(out, n)
	}
	return out, nil
}

func memCommand() *cobra.Command {
	cfg := runConfig{}
	cmd := &cobra.Command{
		Use:   "mem",
		Short: "Print a server's RSS and Go heap+stacks as one JSON line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.MetricsURL != "" {
				if _, err := loadgen.CheckLoopbackURL(cfg.MetricsURL, "http"); err != nil {
					return fmt.Errorf("--metrics-url %w", err)
				}
				cfg.MetricsKey = os.Getenv(envAPIKey)
			}
			m := probeMemory(cmd.Context(), newPublishClient(1), &cfg)
			fmt.Fprintf(cmd.OutOrStdout(), "{\"rss_bytes\":%d,\"heap_stack_bytes\":%d}\n", m.RSS, m.HeapStack)
			return nil
		},
	}
	cmd.Flags().IntVar(&cfg.ServerPID, "pid", 0, "server pid")
	cmd.Flags().StringVar(&cfg.MetricsURL, "metrics-url", "", "Prometheus endpoint (loopback only)")
	return cmd
}
