package livegate_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/protocol"
	"github.com/livegate/livegate/store"
)

// The back ends that ReadyHandler pings.
var (
	_ livegate.Pinger = (*broker.MemoryBroker)(nil)
	_ livegate.Pinger = (*store.DB)(nil)
	_ livegate.Pinger = (*store.ReplayStore)(nil)
	_ livegate.Pinger = (*store.Revocations)(nil)
)

// probe GETs url and returns the status and the trimmed body.
func probe(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s %s: Cache-Control %q", method, url, cc)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestReadyzFollowsTheStore(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ready.db"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *livegate.Config) {
		c.ReplayStore, c.Revocations = db.ReplayStore(), db.Revocations()
	})
	admin := adminServer(t, e.gw, nil)
	if code, body := probe(t, http.MethodGet, admin+"/readyz"); code != http.StatusOK || body != `{"status":"ok"}` {
		t.Fatalf("readyz with the store open: %d %s", code, body)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	code, body := probe(t, http.MethodGet, admin+"/readyz")
	if code != http.StatusServiceUnavailable || body != `{"status":"unavailable","failed":["replay_store","revocations"]}` {
		t.Fatalf("readyz with the store closed: %d %s", code, body)
	}
	if strings.Contains(body, "sql") || strings.Contains(body, "closed") {
		t.Fatalf("readyz leaks error text: %s", body)
	}
	if code, body := probe(t, http.MethodGet, admin+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Fatalf("healthz: %d %s", code, body)
	}
}

func TestReadyzFollowsTheBroker(t *testing.T) {
	t.Parallel()
	b := broker.NewMemory(broker.MemoryConfig{})
	e := newEnv(t, func(c *livegate.Config) { c.Broker = b })
	admin := adminServer(t, e.gw, nil)
	if code, body := probe(t, http.MethodGet, admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := probe(t, http.MethodGet, admin+"/readyz"); code != http.StatusServiceUnavailable || body != `{"status":"unavailable","failed":["broker"]}` {
		t.Fatalf("readyz with the broker closed: %d %s", code, body)
	}
}

// TestReadyzDuringShutdown holds Shutdown open with a client that never
// answers the close handshake, and checks readyz is 503 meanwhile while
// healthz stays 200.
func TestReadyzDuringShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := adminServer(t, e.gw, nil)
	c := e.connect(t, "alice") // never reads again until the end
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.gw.Shutdown(ctx)
	}()
	waitFor(t, "readyz to turn 503", func() bool {
		code, _ := probe(t, http.MethodGet, admin+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	select {
	case <-done:
		t.Fatal("Shutdown finished before the check; the test did not observe it in progress")
	default:
	}
	if _, body := probe(t, http.MethodGet, admin+"/readyz"); body != `{"status":"unavailable","failed":["shutdown"]}` {
		t.Fatalf("readyz body during shutdown: %s", body)
	}
	if code, _ := probe(t, http.MethodGet, admin+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz during shutdown: %d", code)
	}
	c.expectClose(protocol.CloseGoingAway) // answers the close handshake
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, _ := probe(t, http.MethodGet, admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz after shutdown: %d", code)
	}
}

func TestProbesRefuseOtherMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := adminServer(t, e.gw, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := probe(t, http.MethodPost, admin+path); code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d", path, code)
		}
		if code, _ := probe(t, http.MethodHead, admin+path); code != http.StatusOK {
			t.Errorf("HEAD %s: %d", path, code)
		}
	}
}
