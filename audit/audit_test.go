package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/livegate/livegate/audit"
)

func TestSlogSinkSanitises(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := audit.NewSlogSink(slog.New(slog.NewTextHandler(&buf, nil)))
	s.Record(context.Background(), audit.Event{
		Type:   audit.TypeAuthFailed,
		User:   "mallory\nlevel=INFO msg=\"all good\"",
		Detail: "\x1b[2J" + strings.Repeat("A", 1<<20),
		Reason: "signature",
	})
	out := buf.String()
	if n := strings.Count(out, "\n"); n != 1 {
		t.Fatalf("want exactly one log line, got %d: %q", n, out)
	}
	if strings.Contains(out, "\x1b") {
		t.Fatal("ANSI escape reached the log")
	}
	if len(out) > 2048 {
		t.Fatalf("log line not bounded: %d bytes", len(out))
	}
}

func ExampleSlogSink() {
	var buf bytes.Buffer
	sink := audit.NewSlogSink(slog.New(slog.NewJSONHandler(&buf, nil)))
	sink.Record(context.Background(), audit.Event{
		Type: audit.TypeTokenReplayed, User: "alice\nforged", Reason: "replay",
	})
	var m map[string]any
	_ = json.Unmarshal(buf.Bytes(), &m)
	fmt.Println(m["msg"], m["type"], m["user"])
	// Output: security event token_replayed alice�forged
}
