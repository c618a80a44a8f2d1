package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/logsafe"
)

// ConnectHook returns the hook for livegate.Config.ConnectHook, or nil
// when Routes.Connect is off. The backend's answer becomes the
// connection's identity and server-side subscriptions. An explicit
// {"deny": true} wraps livegate.ErrConnectDenied (close 4403); any backend
// failure is a plain error (close 4500) and grants nothing.
func (p *Proxy) ConnectHook() livegate.ConnectHook {
	if !p.cfg.Routes.Connect {
		return nil
	}
	return func(ctx context.Context, req *livegate.ConnectRequest) (livegate.ConnectResult, error) {
		id, channels, err := p.connect(ctx, req.ConnID, req.ClientIP, req.Header, req.Identity, req.Token, req.Data)
		switch {
		case errors.Is(err, ErrDenied):
			return livegate.ConnectResult{}, fmt.Errorf("%w: %w", livegate.ErrConnectDenied, err)
		case err != nil:
			p.log.Warn("proxy: connect failed", "conn", req.ConnID, "err", err.Error())
			return livegate.ConnectResult{}, err
		}
		return livegate.ConnectResult{Identity: id, Channels: channels}, nil
	}
}

// Authorizer returns the subscribe callback to register with
// gw.Authorize for each namespace whose subscriptions the backend decides,
// or nil when Routes.Subscribe is off. {"allow": false} and every backend
// failure refuse the subscription (the client gets "forbidden"). The
// connection's id and client IP come from the context the gateway passes
// (livegate.ConnFromContext); called with any other context, it refuses
// without asking the backend.
func (p *Proxy) Authorizer() livegate.Authorizer {
	if !p.cfg.Routes.Subscribe {
		return nil
	}
	return func(ctx context.Context, id auth.Identity, channel string) error {
		conn, _ := livegate.ConnFromContext(ctx)
		err := p.subscribe(ctx, conn.ID, conn.ClientIP, id, channel)
		if err != nil && !errors.Is(err, ErrDenied) {
			p.log.Warn("proxy: subscribe failed", "conn", conn.ID, "user", id.User, "channel", channel, "err", err.Error())
		}
		return err
	}
}

// Register registers with gw one handler per name in Routes.Events. Each
// forwards the event to the backend, publishes the backend's publications
// through gw.Publish, then answers the client with the backend's reply.
// Events not listed have no handler, so the gateway answers them
// not_available and they never reach the backend.
func (p *Proxy) Register(gw *livegate.Gateway, opts ...livegate.HandleOption) error {
	for _, name := range p.cfg.Routes.Events {
		if err := gw.Handle(name, &eventHandler{p: p, gw: gw, name: name}, opts...); err != nil {
			return fmt.Errorf("proxy: register %q: %w", name, err)
		}
	}
	return nil
}

// OnDisconnect is the function for livegate.Config.OnDisconnect. With
// Routes.Disconnect it tells the backend, within Config.Timeout; the
// answer is ignored and a failure is logged.
func (p *Proxy) OnDisconnect(info livegate.DisconnectInfo) {
	err := p.disconnect(context.Background(), info.ConnID, info.ClientIP, info.Identity, info.Code, info.Reason)
	if err != nil {
		p.log.Warn("proxy: disconnect notification failed", "conn", info.ConnID, "err", err.Error())
	}
}

// eventHandler forwards one event name.
type eventHandler struct {
	p    *Proxy
	gw   *livegate.Gateway
	name string
}

// passCodes are the error codes a backend may send to a client.
var passCodes = map[string]bool{
	livegate.CodeBadRequest: true, livegate.CodeForbidden: true,
	livegate.CodeRateLimited: true, livegate.CodeUnavailable: true,
}

func (h *eventHandler) ServeEvent(ctx context.Context, req *livegate.Request) (any, error) {
	if req.Event != h.name {
		return nil, fmt.Errorf("proxy: handler for %q got %q", h.name, logsafe.Truncate(req.Event, 64))
	}
	resp, err := h.p.event(ctx, req.ConnID, req.ClientIP, req.Identity, h.name, req.Payload)
	if err != nil {
		h.p.log.Warn("proxy: event failed", "event", h.name, "conn", req.ConnID, "err", err.Error())
		return nil, &clientError{err: err, code: livegate.NewError(livegate.CodeUnavailable)}
	}
	if resp.Error != "" {
		if !passCodes[resp.Error] {
			h.p.log.Warn("proxy: backend sent an error code clients may not see", "event", h.name, "code", resp.Error)
		}
		return nil, livegate.NewError(resp.Error)
	}
	for _, pub := range resp.Publish {
		var opts []livegate.PublishOption
		if pub.Tenant != "" {
			opts = append(opts, livegate.WithTenant(pub.Tenant))
		}
		if _, err := h.gw.Publish(ctx, pub.Channel, pub.Data, opts...); err != nil {
			h.p.log.Error("proxy: publish requested by backend failed", "event", h.name, "channel", pub.Channel, "err", err.Error())
			return nil, fmt.Errorf("proxy: publish to %q: %w", logsafe.Truncate(pub.Channel, 128), err)
		}
	}
	if len(resp.Reply) == 0 {
		return nil, nil
	}
	return resp.Reply, nil
}

// clientError carries a failure's detail for the log and a generic
// protocol error for the client.
type clientError struct {
	err  error
	code error
}

func (e *clientError) Error() string   { return e.err.Error() }
func (e *clientError) Unwrap() []error { return []error{e.err, e.code} }
