package livegate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/protocol"
)

// TestCoalesceWhenBehind checks Config.CoalesceDelay: after a burst (the
// connection's writes carried several frames: it was behind), the next
// publication waits for the delay before it is written; once a write
// carried a single frame the connection keeps up and the next one does
// not wait. Every publication arrives once and in order.
func TestCoalesceWhenBehind(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	e := newEnv(t, func(c *livegate.Config) { c.CoalesceDelay = delay })
	c := e.dial(t)
	connectAndSubscribe(t, e, c, "bob", true, "room:a")
	ctx := context.Background()
	next := 0
	publish := func() time.Time {
		t.Helper()
		at := time.Now()
		if _, err := e.gw.Publish(ctx, "room:a", json.RawMessage(`{"n":`+strconv.Itoa(next)+`}`)); err != nil {
			t.Fatal(err)
		}
		next++
		return at
	}
	got := 0
	// readUpTo reads frames until publication n-1 arrived.
	readUpTo := func(n int) {
		t.Helper()
		for got < n {
			b, err := c.read()
			if err != nil {
				t.Fatalf("read after %d publications: %v", got, err)
			}
			for _, f := range splitFrames(t, b) {
				if f.Push == nil {
					continue
				}
				checkN(t, f.Push, got)
				got++
			}
		}
	}
	// A burst: the writer falls behind and its writes carry many frames.
	for range 200 {
		publish()
	}
	readUpTo(200)
	// Behind: the next publication waits (for what remains of the delay
	// begun after the burst's last write, most of it).
	at := publish()
	readUpTo(next)
	behind := time.Since(at)
	if behind < delay/2 {
		t.Fatalf("publication after a burst arrived after %v, want a coalescing wait near %v", behind, delay)
	}
	// That write carried one frame: the connection keeps up again.
	at = publish()
	readUpTo(next)
	if kept := time.Since(at); kept >= behind {
		t.Fatalf("publication to a connection that keeps up took %v, as long as one that was behind (%v)", kept, behind)
	}
}

// splitFrames splits a batched message into its frames.
func splitFrames(t *testing.T, b []byte) []protocol.ServerFrame {
	t.Helper()
	var out []protocol.ServerFrame
	for _, line := range bytes.Split(b, []byte("\n")) {
		var f protocol.ServerFrame
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("frame is not JSON: %q (%v)", line, err)
		}
		out = append(out, f)
	}
	return out
}
