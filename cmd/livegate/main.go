// Command livegate runs the livegate gateway.
//
//	livegate            same as `livegate dev`
//	livegate dev        dev server with the demo on 127.0.0.1:8080
//	livegate serve      run from a configuration file (production)
//	livegate config     check a configuration file, or print an example
//	livegate token      print a signed connect token for the dev secret
//	livegate load       bounded loopback load and flood test of a gateway
//	livegate audit      show the security events recorded in the database
//
// The HS256 secret comes from LIVEGATE_TOKEN_HMAC_SECRET (at least 32
// bytes); `livegate dev` generates and prints one when it is unset. The
// token audience comes from LIVEGATE_AUDIENCE (default "livegate").
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := rootCommand()
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "livegate:", err)
		os.Exit(1)
	}
}
