package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/auth"
)

const testSecret = "cli-test-secret-0123456789abcdef-xyz"

func TestTokenCommand(t *testing.T) {
	t.Setenv(envSecret, testSecret)
	t.Setenv(envAudience, "")
	var out bytes.Buffer
	cmd := rootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"token", "--sub", "alice", "--sid", "s1", "--ttl", "2m"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Algorithm: "HS256", HMACSecret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(strings.TrimSpace(out.String()), auth.KindConnect)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if id.User != "alice" || id.Session != "s1" || id.TokenID == "" || id.ExpiresAt.Sub(id.IssuedAt) != 2*time.Minute {
		t.Fatalf("identity %+v", id)
	}
	// Signed with another secret, it must not verify: the secret is used.
	other, _ := auth.NewVerifier(auth.VerifierConfig{Algorithm: "HS256", HMACSecret: []byte("a-different-secret-0123456789abcdef")})
	if _, err := other.Verify(strings.TrimSpace(out.String()), auth.KindConnect); err == nil {
		t.Fatal("token verified with a different secret")
	}
}

func TestTokenCommandRefusesWeakOrMissingSecret(t *testing.T) {
	for _, secret := range []string{"", "short"} {
		t.Setenv(envSecret, secret)
		cmd := rootCommand()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetArgs([]string{"token", "--sub", "alice"})
		if err := cmd.Execute(); err == nil {
			t.Errorf("secret %q accepted", secret)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestDevServerServesAndStops(t *testing.T) {
	t.Setenv(envSecret, "")
	t.Setenv(envAdminSecret, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, "127.0.0.1:0", t.TempDir()+"/dev.db", &out) }()
	re := regexp.MustCompile(`on http://(127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", out.String())
		}
	}
	if !strings.Contains(out.String(), "generated dev token secret") {
		t.Fatalf("no generated secret printed: %s", out.String())
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("demo page: %d", resp.StatusCode)
	}
	// A foreign Host (DNS rebinding) is refused at the WebSocket endpoint.
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/ws", nil)
	req.Host = "rebind.evil.example"
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Host: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runDev: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev server did not stop")
	}
}

func TestSlowlorisHandshakeIsClosed(t *testing.T) {
	old := readHeaderTimeout
	readHeaderTimeout = 300 * time.Millisecond
	defer func() { readHeaderTimeout = old }()
	hs := newHTTPServer(http.NotFoundHandler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers trickle in and never end.
	if _, err := conn.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := conn.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("server kept the half-sent request open")
			}
			return // closed by the server
		}
	}
}
