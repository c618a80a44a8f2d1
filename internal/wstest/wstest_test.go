package wstest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"

	"github.com/livegate/livegate/internal/wstest"
	"github.com/livegate/livegate/protocol"
)

// scripted is a WebSocket server answering commands by method:
//
//	connect  reply, then a presence push (no data), then a publication
//	echo     a publication push, then a reply whose result is the id
//	close    closes the connection with 4403
//
// and checks that each command carries the subprotocol and the header.
func scripted(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" || r.Header.Get("X-Test") != "yes" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{protocol.Subprotocol}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		if ws.Subprotocol() != protocol.Subprotocol {
			ws.Close(websocket.StatusPolicyViolation, "subprotocol")
			return
		}
		ctx := context.Background()
		send := func(s string) { _ = ws.Write(ctx, websocket.MessageText, []byte(s)) }
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var c protocol.Command
			if err := json.Unmarshal(b, &c); err != nil {
				ws.Close(websocket.StatusUnsupportedData, "bad json")
				return
			}
			switch c.Method {
			case protocol.MethodConnect:
				send(fmt.Sprintf(`{"id":%d,"result":{"client":"c1","user":"alice"}}`, c.ID))
				send(`{"push":{"channel":"room:1","offset":0,"epoch":"","data":null,"join":{"user":"bob","client":"c2"}}}`)
				send(`{"push":{"channel":"room:1","offset":1,"epoch":"e","data":{"n":1}}}`)
			case "echo":
				send(`{"push":{"channel":"room:1","offset":2,"epoch":"e","data":{"n":2}}}`)
				send(fmt.Sprintf(`{"id":%d,"result":%d}`, c.ID, c.ID))
			case "close":
				ws.Close(websocket.StatusCode(protocol.CloseForbidden), "bye")
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestConn(t *testing.T) {
	t.Parallel()
	srv := scripted(t)
	c := wstest.Dial(t, wstest.URL(srv.URL), http.Header{"X-Test": {"yes"}})

	if res := c.Connect(protocol.ConnectParams{Token: "t"}); res.User != "alice" || res.Client != "c1" {
		t.Fatalf("Connect = %+v", res)
	}
	// The presence push is skipped.
	if p := c.Publication(); p.Offset != 1 || string(p.Data) != `{"n":1}` {
		t.Fatalf("Publication = %+v", p)
	}
	// Reply skips the push sent before the reply.
	c.Command(7, "echo", nil)
	if f := c.Reply(7); string(f.Result) != "7" {
		t.Fatalf("Reply(7) = %+v", f)
	}
	// Call continues after the highest id sent; Push reads the push.
	c.Command(9, "echo", nil)
	if p := c.Push(); p.Offset != 2 {
		t.Fatalf("Push = %+v", p)
	}
	if f := c.Frame(); f.ID != 9 {
		t.Fatalf("Frame = %+v, want the reply to 9", f)
	}
	if f := c.Call("echo", nil); string(f.Result) != "10" {
		t.Fatalf("Call = %+v, want the reply to 10", f)
	}
	c.Send(`{"id":11,"method":"close"}`)
	c.ExpectClose(protocol.CloseForbidden)
	if _, err := c.Next(); err == nil {
		t.Fatal("Next after the close succeeded")
	}
}

func TestTryDialRefused(t *testing.T) {
	t.Parallel()
	srv := scripted(t)
	if _, err := wstest.TryDial(t, wstest.URL(srv.URL), nil); err == nil {
		t.Fatal("TryDial without the header the server requires succeeded")
	}
}

func ExampleURL() {
	fmt.Println(wstest.URL("http://127.0.0.1:8080"))
	// Output: ws://127.0.0.1:8080/ws
}
