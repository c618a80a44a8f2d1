// Package wstest is a WebSocket client for tests that speaks livegate's
// wire protocol (docs/protocol.md) by hand, frame by frame, so that a test
// controls exactly what is sent and sees exactly what the gateway answers.
//
// Every method fails the test (t.Fatal) on a transport error, except
// TryDial and Next, which return it. Every read and write gives up after
// Timeout, so a test that waits for a frame that never comes fails
// instead of hanging.
package wstest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate/protocol"
)

// Timeout bounds each dial, read and write. It is generous: it only ends
// a test that would otherwise hang.
const Timeout = 10 * time.Second

// ReadLimit is the largest frame a Conn reads.
const ReadLimit = 1 << 20

// URL returns the WebSocket endpoint (/ws) of the gateway served at
// httpURL, such as an httptest.Server's URL.
func URL(httpURL string) string {
	return "ws" + strings.TrimPrefix(httpURL, "http") + "/ws"
}

// Conn is one WebSocket connection speaking the wire protocol. It is for
// one goroutine at a time.
type Conn struct {
	t testing.TB
	// WS is the underlying connection, for tests that close it or write
	// something other than a command.
	WS     *websocket.Conn
	lastID uint64
}

// Dial opens a WebSocket to url (a ws:// URL) with livegate's
// subprotocol and the given upgrade request headers (nil for none). The
// connection is closed when the test ends.
func Dial(t testing.TB, url string, header http.Header) *Conn {
	t.Helper()
	c, err := TryDial(t, url, header)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c
}

// TryDial is Dial returning the error, for tests that expect the upgrade
// to be refused.
func TryDial(t testing.TB, url string, header http.Header) (*Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}, HTTPHeader: header})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(ReadLimit)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &Conn{t: t, WS: ws}, nil
}

// Send writes frame as one text message, as it is.
func (c *Conn) Send(frame string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.WS.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Command sends the command id with method and params (encoded as JSON).
func (c *Conn) Command(id uint64, method string, params any) {
	c.t.Helper()
	p, err := json.Marshal(params)
	if err != nil {
		c.t.Fatalf("encode %s params: %v", method, err)
	}
	b, err := json.Marshal(protocol.Command{ID: id, Method: method, Params: p})
	if err != nil {
		c.t.Fatalf("encode %s: %v", method, err)
	}
	c.lastID = max(c.lastID, id)
	c.Send(string(b))
}

// Next reads the next frame; it returns the read error, such as the
// server's close.
func (c *Conn) Next() (protocol.ServerFrame, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	_, b, err := c.WS.Read(ctx)
	if err != nil {
		return protocol.ServerFrame{}, err
	}
	var f protocol.ServerFrame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("bad frame %s: %v", b, err)
	}
	return f, nil
}

// Frame reads the next frame, reply or push.
func (c *Conn) Frame() protocol.ServerFrame {
	c.t.Helper()
	f, err := c.Next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// Reply reads until the reply to command id, skipping pushes and other
// replies.
func (c *Conn) Reply(id uint64) protocol.ServerFrame {
	c.t.Helper()
	for {
		f, err := c.Next()
		if err != nil {
			c.t.Fatalf("waiting for reply %d: %v", id, err)
		}
		if f.Push == nil && f.ID == id {
			return f
		}
	}
}

// Call sends a command with the next id (one more than the highest sent
// by Command or Call) and returns its reply.
func (c *Conn) Call(method string, params any) protocol.ServerFrame {
	c.t.Helper()
	id := c.lastID + 1
	c.Command(id, method, params)
	return c.Reply(id)
}

// Connect sends connect with params and returns its result; an error
// reply fails the test.
func (c *Conn) Connect(params protocol.ConnectParams) protocol.ConnectResult {
	c.t.Helper()
	f := c.Call(protocol.MethodConnect, params)
	if f.Error != nil {
		c.t.Fatalf("connect: %+v", f.Error)
	}
	var res protocol.ConnectResult
	if err := json.Unmarshal(f.Result, &res); err != nil {
		c.t.Fatalf("connect result %s: %v", f.Result, err)
	}
	return res
}

// Subscribe subscribes to channel; an error reply fails the test.
func (c *Conn) Subscribe(channel string) {
	c.t.Helper()
	if f := c.Call(protocol.MethodSubscribe, protocol.SubscribeParams{Channel: channel}); f.Error != nil {
		c.t.Fatalf("subscribe %s: %+v", channel, f.Error)
	}
}

// Push reads the next frame, which must be a push.
func (c *Conn) Push() *protocol.Push {
	c.t.Helper()
	f := c.Frame()
	if f.Push == nil {
		c.t.Fatalf("want a push, got %+v", f)
	}
	return f.Push
}

// Publication reads until the next pushed publication, skipping replies
// and notices (presence events, resubscribe requests).
func (c *Conn) Publication() *protocol.Push {
	c.t.Helper()
	for {
		if f := c.Frame(); f.Push != nil && f.Push.IsPublication() {
			return f.Push
		}
	}
}

// ExpectClose reads until the server closes the connection and checks
// the close code.
func (c *Conn) ExpectClose(code protocol.CloseCode) {
	c.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		_, _, err := c.WS.Read(ctx)
		cancel()
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != websocket.StatusCode(code) {
			c.t.Fatalf("close: got %d (%v), want %d", got, err, code)
		}
		return
	}
}
