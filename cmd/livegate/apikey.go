package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/livegate/livegate/apikey"
	"github.com/livegate/livegate/internal/logsafe"
	"github.com/livegate/livegate/store"
)

// apikeyDefaultDB is the database `livegate dev` uses by default.
const apikeyDefaultDB = "livegate-dev.db"

func apikeyCommand() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Create, list and revoke the API keys of the HTTP API",
		Long: `Manage the API keys backends use to call the HTTP API (/api/publish, …).

A key is shown once, when it is created; the database keeps only its
SHA-256 hash. Keys are identified by the 8 characters after "lg_".

Scopes (comma-separated):
  publish:<pattern>   publish and broadcast to matching channels ("room:*")
  presence:<pattern>  read presence of matching channels
  history:<pattern>   read history of matching channels
  disconnect          disconnect users, sessions and tokens
  revoke              revoke users, sessions and tokens
  channels            list active channels
  admin               everything`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&db, "db", apikeyDefaultDB, "SQLite database the gateway reads keys from")
	cmd.AddCommand(apikeyCreateCommand(&db), apikeyListCommand(&db), apikeyRevokeCommand(&db))
	return cmd
}

func apikeyCreateCommand(db *string) *cobra.Command {
	var name, scopes, expires, tenant string
	cmd := &cobra.Command{
		Use:   "create --name NAME --scopes SCOPES",
		Short: "Create a key and print it (once)",
		Example: `  livegate apikey create --name backend --scopes 'publish:room:*,disconnect' --expires 90d
  livegate apikey create --name ops --scopes admin --expires 12h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := apikey.ParseScopes(scopes)
			if err != nil {
				return fmt.Errorf("--scopes: %w", err)
			}
			ttl, err := apikey.ParseTTL(expires)
			if err != nil {
				return fmt.Errorf("--expires: %w", err)
			}
			return withKeys(cmd.Context(), *db, true, func(m *apikey.Manager) error {
				text, k, err := m.Create(cmd.Context(), apikey.CreateRequest{Name: name, Scopes: ss, TTL: ttl, Tenant: tenant})
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintln(out, text)
				fmt.Fprintf(out, "created key %s (%s) with scopes %s, expires %s\n", k.ID, k.Name, k.Scopes, formatKeyTime(k.ExpiresAt, "never"))
				fmt.Fprintln(out, "store it now: it is not shown again and cannot be recovered")
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "what the key is for: 1 to 64 of A-Z a-z 0-9 _ . - (required)")
	f.StringVar(&scopes, "scopes", "", "comma-separated scopes, e.g. 'publish:room:*,disconnect' (required)")
	f.StringVar(&expires, "expires", "", "lifetime: 90d, 12w, 36h… (default: never)")
	f.StringVar(&tenant, "tenant", "", "bind the key to one tenant")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("scopes")
	return cmd
}

func apikeyListCommand(db *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeys(cmd.Context(), *db, false, func(m *apikey.Manager) error {
				keys, err := m.List(cmd.Context())
				if err != nil {
					return err
				}
				return printKeys(cmd.OutOrStdout(), keys, time.Now(), asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line instead of a table")
	return cmd
}

func apikeyRevokeCommand(db *string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key: requests using it are refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if kid, ok := apikey.KeyID(id); ok {
				id = kid // a whole key was pasted: use its id, never echo it
			}
			return withKeys(cmd.Context(), *db, false, func(m *apikey.Manager) error {
				if err := m.Revoke(cmd.Context(), id); err != nil {
					if errors.Is(err, apikey.ErrNotFound) {
						return fmt.Errorf("no key %q", logsafe.Truncate(id, 16))
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked key %s\n", id)
				return nil
			})
		},
	}
}

// withKeys opens the database at path (which must exist unless create)
// and calls fn with a key manager on it.
func withKeys(ctx context.Context, path string, create bool, fn func(*apikey.Manager) error) error {
	if !create && path != store.MemoryPath {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no database at %s (set --db)", path)
			}
			return err
		}
	}
	db, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := apikey.New(apikey.Config{Store: db.APIKeys()})
	if err != nil {
		return err
	}
	return fn(m)
}

// keyJSON is one line of `livegate apikey list --json`.
type keyJSON struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Scopes   string    `json:"scopes"`
	Tenant   string    `json:"tenant,omitempty"`
	State    string    `json:"state"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`
	Revoked  time.Time `json:"revoked,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// printKeys writes keys as a table or JSON lines. Neither holds a secret
// or a hash: apikey.Key carries neither.
func printKeys(out io.Writer, keys []apikey.Key, now time.Time, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		for _, k := range keys {
			err := enc.Encode(keyJSON{
				ID: k.ID, Name: k.Name, Scopes: k.Scopes.String(), Tenant: k.Tenant, State: k.State(now),
				Created: k.CreatedAt.UTC(), Expires: k.ExpiresAt.UTC(), Revoked: k.RevokedAt.UTC(), LastUsed: k.LastUsedAt.UTC(),
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	if len(keys) == 0 {
		_, err := fmt.Fprintln(out, "no keys")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tTENANT\tSTATE\tCREATED\tEXPIRES\tLAST USED")
	for _, k := range keys {
		tenant := k.Tenant
		if tenant == "" {
			tenant = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			k.ID, logsafe.String(k.Name), logsafe.String(k.Scopes.String()), logsafe.String(tenant), k.State(now),
			formatKeyTime(k.CreatedAt, "-"), formatKeyTime(k.ExpiresAt, "never"), formatKeyTime(k.LastUsedAt, "never"))
	}
	return tw.Flush()
}

// formatKeyTime formats t in UTC to the minute, or zero for a zero t.
func formatKeyTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}
