package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevServerAdminListener checks the dev server's admin listener: the
// metrics and health endpoints answer there (and not on the public
// listener), and a foreign Host is refused.
func TestDevServerAdminListener(t *testing.T) {
	t.Setenv(envSecret, "")
	t.Setenv(envAdminSecret, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- serveDev(ctx, "127.0.0.1:0", "127.0.0.1:0", t.TempDir()+"/dev.db", &out) }()
	public := regexp.MustCompile(`dev server on http://(127\.0\.0\.1:\d+)`)
	adminRe := regexp.MustCompile(`metrics and health on http://(127\.0\.0\.1:\d+)`)
	var addr, admin string
	for deadline := time.Now().Add(10 * time.Second); admin == ""; time.Sleep(10 * time.Millisecond) {
		if m := adminRe.FindStringSubmatch(out.String()); m != nil {
			admin = m[1]
			addr = public.FindStringSubmatch(out.String())[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("admin listener did not start: %s", out.String())
		}
	}
	get := func(url, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://"+admin+"/healthz", ""); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, body := get("http://"+admin+"/readyz", ""); code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("readyz: %d %q", code, body)
	}
	// A refused upgrade on the public listener shows in the metrics.
	if code, _ := get("http://"+addr+"/ws", ""); code != http.StatusUpgradeRequired {
		t.Fatalf("plain GET /ws: %d", code)
	}
	code, body := get("http://"+admin+"/metrics", "")
	if code != http.StatusOK || !strings.Contains(body, `livegate_connections_refused_total{reason="not_websocket",stage="upgrade"} 1`) ||
		!strings.Contains(body, "livegate_audit_dropped_total 0") {
		t.Fatalf("metrics: %d\n%.3000s", code, body)
	}
	if code, _ := get("http://"+addr+"/metrics", ""); code == http.StatusOK {
		t.Fatal("metrics served on the public listener")
	}
	if code, _ := get("http://"+admin+"/metrics", "rebind.evil.example"); code != http.StatusForbidden {
		t.Fatalf("foreign Host on the admin listener: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveDev: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev server did not stop")
	}
}
