package wsconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// countingConn is a loopback TCP connection whose writes are counted.
type countingConn struct {
	net.Conn
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes++
	return c.Conn.Write(p)
}

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestWriterBatchOneWrite checks that everything written between Hold and
// Flush reaches the peer, in order, with one network write, and that
// writes outside a batch go through at once.
func TestWriterBatchOneWrite(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	cc := &countingConn{Conn: server}
	w := NewWriter(cc, 5*time.Second)
	w.Hold()
	var want []byte
	for i := 0; i < 50; i++ {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		want = append(want, p...)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if cc.writes != 0 {
		t.Fatalf("%d network writes while holding", cc.writes)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if cc.writes != 1 {
		t.Fatalf("%d network writes for one batch, want 1", cc.writes)
	}
	if _, err := w.Write([]byte("now")); err != nil {
		t.Fatal(err)
	}
	if cc.writes != 2 {
		t.Fatalf("write outside a batch was held: %d writes", cc.writes)
	}
	want = append(want, "now"...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ from what was written")
	}
}

// TestWriterTimeout checks that a flush to a peer that does not read fails
// within the write timeout, and that the failure sticks.
func TestWriterTimeout(t *testing.T) {
	t.Parallel()
	_, server := tcpPair(t)
	w := NewWriter(server, 200*time.Millisecond)
	big := make([]byte, flushAt-1)
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The peer never reads: socket buffers fill, then the deadline hits.
		for i := 0; i < 1000 && err == nil; i++ {
			w.Hold()
			_, err = w.Write(big)
			if err == nil {
				err = w.Flush()
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("write to a stalled peer never failed")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
	if _, err2 := w.Write([]byte("x")); err2 == nil {
		t.Fatal("write after a failed write succeeded")
	}
}
