package logsafe

import (
	"context"
	"fmt"
	"log/slog"
)

// Limits applied by Handler, in bytes before the truncation marker.
const (
	// MaxMessageLen bounds a record's message.
	MaxMessageLen = 1024
	// MaxValueLen bounds each attribute value.
	MaxValueLen = 1024
	// MaxKeyLen bounds each attribute key and group name.
	MaxKeyLen = 64
)

// Handler returns a slog.Handler that sanitises every record before passing
// it to next: the message, every attribute key and string value — including
// those added with Logger.With and nested in groups — and every group name
// go through Truncate, so no value can break a log line, inject terminal
// escapes or make a line unboundedly long. Wrap a logger's handler once, at
// start-up, and no call site can forget to sanitise:
//
//	logger := slog.New(logsafe.Handler(slog.NewTextHandler(os.Stderr, nil)))
//
// Values of kind Any (errors, Stringers, structs, slices…) are formatted
// first — an error's Error text, a String method, otherwise %+v — and
// sanitised as strings, since their text may carry user input; log
// structured data as groups to keep its structure. LogValuers are resolved
// first. Numbers, booleans, times and durations pass through unchanged.
func Handler(next slog.Handler) slog.Handler {
	if h, ok := next.(*handler); ok {
		return h // already sanitising
	}
	return &handler{next: next}
}

type handler struct {
	next slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, Truncate(r.Message, MaxMessageLen), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(sanitizeAttr(a))
		return true
	})
	return h.next.Handle(ctx, nr)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = sanitizeAttr(a)
	}
	return &handler{next: h.next.WithAttrs(clean)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(Truncate(name, MaxKeyLen))}
}

// sanitizeAttr returns a with its key and value sanitised.
func sanitizeAttr(a slog.Attr) slog.Attr {
	a.Key = Truncate(a.Key, MaxKeyLen)
	a.Value = sanitizeValue(a.Value.Resolve())
	return a
}

func sanitizeValue(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(Truncate(v.String(), MaxValueLen))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]slog.Attr, len(group))
		for i, a := range group {
			clean[i] = sanitizeAttr(a)
		}
		return slog.GroupValue(clean...)
	case slog.KindAny:
		return slog.StringValue(Truncate(formatAny(v.Any()), MaxValueLen))
	default: // numbers, bool, time, duration: nothing to escape
		return v
	}
}

// formatAny returns the text a handler would print for x.
func formatAny(x any) (s string) {
	defer func() {
		if recover() != nil { // e.g. a nil pointer with a String method
			s = "<unprintable>"
		}
	}()
	switch x := x.(type) {
	case nil:
		return "<nil>"
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	case []byte:
		return string(x)
	default:
		return fmt.Sprintf("%+v", x)
	}
}
