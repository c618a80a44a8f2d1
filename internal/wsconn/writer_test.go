package wsconn

import (
	"bytes"
	"encoding/binary"
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

// readFrame reads one unmasked frame as RFC 6455 section 5.2 lays it out
// and reports whether its length used the shortest encoding.
func readFrame(t *testing.T, r io.Reader) (first byte, payload []byte, minimal bool) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	minimal = true
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			t.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
		minimal = n >= 126
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			t.Fatal(err)
		}
		n = binary.BigEndian.Uint64(b[:])
		minimal = n > 0xffff
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatal(err)
	}
	return h[0], payload, minimal
}

// TestWriterWriteText checks the frames WriteText makes: final, text,
// unmasked, the shortest length encoding at each boundary, the payload
// intact; in a batch they go with one network write, outside one at once.
func TestWriterWriteText(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	cc := &countingConn{Conn: server}
	w := NewWriter(cc, 5*time.Second)
	if err := w.WriteText(1, func(d []byte) []byte { return append(d, 'x') }); err == nil {
		t.Fatal("WriteText worked without EnableMessages")
	}
	w.EnableMessages()
	if !w.Messages() {
		t.Fatal("Messages false after EnableMessages")
	}
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	go func() {
		w.Hold()
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte('a' + i)}, n)
			if err := w.WriteText(n, func(d []byte) []byte { return append(d, p...) }); err != nil {
				t.Error(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Error(err)
		}
		if cc.writes != 1 {
			t.Errorf("%d network writes for one batch, want 1", cc.writes)
		}
		if err := w.WriteText(3, func(d []byte) []byte { return append(d, "now"...) }); err != nil {
			t.Error(err)
		}
		if cc.writes != 2 {
			t.Errorf("message outside a batch was held: %d writes", cc.writes)
		}
	}()
	for i, n := range sizes {
		first, p, minimal := readFrame(t, client)
		if first != 0x81 {
			t.Fatalf("frame %d starts with %#x, want 0x81 (final text)", i, first)
		}
		if !minimal {
			t.Fatalf("frame %d of %d bytes: length not in its shortest form", i, n)
		}
		if !bytes.Equal(p, bytes.Repeat([]byte{byte('a' + i)}, n)) {
			t.Fatalf("frame %d: %d bytes, want %d", i, len(p), n)
		}
	}
	if _, p, _ := readFrame(t, client); string(p) != "now" {
		t.Fatalf("last frame %q", p)
	}
}

// TestWriterWriteTextFill checks that a fill that appends other than the
// announced length is refused and leaves nothing on the stream.
func TestWriterWriteTextFill(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	w := NewWriter(server, 5*time.Second)
	w.EnableMessages()
	w.Hold()
	if err := w.WriteText(5, func(d []byte) []byte { return append(d, "abc"...) }); !errors.Is(err, errFill) {
		t.Fatalf("short fill: got %v", err)
	}
	if err := w.WriteText(2, func(d []byte) []byte { return append(d, "ok"...) }); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, p, _ := readFrame(t, client); string(p) != "ok" {
		t.Fatalf("got %q, want only the good message", p)
	}
}

// TestWriterCloseSent checks that once the library's close frame passed
// through the Writer, messages are refused (no data may follow a close),
// while the close frame itself is sent; before it, control frames
// starting with other bytes change nothing.
func TestWriterCloseSent(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	w := NewWriter(server, 5*time.Second)
	w.EnableMessages()
	ping := []byte{0x89, 0}
	if _, err := w.Write(ping); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteText(1, func(d []byte) []byte { return append(d, 'a') }); err != nil {
		t.Fatalf("message after a ping: %v", err)
	}
	closeFrame := []byte{0x88, 2, 0x03, 0xe8}
	if _, err := w.Write(closeFrame); err != nil {
		t.Fatal(err)
	}
	err := w.WriteText(1, func(d []byte) []byte { return append(d, 'b') })
	if !errors.Is(err, ErrCloseSent) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("message after close: got %v, want ErrCloseSent", err)
	}
	want := append(append(append([]byte{}, ping...), 0x81, 1, 'a'), closeFrame...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("stream %x, want %x", got, want)
	}
}

// TestWriterPartialThenDeadlineCleared sends a batch larger than the
// socket buffers to a peer that reads only later: the non-blocking write
// takes part of it, the rest goes out under the deadline once the peer
// reads, every byte arrives in order, and a write made after that deadline
// would have passed still succeeds.
func TestWriterPartialThenDeadlineCleared(t *testing.T) {
	t.Parallel()
	client, server := tcpPair(t)
	const timeout = 500 * time.Millisecond
	w := NewWriter(server, timeout)
	if w.raw == nil {
		t.Fatal("a TCP connection has no raw descriptor")
	}
	big := make([]byte, 16<<20)
	for i := range big {
		big[i] = byte(i % 251)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // let the socket buffers fill first
		b := make([]byte, len(big)+5)
		if _, err := io.ReadFull(client, b); err != nil {
			t.Error(err)
		}
		got <- b
	}()
	if _, err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	time.Sleep(timeout + 200*time.Millisecond)
	if _, err := w.Write([]byte("after")); err != nil {
		t.Fatalf("write after the deadline of an earlier write passed: %v", err)
	}
	b := <-got
	if !bytes.Equal(b[:len(big)], big) || string(b[len(big):]) != "after" {
		t.Fatal("bytes differ from what was written")
	}
}

// TestWriterClosedConn checks that writing to a closed connection fails
// and that the failure sticks.
func TestWriterClosedConn(t *testing.T) {
	t.Parallel()
	_, server := tcpPair(t)
	w := NewWriter(server, time.Second)
	server.Close()
	if _, err := w.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write to a closed connection: %v, want net.ErrClosed", err)
	}
	if _, err := w.Write([]byte("y")); err == nil {
		t.Fatal("write after a failed write succeeded")
	}
}
