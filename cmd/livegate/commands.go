package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/demo"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/store"
)

// Environment variables read by the CLI.
const (
	envSecret      = "LIVEGATE_TOKEN_HMAC_SECRET"
	envAudience    = "LIVEGATE_AUDIENCE"
	envAdminSecret = "LIVEGATE_ADMIN_SECRET"
)

func rootCommand() *cobra.Command {
	dev := devCommand()
	root := &cobra.Command{
		Use:           "livegate",
		Short:         "A secure-by-default real-time gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          dev.RunE,
	}
	root.Flags().AddFlagSet(dev.Flags())
	root.AddCommand(dev, tokenCommand(), loadCommand())
	root.AddCommand(auditCommand())
	root.AddCommand(apikeyCommand())
	root.AddCommand(selftestCommand())
	root.AddCommand(serveCommand(), configCommand())
	return root
}

func audience() string {
	if a := os.Getenv(envAudience); a != "" {
		return a
	}
	return livegate.DefaultAudience
}

// secretFromEnv returns the configured secret, or nil when unset.
func secretFromEnv() ([]byte, error) {
	s := os.Getenv(envSecret)
	if s == "" {
		return nil, nil
	}
	if len(s) < 32 {
		return nil, fmt.Errorf("%s must be at least 32 bytes", envSecret)
	}
	return []byte(s), nil
}

func devCommand() *cobra.Command {
	var addr, adminAddr, dbPath string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the dev server with the demo (in-memory broker, embedded SQLite)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveDev(cmd.Context(), addr, adminAddr, dbPath, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&adminAddr, "admin-addr", "", "address of an admin listener serving /metrics, /healthz and /readyz, e.g. 127.0.0.1:9090 (default: none)")
	cmd.Flags().StringVar(&dbPath, "db", "livegate-dev.db", "SQLite database for single-use tokens, revocations and audit events (\":memory:\" for none on disk)")
	return cmd
}

// runDev is serveDev without the admin listener.
func runDev(ctx context.Context, addr, dbPath string, out io.Writer) error {
	return serveDev(ctx, addr, "", dbPath, out)
}

func serveDev(ctx context.Context, addr, adminAddr, dbPath string, out io.Writer) error {
	logger := slog.New(logsafe.Handler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	secret, err := secretFromEnv()
	if err != nil {
		return err
	}
	if secret == nil {
		raw, err := auth.GenerateSecret(32)
		if err != nil {
			return err
		}
		secret = []byte(base64.RawURLEncoding.EncodeToString(raw))
		fmt.Fprintf(out, "generated dev token secret (set %s to reuse it):\n  %s\n", envSecret, secret)
	}
	var admin []byte
	if a := os.Getenv(envAdminSecret); a != "" {
		if len(a) < 32 {
			return fmt.Errorf("%s must be at least 32 bytes", envAdminSecret)
		}
		admin = []byte(a)
	}
	rt, err := openRuntime(ctx, runtimeOptions{dbPath: dbPath, adminAddr: adminAddr, logger: logger})
	if err != nil {
		return err
	}
	defer rt.close()
	db, events, m, adminSrv := rt.db, rt.events, rt.metrics, rt.admin
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv, err := demo.New(demo.Config{
		Secret:      secret,
		Audience:    audience(),
		Logger:      logger,
		AdminSecret: admin,
		Operations:  db.Operations(),
		Gateway: livegate.Config{
			ReplayStore:    db.ReplayStore(),
			Revocations:    db.Revocations(),
			Hosts:          loopbackHosts(ln.Addr()),
			SecurityEvents: events,
			Metrics:        m,
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	hs := newHTTPServer(srv)
	fmt.Fprintf(out, "livegate dev server on http://%s (demo), WebSocket at ws://%s/ws\n", ln.Addr(), ln.Addr())
	adminSrv.serve(srv.Gateway(), m, out)
	fmt.Fprintf(out, "demo sign-in: users %s, password %s\n", strings.Join(demo.DemoUsers, ", "), srv.DemoPassword())
	if admin != nil {
		fmt.Fprintf(out, "revocation endpoint: POST http://%s/admin/revoke (Bearer %s)\n", ln.Addr(), envAdminSecret)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gerr := srv.Shutdown(sctx)
	herr := hs.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(gerr, herr)
}

// HTTP server limits: a client gets readHeaderTimeout to send its request
// headers (no Slowloris), at most 16 KiB of them, and idle keep-alive
// connections are closed. Read and write timeouts for whole requests are
// not set: they would also cut WebSocket connections, which have their own
// ping and write deadlines.
var (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
)

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
}

// loopbackHosts returns the Host values a browser uses for a loopback
// listener, so the dev server refuses other Hosts (DNS rebinding). For
// other listeners it returns nil: no Host check.
func loopbackHosts(a net.Addr) []string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return nil
	}
	port := strconv.Itoa(ta.Port)
	return []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("localhost", port), net.JoinHostPort("::1", port)}
}

// closeRecorder writes the audit events still queued, giving up after a
// few seconds.
func closeRecorder(r *audit.Recorder, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		logger.Warn("audit: close", "err", err)
	}
}

func sweep(ctx context.Context, db *store.DB, logger *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := db.Sweep(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("sweep", "err", err)
			}
		}
	}
}

func tokenCommand() *cobra.Command {
	var (
		id       auth.Identity
		ttl      time.Duration
		kind     string
		channels string
		groups   string
	)
	cmd := &cobra.Command{
		Use:   "token --sub USER",
		Short: "Print a signed token for " + envSecret,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := secretFromEnv()
			if err != nil {
				return err
			}
			if secret == nil {
				return fmt.Errorf("%s is not set", envSecret)
			}
			if id.User == "" {
				return errors.New("--sub is required")
			}
			if kind != string(auth.KindConnect) && kind != string(auth.KindSubscribe) {
				return errors.New("--kind must be connect or subscribe")
			}
			id.Channels = splitList(channels)
			id.Groups = splitList(groups)
			signer, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: secret, Audience: audience()})
			if err != nil {
				return err
			}
			tok, _, err := signer.Sign(id, auth.Kind(kind), ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&id.User, "sub", "", "user (subject) the token is for (required)")
	f.StringVar(&id.Session, "sid", "", "session id to bind the token to")
	f.StringVar(&id.Tenant, "tenant", "", "tenant")
	f.DurationVar(&ttl, "ttl", 5*time.Minute, "token lifetime")
	f.StringVar(&kind, "kind", string(auth.KindConnect), "token kind: connect or subscribe")
	f.StringVar(&channels, "channels", "", "comma-separated channels (subscribe tokens)")
	f.StringVar(&groups, "groups", "", "comma-separated groups")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
