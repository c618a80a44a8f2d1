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
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/demo"
)

// Environment variables read by the CLI.
const (
	envSecret   = "LIVEGATE_TOKEN_HMAC_SECRET"
	envAudience = "LIVEGATE_AUDIENCE"
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
	root.AddCommand(dev, tokenCommand())
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
	var addr string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the dev server with the demo (in-memory broker)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), addr, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	return cmd
}

func runDev(ctx context.Context, addr string, out io.Writer) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
	srv, err := demo.New(demo.Config{Secret: secret, Audience: audience(), Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	fmt.Fprintf(out, "livegate dev server on http://%s (demo), WebSocket at ws://%s/ws\n", ln.Addr(), ln.Addr())
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
