package livegate

import "context"

// ConnInfo identifies the client connection on whose behalf the gateway
// calls an Authorizer, a Handler or a ConnectHook.
type ConnInfo struct {
	// ID is the connection's id, the same as Request.ConnID.
	ID string
	// ClientIP is the client's address, as resolved with TrustedProxies
	// (the same as ConnectRequest.ClientIP).
	ClientIP string
}

type connInfoKey struct{}

// withConnInfo returns a context carrying info. The gateway calls it once
// per connection.
func withConnInfo(ctx context.Context, info ConnInfo) context.Context {
	return context.WithValue(ctx, connInfoKey{}, info)
}

// ConnFromContext returns the connection a context passed by the gateway
// belongs to: the context of an Authorizer, a Handler's ServeEvent and a
// ConnectHook carries it. ok is false for any other context. It lets an
// Authorizer, whose signature names only the identity and the channel,
// learn the connection's id and client IP.
func ConnFromContext(ctx context.Context) (info ConnInfo, ok bool) {
	info, ok = ctx.Value(connInfoKey{}).(ConnInfo)
	return info, ok
}
