package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/livegate/livegate/config"
)

// errConfigInvalid is returned by `config check` after it printed the
// problems, so main only sets the exit status.
var errConfigInvalid = errors.New("configuration refused")

func configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file, or print an example",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(configCheckCommand(), configExampleCommand())
	return cmd
}

func configCheckCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a configuration file (with the LIVEGATE_* environment) and list every problem",
		Long: `Load and validate the file as 'livegate serve' would, with the
LIVEGATE_* variables of the environment applied, reading the secret files
it names. Every problem is listed, each with its key (and line). The exit
status is 0 when the file is valid, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfigCheck(path, os.Environ(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (YAML); required")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// runConfigCheck prints the problems of the file at path to out.
func runConfigCheck(path string, env []string, out io.Writer) error {
	f, err := loadServeConfig(path, env)
	if err != nil {
		problems := problemList(err)
		fmt.Fprintf(out, "%s: %d problem(s):\n", path, len(problems))
		for _, p := range problems {
			fmt.Fprintln(out, "  "+p)
		}
		return errConfigInvalid
	}
	for _, w := range f.Warnings() {
		fmt.Fprintln(out, "warning: "+w)
	}
	fmt.Fprintf(out, "%s: ok\n", path)
	return nil
}

func configExampleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "example",
		Short: "Print a commented example configuration with every key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), config.Example())
			return err
		},
	}
}
