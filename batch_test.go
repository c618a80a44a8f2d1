package livegate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/protocol"
)

// TestBatchOptIn checks message batching, which a client asks for at
// connect: a client that did not ask gets exactly one JSON frame per
// message, even for publication data holding raw newlines; a client that
// asked gets the connect result's "batch":true, then messages of frames
// separated by "\n", each a complete JSON frame, every publication once
// and in order, several frames to a message under a burst.
func TestBatchOptIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	plain := e.connect(t, "alice")
	batched := e.dial(t)
	batched.send(`{"id":1,"method":"connect","params":{"token":"` + e.token(t, "bob") + `","batch":true}}`)
	var res protocol.ConnectResult
	if err := json.Unmarshal(batched.reply(1).Result, &res); err != nil || !res.Batch {
		t.Fatalf("connect result %+v (%v): want batch true", res, err)
	}
	for _, c := range []*rawConn{plain, batched} {
		c.sendCmd(2, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: "room:a"})
		if r := c.reply(2); r.Error != nil {
			t.Fatalf("subscribe: %+v", r.Error)
		}
	}
	ctx := context.Background()
	// JSON whitespace, newlines included, is valid in publication data.
	if _, err := e.gw.Publish(ctx, "room:a", json.RawMessage("{\n \"n\": 0\n}")); err != nil {
		t.Fatal(err)
	}
	const n = 200 // well within the send queue of a client not reading yet
	for i := 1; i < n; i++ {
		if _, err := e.gw.Publish(ctx, "room:a", json.RawMessage(`{"n":`+strconv.Itoa(i)+`}`)); err != nil {
			t.Fatal(err)
		}
	}

	// Plain client: one frame per message, data as published.
	for i := 0; i < n; i++ {
		b, err := plain.read()
		if err != nil {
			t.Fatalf("plain read %d: %v", i, err)
		}
		var f protocol.ServerFrame
		if err := json.Unmarshal(b, &f); err != nil || f.Push == nil {
			t.Fatalf("plain message %d is not one push frame: %q", i, b)
		}
		if i == 0 && !bytes.Contains(f.Push.Data, []byte("\n")) {
			t.Fatalf("plain client's data was altered: %q", f.Push.Data)
		}
		checkN(t, f.Push, i)
	}

	// Batching client: split on newlines.
	frames, messages := 0, 0
	for frames < n {
		b, err := batched.read()
		if err != nil {
			t.Fatalf("batched read after %d frames: %v", frames, err)
		}
		messages++
		if len(b) > livegate.DefaultMaxOutboundMessage {
			t.Fatalf("message of %d bytes exceeds MaxOutboundMessage", len(b))
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var f protocol.ServerFrame
			if err := json.Unmarshal(line, &f); err != nil || f.Push == nil {
				t.Fatalf("batched frame %d is not a push: %q (%v)", frames, line, err)
			}
			checkN(t, f.Push, frames)
			frames++
		}
	}
	if messages >= n {
		t.Fatalf("%d frames came in %d messages: nothing was batched", n, messages)
	}
	t.Logf("%d frames in %d messages", n, messages)
}

// connectAndSubscribe connects c as user (asking for batched messages or
// not) with command id 1 and subscribes it to channel with id 2.
func connectAndSubscribe(t *testing.T, e *env, c *rawConn, user string, batch bool, channel string) {
	t.Helper()
	c.send(`{"id":1,"method":"connect","params":{"token":"` + e.token(t, user) + `","batch":` + strconv.FormatBool(batch) + `}}`)
	if r := c.reply(1); r.Error != nil {
		t.Fatalf("connect: %+v", r.Error)
	}
	c.sendCmd(2, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: channel})
	if r := c.reply(2); r.Error != nil {
		t.Fatalf("subscribe: %+v", r.Error)
	}
}

func checkN(t *testing.T, p *protocol.Push, want int) {
	t.Helper()
	var v struct{ N int }
	if err := json.Unmarshal(p.Data, &v); err != nil || v.N != want || p.Offset != uint64(want+1) {
		t.Fatalf("push %+v: want n %d at offset %d", p, want, want+1)
	}
}

// TestBatchParamStrict checks that "batch" is a connect parameter only:
// sent with another method it is a malformed frame (close 4400), like any
// parameter the method does not take.
func TestBatchParamStrict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(t, "alice")
	c.send(`{"id":2,"method":"subscribe","params":{"channel":"room:a","batch":true}}`)
	c.expectClose(protocol.CloseMalformed)
}

// TestMessageLengths checks that messages of every WebSocket length
// encoding (7-bit, 16-bit and 64-bit lengths, and their boundaries) reach
// a real client intact, one frame per message and batched, with
// compression off (the gateway frames its messages itself) and on (the
// library compresses and frames them), and that pings still flow
// between them.
func TestMessageLengths(t *testing.T) {
	t.Parallel()
	// Message lengths at the boundaries of the frame length encodings.
	targets := []int{125, 126, 127, 65535, 65536, 65537, 100000}
	for _, compress := range []bool{false, true} {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("compress=%v/batch=%v", compress, batch), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, func(c *livegate.Config) {
					c.EnableCompression = compress
					c.PingInterval = 20 * time.Millisecond
				})
				c := e.dial(t)
				if compress {
					c = dialCompressed(t, e.url)
				}
				connectAndSubscribe(t, e, c, "alice", batch, "room:len")
				ctx := context.Background()
				// A probe gives the size of a push frame around its data
				// (offsets stay one digit, so it does not change).
				if _, err := e.gw.Publish(ctx, "room:len", json.RawMessage(`""`)); err != nil {
					t.Fatal(err)
				}
				probe, err := c.read()
				if err != nil {
					t.Fatal(err)
				}
				wrap := len(probe) - 2
				want := []string{`""`}
				for i, n := range targets {
					d := `"` + strings.Repeat(string(rune('a'+i)), n-wrap-2) + `"`
					want = append(want, d)
					if _, err := e.gw.Publish(ctx, "room:len", json.RawMessage(d)); err != nil {
						t.Fatal(err)
					}
				}
				got := 1
				for got < len(want) {
					b, err := c.read()
					if err != nil {
						t.Fatalf("read after %d pushes: %v", got, err)
					}
					if !batch && len(b) != targets[got-1] {
						t.Fatalf("message %d has %d bytes, want %d", got, len(b), targets[got-1])
					}
					for _, line := range bytes.Split(b, []byte("\n")) {
						var f protocol.ServerFrame
						if err := json.Unmarshal(line, &f); err != nil || f.Push == nil {
							t.Fatalf("message is not a push: %.100q (%v)", line, err)
						}
						if string(f.Push.Data) != want[got] || f.Push.Offset != uint64(got+1) {
							t.Fatalf("push %d: %d bytes at offset %d, want %d bytes at %d",
								got, len(f.Push.Data), f.Push.Offset, len(want[got]), got+1)
						}
						got++
					}
				}
				// Pings (library control frames) interleave with the
				// gateway's messages; the connection stays usable.
				time.Sleep(60 * time.Millisecond)
				c.sendCmd(3, protocol.MethodUnsubscribe, protocol.UnsubscribeParams{Channel: "room:len"})
				if r := c.reply(3); r.Error != nil {
					t.Fatalf("unsubscribe: %+v", r.Error)
				}
			})
		}
	}
}

// dialCompressed dials url offering permessage-deflate and fails unless
// the server accepted it.
func dialCompressed(t *testing.T, url string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols:    []string{protocol.Subprotocol},
		CompressionMode: websocket.CompressionNoContextTakeover,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("compression not negotiated (extensions %q)", ext)
	}
	ws.SetReadLimit(1 << 20)
	return &rawConn{t: t, ws: ws}
}
