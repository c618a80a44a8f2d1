package livegate_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/protocol"
)

// TestConnTimersShareOneTimer checks the deadlines that share a
// connection's one timer: pings keep coming (a client that answers them
// stays) after the connect deadline was cleared by a successful connect,
// which then never closes the connection 4408, and the maximum lifetime
// still closes it, 1001, later.
func TestConnTimersShareOneTimer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) {
		c.ConnectTimeout = time.Second
		c.PingInterval = 20 * time.Millisecond
		c.PongTimeout = 2 * time.Second
		c.MaxConnLifetime = 4 * time.Second
	})
	c := e.connect(t, "alice")
	closed := make(chan error, 1)
	go func() {
		// Reading answers the pings.
		for {
			if _, _, err := c.ws.Read(context.Background()); err != nil {
				closed <- err
				return
			}
		}
	}()
	// Past the connect deadline and many ping intervals.
	time.Sleep(1200 * time.Millisecond)
	select {
	case err := <-closed:
		t.Fatalf("closed before its lifetime ended: %v", err)
	default:
	}
	select {
	case err := <-closed:
		if got := websocket.CloseStatus(err); got != websocket.StatusCode(protocol.CloseGoingAway) {
			t.Fatalf("closed with %d (%v), want %d", got, err, protocol.CloseGoingAway)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("max lifetime never closed the connection")
	}
}
