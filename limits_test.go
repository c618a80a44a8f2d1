package livegate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/protocol"
)

func TestHostileJSONClosedBeforeDecoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	registerSay(t, e.gw)
	event := func(payload string) string {
		return `{"id":2,"method":"event","params":{"name":"say","payload":` + payload + `}}`
	}
	keys := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i) + `":1`)
		}
		b.WriteString("}")
		return b.String()
	}
	frames := map[string]string{
		"deep nesting":          event(strings.Repeat("[", 30000) + strings.Repeat("]", 30000)),
		"key flood":             event(keys(3000)),
		"giant array":           event("[" + strings.Repeat("0,", 20000) + "0]"),
		"token storm":           event("[" + strings.Repeat("[0,0],", 5000) + "0]"),
		"duplicate id":          `{"id":2,"id":3,"method":"event","params":{"name":"say","payload":{}}}`,
		"case-folded duplicate": `{"id":2,"method":"event","METHOD":"connect","params":{"name":"say"}}`,
		"duplicate param":       `{"id":2,"method":"event","params":{"name":"nosuch","name":"say","payload":{}}}`,
		"invalid utf-8":         event(`{"room":"a","text":"` + "\xff\xfe" + `"}`),
	}
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			if len(f) > livegate.DefaultMaxInboundFrame {
				t.Fatalf("test frame is %d bytes, over the frame limit", len(f))
			}
			c := e.connect(t, "alice")
			c.send(f)
			c.expectClose(protocol.CloseMalformed)
		})
	}
	if !e.events.has(audit.TypeProtocolError, "json_limits") {
		t.Fatal("no json_limits event")
	}
	// A payload at ordinary depth still works.
	c := e.connect(t, "alice")
	c.send(event(`{"room":"a","text":"fine"}`))
	if r := c.reply(2); r.Error != nil {
		t.Fatalf("ordinary payload refused: %+v", r.Error)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestDecompressionBombCloses1009(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.EnableCompression = true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{
		Subprotocols:    []string{protocol.Subprotocol},
		CompressionMode: websocket.CompressionNoContextTakeover,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	c := &rawConn{t: t, ws: ws}
	c.send(`{"id":1,"method":"connect","params":{"token":"` + e.token(t, "alice") + `"}}`)
	c.reply(1)
	// 8 MiB of spaces compress to a few KiB on the wire; decompressed they
	// are far over the 64 KiB inbound limit.
	bomb := `{"id":2,"method":"unsubscribe","params":{"channel":"room:a"}}` + strings.Repeat(" ", 8<<20)
	_ = ws.Write(ctx, websocket.MessageText, []byte(bomb))
	c.expectClose(protocol.CloseTooBig)
	if !e.events.has(audit.TypeFrameTooBig, "") {
		t.Fatal("no frame_too_big event")
	}
}
