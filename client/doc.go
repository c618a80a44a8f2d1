// Package client is a Go client for livegate gateways speaking protocol v1
// (subprotocol "livegate.v1"; see docs/protocol.md and package protocol).
//
// Create a Client with New, open the first connection with Connect, then
// subscribe to channels, call server events and publish:
//
//	c, err := client.New(client.Config{
//		URL:   "wss://example.com/ws",
//		Token: fetchToken, // called for every connect and refresh
//	})
//	if err := c.Connect(ctx); err != nil {
//		// e.g. a *client.CloseError with code 4401 for a bad token
//	}
//	defer c.Close()
//	sub, err := c.Subscribe(ctx, "room:lobby", func(p client.Push) { ... })
//	err = c.Call(ctx, "say", Say{Text: "hi"}, &reply)
//
// After a successful Connect the client keeps itself connected until Close:
// when the server closes the connection it follows protocol.AdviceFor the
// close code (reconnect with jittered exponential back-off, fetch a new
// token first, or stop for good), resubscribes every subscription from the
// last stream position it saw and applies the publications the server
// recovered, so the application sees each publication once and in order.
// When the server cannot recover what was missed, the subscription's
// WithRecoveryReset hook tells the application to reload its state. Before
// the connection's token expires the client fetches a new one and sends
// "refresh".
//
// Concurrency: every method of Client and Subscription is safe for
// concurrent use. Each connection has one reader goroutine; it decodes
// server frames, routes replies to the waiting calls and calls each
// subscription's push callback, in stream order. Push callbacks and
// reset hooks of all subscriptions therefore run one at a time;
// Config.OnState (called in order, one at a time) and Config.OnError run
// on the client's other goroutines and may overlap with them. Every
// callback must return quickly and must not call blocking Client or
// Subscription methods (Call, Publish, Subscribe, Unsubscribe, Close)
// directly, because the reply those methods wait for is read, or the
// reconnection they wait for is made, by the goroutine the callback is
// blocking. Hand work to another goroutine instead.
//
// Calls made while the client is reconnecting wait for the next
// connection, bounded by their context. Calls in flight when a connection
// is lost fail with an error that wraps ErrDisconnected and the reason
// (for example a *CloseError); they are not retried, since the server may
// or may not have run them. Close stops everything and waits for the
// client's goroutines to finish.
package client
