package livegate

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/ratelimit"
)

// Request is one client event delivered to a Handler.
type Request struct {
	// ConnID identifies the connection on this node.
	ConnID string
	// ClientIP is the client's address, as resolved with TrustedProxies
	// (the same as ConnectRequest.ClientIP).
	ClientIP string
	// Identity is what the connection's verified token says about the user.
	Identity auth.Identity
	// Event is the event name.
	Event string
	// Payload is the raw JSON payload, at most Config.MaxInboundFrame bytes.
	Payload json.RawMessage
}

// Handler handles one kind of client event. Its context carries the
// connection's ConnInfo (see ConnFromContext). ServeEvent's result is encoded
// as JSON and sent as the reply's result. A returned error becomes the
// generic "internal" error unless it is (or wraps) an error from NewError.
// A panic is recovered and also answered "internal".
type Handler interface {
	ServeEvent(ctx context.Context, req *Request) (any, error)
}

// Validator is implemented by payload types that check their own fields;
// HandlerFunc calls Validate after decoding.
type Validator interface {
	Validate() error
}

// HandlerFunc adapts a function taking a typed payload to Handler. The
// payload is decoded into T with unknown fields rejected; if T (or *T)
// implements Validator, Validate must return nil. Either failure answers
// the client "bad_request" without calling the function.
type HandlerFunc[T any] func(ctx context.Context, req *Request, payload T) (any, error)

// ServeEvent decodes and validates the payload, then calls f.
func (f HandlerFunc[T]) ServeEvent(ctx context.Context, req *Request) (any, error) {
	var p T
	raw := req.Payload
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	if err := decodePayload(raw, &p); err != nil {
		return nil, badPayload(err)
	}
	var v any = &p
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, badPayload(err)
		}
	} else if val, ok := any(p).(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, badPayload(err)
		}
	}
	return f(ctx, req, p)
}

// payloadError carries the reason a payload was refused; the client sees
// only bad_request.
type payloadError struct{ err error }

func (e *payloadError) Error() string { return "livegate: bad payload: " + e.err.Error() }
func (e *payloadError) Unwrap() []error {
	return []error{e.err, protocol.NewError(protocol.CodeBadRequest)}
}

func badPayload(err error) error { return &payloadError{err: err} }

// HandleOption configures one handler registration.
type HandleOption func(*handleOptions)

type handleOptions struct {
	access  *policy.Access
	rate    float64
	burst   int
	perUser *ratelimit.Rule
}

// RateLimitPerUser limits a handler per user across all of the user's
// connections (on this node with the in-memory limiter), in addition to
// any RateLimit per connection. Calls over it are answered rate_limited and
// count as warnings.
func RateLimitPerUser(rule ratelimit.Rule) HandleOption {
	return func(o *handleOptions) { o.perUser = &rule }
}

// RateLimit limits a handler to perSecond calls a second with bursts of
// burst, per connection. A call over the limit is answered rate_limited
// and counts as a warning towards the 4429 close, like the connection's
// own command limit; other handlers are unaffected.
func RateLimit(perSecond float64, burst int) HandleOption {
	return func(o *handleOptions) { o.rate, o.burst = perSecond, burst }
}

// Require restricts a handler to connections that a's groups, permissions
// and rule allow (Mode must be ModeAuthenticated or zero; UserLimited is
// not allowed). It is checked before the payload is decoded, and a refused
// connection gets the same reply as for an unknown event.
func Require(a policy.Access) HandleOption {
	return func(o *handleOptions) { o.access = &a }
}

type registeredHandler struct {
	name    string
	h       Handler
	guard   *policy.Guard
	rate    float64
	burst   int
	perUser ratelimit.Limiter // nil: no per-user limit
}

// call runs the handler, turning a panic into an error.
func (rh *registeredHandler) call(ctx context.Context, req *Request) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return rh.h.ServeEvent(ctx, req)
}

type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("livegate: handler panic: %v", e.value) }

// decodePayload decodes a payload into v (a pointer) with unknown fields
// rejected. For flat struct types — fields of basic kinds, slices and maps
// of them — it checks the keys exactly and uses the faster json.Unmarshal;
// other types go through the strict decoder.
func decodePayload(raw []byte, v any) error {
	if keys, ok := flatKeys(reflect.TypeOf(v).Elem()); ok {
		if err := protocol.CheckObjectKeys(raw, keys); err != nil {
			return err
		}
		return json.Unmarshal(raw, v)
	}
	return protocol.Unmarshal(raw, v)
}

var flatSchemas sync.Map // reflect.Type → flatSchema

type flatSchema struct {
	keys []string
	ok   bool
}

// flatKeys returns the JSON keys of a flat struct type.
func flatKeys(t reflect.Type) ([]string, bool) {
	if s, ok := flatSchemas.Load(t); ok {
		fs := s.(flatSchema)
		return fs.keys, fs.ok
	}
	fs := flatSchema{}
	if t.Kind() == reflect.Struct {
		fs.ok = true
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				fs.ok = false
				break
			}
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && opts == "" {
				continue
			}
			if name == "" {
				// encoding/json would match the field name in any case;
				// leave such types to the strict decoder.
				fs.ok = false
				break
			}
			if !flatKind(f.Type) {
				fs.ok = false
				break
			}
			fs.keys = append(fs.keys, name)
		}
	}
	flatSchemas.Store(t, fs)
	return fs.keys, fs.ok
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

func flatKind(t reflect.Type) bool {
	if t == rawMessageType {
		return true
	}
	if t.Implements(reflect.TypeFor[json.Unmarshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return flatKind(t.Elem())
	case reflect.Map:
		return t.Key().Kind() == reflect.String && flatKind(t.Elem())
	}
	return false
}
