package client_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/protocol"
)

// TestBatchedMessageSplit checks that the client asks for batches at
// connect and handles every frame of a message holding several, separated
// by newlines: the subscribe reply and the pushes after it, in order.
func TestBatchedMessageSplit(t *testing.T) {
	t.Parallel()
	askedBatch := make(chan bool, 1)
	url := fakeServer(t, func(n int, f *fakeConn) {
		_, b, err := f.ws.Read(f.ctx)
		if err != nil {
			return
		}
		cmd, err := protocol.DecodeCommand(b)
		if err != nil || cmd.Method != protocol.MethodConnect {
			return
		}
		var p protocol.ConnectParams
		_ = json.Unmarshal(cmd.Params, &p)
		askedBatch <- p.Batch
		f.reply(cmd.ID, protocol.ConnectResult{Client: "fake", User: "alice", Expires: time.Now().Add(time.Hour).Unix(), Ping: 25, Batch: true})
		sub, ok := f.read()
		if !ok || sub.Method != protocol.MethodSubscribe {
			return
		}
		msg := `{"id":` + itoa(sub.ID) + `,"result":{"offset":0,"epoch":"e"}}` + "\n" +
			`{"push":{"channel":"room:a","offset":1,"epoch":"e","data":{"n":1}}}` + "\n" +
			`{"push":{"channel":"room:a","offset":2,"epoch":"e","data":{"n":2}}}`
		_ = f.ws.Write(f.ctx, websocket.MessageText, []byte(msg))
		f.drain()
	})
	rec := newRecorder()
	c := newClient(t, url, newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if !<-askedBatch {
		t.Fatal("connect did not ask for batches")
	}
	if _, err := c.Subscribe(ctx, "room:a", rec.onPush); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	got := rec.waitEvents(t, 2)
	want := []string{`room:a#1={"n":1}`, `room:a#2={"n":2}`}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

// TestBatchedNewlineData checks, against the gateway, that publication
// data containing raw newlines (JSON whitespace) reaches a batching client
// intact in meaning, and that a burst of publications arrives complete and
// in order.
func TestBatchedNewlineData(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, livegate.Config{Namespaces: roomNamespace(0)})
	srv := newSwitchServer(t, gw)
	rec := newRecorder()
	c := newClient(t, srv.url(), newTokens(t, time.Minute), rec, nil)
	ctx := testContext(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := c.Subscribe(ctx, "room:a", rec.onPush); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, err := gw.Publish(ctx, "room:a", json.RawMessage("{\n\"n\":\n0}")); err != nil {
		t.Fatal(err)
	}
	const burst = 200
	for i := 1; i <= burst; i++ {
		mustPublish(t, gw, "room:a", i)
	}
	got := rec.waitEvents(t, burst+1)
	rec.mu.Lock()
	first := rec.pushes[0].Data
	rec.mu.Unlock()
	var v struct{ N int }
	if err := json.Unmarshal(first, &v); err != nil || v.N != 0 {
		t.Fatalf("newline data arrived as %q (%v)", first, err)
	}
	for i := 1; i <= burst; i++ {
		if want := `room:a#` + itoa(uint64(i+1)) + `={"n":` + itoa(uint64(i)) + `}`; got[i] != want {
			t.Fatalf("event %d = %q, want %q", i, got[i], want)
		}
	}
}
