// Package livegate is a secure-by-default real-time gateway for web
// applications.
//
// A Gateway terminates WebSocket connections speaking protocol v1
// (subprotocol "livegate.v1", see docs/protocol.md), authenticates each with
// a short-lived signed token, routes client events to explicitly registered
// handlers, and fans server publications out over channels with per-channel
// history so reconnecting clients recover what they missed.
//
// Start with New, register handlers with Gateway.Handle, mount the gateway
// on a mux and publish with Gateway.Publish:
//
//	gw, err := livegate.New(livegate.Config{
//		TokenHMACSecret: secret, // at least 32 bytes
//		Namespaces: []policy.NamespaceConfig{
//			{Name: "room", Subscribe: policy.SubscribeAuthenticated, HistorySize: 100},
//		},
//	})
//	gw.Handle("say", livegate.HandlerFunc[Say](say))
//	mux.Handle("/ws", gw)
//	defer gw.Shutdown(ctx)
//
// Everything is denied unless configured: a namespace must be declared
// before its channels can be used, clients may not publish unless the
// namespace allows it, and only registered event names run.
//
// Live views (package live) are server-rendered pages that update
// themselves: set Config.Views to a live.Registry, render the view into the
// page with Registry.Render next to the CSRF token from Gateway.CSRFToken,
// and the browser client joins it over the socket; every join and view
// event is CSRF-checked and the view's session token must be for the
// connection's user.
//
// Concurrency: every Gateway method is safe for concurrent use. Each
// connection has one reader goroutine; that connection's commands, event
// handlers included, run one at a time and in order (on pooled goroutines
// the reader waits for, so that an idle reader keeps a small stack). A
// writer goroutine drains the connection's bounded queue while it has
// frames, sending each batch with one write; a client that cannot keep up
// is disconnected rather than buffered without bound. Handlers of different connections run concurrently and should
// return quickly.
package livegate
