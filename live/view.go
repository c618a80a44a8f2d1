package live

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"

	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

// View defines a live view. Register it with Registry.Register.
type View struct {
	// Name identifies the view in pages and joins; it must match
	// ^[a-z][a-z0-9_]{0,63}$.
	Name string

	// Template renders the view, executed with the socket's assigns (a
	// map[string]any, so the template reads {{.count}}). html/template
	// escapes every value for its context: this is the only way a view
	// produces HTML.
	//
	// The one escape hatch is an assign of type template.HTML (or
	// template.HTMLAttr, template.JS, template.URL, …), which is inserted
	// as it is. It is dangerous: whatever such a value holds runs in the
	// page with the user's session, so a template.HTML built from user
	// input (a chat message, a profile field, a query parameter) is a
	// stored or reflected XSS. Use it only for markup your own code
	// produced from trusted sources, never to "let users format" text.
	Template *template.Template

	// Mount prepares a new instance: it reads the verified session data
	// and the (client-controlled) params, and sets the initial assigns. It
	// runs for the first render over HTTP (Registry.Render, where the
	// socket has no Instance) and again at each join over the WebSocket,
	// where ctx lives as long as the instance. An error refuses the render
	// or join. Nil: no mount, the view starts with no assigns.
	Mount func(ctx context.Context, s *Socket, session Session, params json.RawMessage) error

	// Events are the only events the view accepts, by name (each must
	// match ^[a-z][a-z0-9_]{0,63}$). Build handlers with Event.
	Events map[string]*Handler
}

// Handler is an event handler built by Event.
type Handler struct {
	call func(ctx context.Context, s *Socket, payload json.RawMessage) error
	opts eventOptions
}

// EventOption configures one event handler.
type EventOption func(*eventOptions)

type eventOptions struct {
	access *policy.Access
	rate   float64
	burst  int
}

// Require restricts an event to subjects that a's groups, permissions and
// rule allow (Mode must be ModeAuthenticated or zero, which means
// authenticated). It is checked before the payload is decoded; a refused
// subject gets ErrForbidden, which clients cannot tell from an unknown
// event.
func Require(a policy.Access) EventOption {
	return func(o *eventOptions) { o.access = &a }
}

// RateLimit limits an event to perSecond calls a second with bursts of
// burst, per view instance. A call over it returns ErrRateLimited without
// running the handler.
func RateLimit(perSecond float64, burst int) EventOption {
	return func(o *eventOptions) { o.rate, o.burst = perSecond, burst }
}

// Validator is implemented by payload types that check their own fields;
// Event calls Validate after decoding.
type Validator interface {
	Validate() error
}

// Event builds a handler whose payload is decoded into T with unknown
// fields, wrong types and trailing data rejected (protocol.Unmarshal); if
// T or *T implements Validator, Validate must return nil. Either failure
// returns ErrBadPayload without calling fn.
//
// The payload never touches the assigns by itself: fn decides what to
// Assign. A payload key that T does not declare — "__proto__",
// "constructor", the name of an unexported field — is refused, not
// ignored. Use a struct for T; a map type would accept any key.
//
// fn runs with the instance locked and changes the socket directly. It
// may call Update on any instance, this one included: Update never blocks
// (see Instance.Update).
func Event[T any](fn func(ctx context.Context, s *Socket, payload T) error, opts ...EventOption) *Handler {
	h := &Handler{call: func(ctx context.Context, s *Socket, raw json.RawMessage) error {
		var p T
		if len(raw) == 0 {
			raw = json.RawMessage("null")
		}
		if err := protocol.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("%w: %v", ErrBadPayload, err)
		}
		if v, ok := any(&p).(Validator); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("%w: %v", ErrBadPayload, err)
			}
		} else if v, ok := any(p).(Validator); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("%w: %v", ErrBadPayload, err)
			}
		}
		return fn(ctx, s, p)
	}}
	for _, opt := range opts {
		opt(&h.opts)
	}
	return h
}
