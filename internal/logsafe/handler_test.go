package logsafe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/internal/logsafe"
)

// hostile returns user-controlled strings an attacker would pick: a forged
// log line after a newline, ANSI escapes, Unicode line separators and bidi
// overrides, and a megabyte of text.
func hostile() map[string]string {
	return map[string]string{
		"forged line": "alice\nlevel=ERROR msg=\"admin login ok\" user=root",
		"crlf":        "alice\r\ntime=2025-01-01T00:00:00Z level=INFO msg=forged",
		"ansi":        "\x1b[2J\x1b[1;31mred\x1b[0m\x1b]0;title\x07",
		"separators":  "a\u2028b\u2029c\u0085d\u202egnp.exe",
		"megabyte":    strings.Repeat("A", 1<<20),
		"megabyte nl": strings.Repeat("x\n", 1<<19),
	}
}

// logAll logs s the ways gateway code does: as a string attribute, in
// With attributes, in nested groups, inside an error, in a Stringer, a
// slice, a LogValuer, a group name, a key and the message.
func logAll(l *slog.Logger, s string) {
	l = l.With("user", s).WithGroup("conn").With(slog.String("channel", s))
	l.Warn("denied "+s,
		slog.String("event", s),
		slog.Group("req", slog.String("ua", s), slog.Group("deep", slog.String("name", s))),
		slog.Any("err", fmt.Errorf("subscribe %s: %w", s, errors.New("denied"))),
		slog.Any("stringer", stringer(s)),
		slog.Any("list", []string{s, s}),
		slog.Any("bytes", []byte(s)),
		slog.Any("valuer", valuer(s)),
		slog.String(s, "as key"),
		slog.Int("n", 3), slog.Duration("d", time.Second),
	)
}

type stringer string

func (s stringer) String() string { return string(s) }

type valuer string

func (v valuer) LogValue() slog.Value { return slog.StringValue(string(v)) }

// maxLine bounds a sanitised line: 16 values and keys of at most
// MaxValueLen bytes plus the truncation marker, with quoting.
const maxLine = 24 * (logsafe.MaxValueLen + 8)

func TestHandlerOneBoundedLine(t *testing.T) {
	t.Parallel()
	handlers := map[string]func(io.Writer) slog.Handler{
		"text": func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
		"json": func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	}
	for hname, newHandler := range handlers {
		for name, s := range hostile() {
			t.Run(hname+"/"+name, func(t *testing.T) {
				t.Parallel()
				var buf bytes.Buffer
				logAll(slog.New(logsafe.Handler(newHandler(&buf))), s)
				out := buf.String()
				if n := strings.Count(out, "\n"); n != 1 || !strings.HasSuffix(out, "\n") {
					t.Fatalf("%d newlines, want exactly one at the end: %.300q", n, out)
				}
				if len(out) > maxLine {
					t.Fatalf("line is %d bytes, want at most %d", len(out), maxLine)
				}
				for _, bad := range []string{"\x1b", "\r", "\u2028", "\u2029", "\u0085", "\u202e", "\x07"} {
					if strings.Contains(out, bad) {
						t.Fatalf("%q reached the log: %.300q", bad, out)
					}
				}
				// The JSON handler escapes control characters itself; the
				// escaped forms must not appear either: they were replaced.
				for _, bad := range []string{`\n`, `\u001b`, `\r`} {
					if strings.Contains(out, bad) {
						t.Fatalf("escaped %s reached the log: %.300q", bad, out)
					}
				}
				if hname == "json" {
					var m map[string]any
					if err := json.Unmarshal([]byte(out), &m); err != nil {
						t.Fatalf("not one JSON object: %v", err)
					}
					conn, _ := m["conn"].(map[string]any)
					if conn["n"] != 3.0 {
						t.Errorf("conn.n = %v, want the number 3 untouched", conn["n"])
					}
				}
			})
		}
	}
}

func TestHandlerPassesCleanValues(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := slog.New(logsafe.Handler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	l.Info("connected", "user", "zoë", "n", 2, "ok", true, slog.Group("g", "k", "v"), "err", errors.New("boom"))
	want := `{"level":"INFO","msg":"connected","user":"zoë","n":2,"ok":true,"g":{"k":"v"},"err":"boom"}` + "\n"
	if got := buf.String(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestHandlerEnabledAndIdempotent(t *testing.T) {
	t.Parallel()
	inner := slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})
	h := logsafe.Handler(inner)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Fatal("Enabled does not follow the wrapped handler")
	}
	if logsafe.Handler(h) != h {
		t.Fatal("wrapping twice should return the same handler")
	}
}

func TestHandlerNilStringer(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var p *ptrStringer
	slog.New(logsafe.Handler(slog.NewTextHandler(&buf, nil))).Info("x", "p", p, "nil", nil)
	if !strings.Contains(buf.String(), "p=<unprintable>") || !strings.Contains(buf.String(), "nil=<nil>") {
		t.Fatalf("got %q", buf.String())
	}
}

type ptrStringer struct{ s string }

func (p *ptrStringer) String() string { return p.s }

func BenchmarkHandler(b *testing.B) {
	l := slog.New(logsafe.Handler(slog.NewTextHandler(io.Discard, nil)))
	err := errors.New("signature invalid")
	b.ReportAllocs()
	for b.Loop() {
		l.Warn("security event", "type", "auth_failed", "user", "alice", "ip", "192.0.2.1", "err", err)
	}
}

func ExampleHandler() {
	logger := slog.New(logsafe.Handler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // stable output for the example
			}
			return a
		},
	})))
	user := "mallory\nlevel=INFO msg=\"login ok\" user=admin"
	logger.Warn("login failed", "user", user)
	// Output: level=WARN msg="login failed" user="mallory�level=INFO msg=\"login ok\" user=admin"
}
