// Package proxy puts an HTTP backend behind a livegate gateway, the way an
// API gateway fronts a service: the gateway keeps the WebSockets, and
// forwards the client actions that need application knowledge — who a
// connecting client is, whether it may subscribe to a channel, what an
// event does — to the backend as signed JSON POST requests.
//
// # Wiring
//
// New checks a Config and returns a Proxy. Its adapters plug into a
// gateway:
//
//	px, err := proxy.New(proxy.Config{Backend: "https://app.internal/livegate", Secret: secret,
//		Routes: proxy.Routes{Connect: true, Subscribe: true, Disconnect: true, Events: []string{"send"}}})
//	gw, err := livegate.New(livegate.Config{ ..., ConnectHook: px.ConnectHook(), OnDisconnect: px.OnDisconnect})
//	err = gw.Authorize("room", px.Authorizer()) // per namespace the backend decides
//	err = px.Register(gw)                       // one handler per listed event
//
// Only events listed in Routes.Events get a handler; any other event is
// answered not_available by the gateway and never reaches the backend.
//
// # Signing
//
// Every request carries Livegate-Timestamp, Livegate-Nonce and
// Livegate-Signature headers (see Sign for the exact algorithm). A Go
// backend checks them with a Verifier, which compares in constant time,
// refuses timestamps outside a skew window (default five minutes) and
// remembers nonces in a bounded cache to refuse replays. The
// examples/node and examples/python directories of the repository hold
// the same check for Node and Python backends.
//
// # Failures
//
// A backend that is down, slow, answers a status other than 200, or
// answers anything but the route's strict JSON (unknown fields, duplicate
// keys, trailing data, more than Config.MaxResponseBytes) is a failure: the
// client gets a generic error (close 4500 at connect, "forbidden" for a
// subscription, "unavailable" for an event), nothing is granted, and the
// detail is logged. Consecutive failures open a circuit breaker, which then
// refuses calls without sending them until it lets a probe through.
// An explicit deny from the backend is not a failure: a connect answered
// {"deny": true} closes 4403.
//
// # Headers
//
// A connect request carries the upgrade request's Cookie, Authorization,
// User-Agent and Accept-Language headers (Config.ForwardHeaders), never
// hop-by-hop headers and never a client-supplied Livegate-* header. The
// backend gets the verified token's claims, not the raw token, unless
// Config.ForwardToken is set.
//
// A Proxy is safe for concurrent use.
package proxy
