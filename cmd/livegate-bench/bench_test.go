package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/internal/loadgen"
)

const (
	testSecret = "bench-test-secret-0123456789abcdef0123"
	testAPIKey = "bench-test-api-key-0123456789abcdef0123"
)

// startTestServer runs the bench server in process on loopback.
func startTestServer(t *testing.T, history int) *benchServer {
	t.Helper()
	s, err := startServer(serverConfig{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Secret: []byte(testSecret), APIKey: testAPIKey, HistorySize: history, HistoryTTL: time.Minute, MaxConns: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

func testRunConfig(s *benchServer, workload string) *runConfig {
	info := s.info()
	return &runConfig{
		Driver: "livegate", URL: info.URL, PublishURL: info.PublishURL, APIKey: testAPIKey,
		Secret: []byte(testSecret), Audience: "livegate",
		Workload: workload, Conns: 5, Publishers: 2, Sizes: []int{128, 4096}, Messages: 20, Rate: 50,
		Duration: 2 * time.Second, Spread: true,
		ServerPID: os.Getpid(), MetricsURL: info.MetricsURL, MetricsKey: testAPIKey,
		PprofURL: info.PprofURL, ProfileSeconds: 1, Settle: 300 * time.Millisecond,
	}
}

// TestSmoke runs every workload briefly against the in-process bench
// server and checks that what was published arrived, latencies are
// recorded, and the JSON lines read back into the comparison.
func TestSmoke(t *testing.T) {
	s := startTestServer(t, 10)
	dir := t.TempDir()
	var lines bytes.Buffer
	for _, w := range []string{wIdle, wFanout, wChannels, wEvents} {
		cfg := testRunConfig(s, w)
		cfg.ProfileDir = dir
		cfg.MaxMessages = 30 // fanout's max-rate phases
		cfg.Label = "history=on"
		res, err := runBench(context.Background(), cfg, &lines, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		if len(res) == 0 {
			t.Fatalf("%s: no results", w)
		}
		for _, r := range res {
			if len(r.Errors) != 0 {
				t.Errorf("%s %s: errors %v", w, r.Variant, r.Errors)
			}
			m := r.Metrics
			switch w {
			case wIdle:
				if m["connected"] != 5 || !(m["connect_per_s"] > 0) {
					t.Errorf("idle: %v", m)
				}
				if _, ok := m["rss_per_conn_bytes"]; !ok {
					t.Errorf("idle: no RSS per connection: %v", m)
				}
				if _, ok := m["heap_stack_per_conn_bytes"]; !ok {
					t.Errorf("idle: no heap+stack per connection: %v", m)
				}
			case wFanout, wChannels:
				want := 20.0
				if w == wFanout && strings.Contains(r.Variant, "max") {
					want = 30
				}
				if m["published"] != want {
					t.Errorf("%s %s: published %v, want %v", w, r.Variant, m["published"], want)
				}
				if fpw, ok := m["frames_per_write"]; !ok || fpw < 1 {
					t.Errorf("%s %s: frames per write %v (present %v), want at least 1", w, r.Variant, fpw, ok)
				}
				if m["delivered_pct"] != 100 {
					t.Errorf("%s %s: delivered %v%%", w, r.Variant, m["delivered_pct"])
				}
				// Present; CPU time comes in clock ticks (10 ms), so a short
				// phase may read 0.
				if sb, ok := m["server_busy"]; !ok || sb < 0 {
					t.Errorf("%s %s: server busy missing: %v", w, r.Variant, m)
				}
				if lb, ok := m["load_busy"]; !ok || lb < 0 {
					t.Errorf("%s %s: load busy missing: %v", w, r.Variant, m)
				}
				if m["deliveries"] != m["expected_deliveries"] || m["expected_deliveries"] == 0 {
					t.Errorf("%s %s: delivered %v of %v", w, r.Variant, m["deliveries"], m["expected_deliveries"])
				}
				if m["latency_samples"] != m["deliveries"] || !(m["latency_p50_ms"] > 0) || m["latency_p999_ms"] < m["latency_p50_ms"] {
					t.Errorf("%s %s: latencies %v", w, r.Variant, m)
				}
				// The server is this process: it used CPU to deliver.
				if cpu, ok := m["server_cpu_us_per_delivery"]; !ok || cpu < 0 || m["server_cpu_seconds"] < 0 {
					t.Errorf("%s %s: server CPU %v", w, r.Variant, m)
				}
			case wEvents:
				if !(m["round_trips"] > 0) || m["failed"] != 0 || m["latency_samples"] != m["round_trips"] {
					t.Errorf("events: %v", m)
				}
			}
		}
		if w == wFanout {
			var names []string
			for _, r := range res {
				names = append(names, r.Variant)
			}
			if got, want := strings.Join(names, " "), "128B-50-per-s 128B-max-2pub 4096B-50-per-s 4096B-max-2pub"; got != want {
				t.Errorf("fanout variants %q, want %q", got, want)
			}
		}
	}
	for _, f := range []string{"livegate-idle-history-on-cpu.pprof", "livegate-events-history-on-heap.pprof"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
	}
	// The lines read back, and pair up with a Centrifugo result.
	file := filepath.Join(dir, "results.jsonl")
	cf := `{"driver":"centrifugo","workload":"events","variant":"128B","label":"history=on","metrics":{"round_trips_per_s":100,"latency_p50_ms":2,"latency_p99_ms":4}}`
	if err := os.WriteFile(file, append(lines.Bytes(), cf+"\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	results, err := readResults([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	rows := compare(results)
	var found bool
	for _, r := range rows {
		if r.Workload == wEvents && r.Metric == "round trips/s" {
			found = true
			if math.IsNaN(r.Ratio()) || r.Centrifugo != 100 {
				t.Errorf("events row %+v", r)
			}
		}
	}
	if !found {
		t.Error("no events row")
	}
	var table bytes.Buffer
	writeTable(&table, rows)
	if !strings.Contains(table.String(), "| events | 128B | round trips/s | history=on |") {
		t.Errorf("table:\n%s", table.String())
	}
	png := filepath.Join(dir, "chart.png")
	if err := writeChart(png, rows); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("chart is not a PNG: %v", err)
	}
}

func TestRefusesNonLoopbackTargets(t *testing.T) {
	s := startTestServer(t, 0)
	for _, tc := range []struct {
		name string
		edit func(*runConfig)
	}{
		{"ws url", func(c *runConfig) { c.URL = "ws://192.0.2.1:8080/ws" }},
		{"ws name", func(c *runConfig) { c.URL = "ws://example.com/ws" }},
		{"publish url", func(c *runConfig) { c.PublishURL = "http://10.0.0.1/api/publish" }},
		{"metrics url", func(c *runConfig) { c.MetricsURL = "http://[2001:db8::1]/metrics" }},
		{"too many conns", func(c *runConfig) { c.Conns = maxConns + 1 }},
		{"too long", func(c *runConfig) { c.Duration = maxDuration + time.Second }},
		{"tiny payload", func(c *runConfig) { c.Sizes = []int{8} }},
		{"no secret", func(c *runConfig) { c.Secret = nil }},
	} {
		cfg := testRunConfig(s, wFanout)
		tc.edit(cfg)
		if _, err := runBench(context.Background(), cfg, io.Discard, io.Discard); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := startServer(serverConfig{Addr: "0.0.0.0:0", AdminAddr: "127.0.0.1:0", Secret: []byte(testSecret), APIKey: testAPIKey}); !errors.Is(err, loadgen.ErrNotLoopback) {
		t.Errorf("server on 0.0.0.0: %v", err)
	}
	// A name that resolves elsewhere is refused at dial time too.
	if _, err := loadgen.Dialer(nil, time.Second).Dial("tcp", "192.0.2.1:80"); err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("dial to 192.0.2.1: %v", err)
	}
}

func TestAdminNeedsTheKey(t *testing.T) {
	s := startTestServer(t, 0)
	info := s.info()
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + testAPIKey + "x", testAPIKey} {
		for _, u := range []string{info.MetricsURL, info.PprofURL + "/debug/pprof/", info.PublishURL} {
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"channel":"bench:x","data":{}}`))
			if strings.HasSuffix(u, "/metrics") || strings.HasSuffix(u, "/") {
				req.Method = http.MethodGet
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with %q: HTTP %d", u, auth, resp.StatusCode)
			}
		}
	}
	// With the key: a publish to an unknown namespace is refused, one to
	// the bench namespace goes through.
	d, err := newLivegateDriver([]byte(testSecret), "livegate", info.PublishURL, testAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	hc := newPublishClient(1)
	if err := d.Publish(context.Background(), hc, "other:x", []byte(`{}`)); err == nil {
		t.Error("publish to an unknown namespace accepted")
	}
	if err := d.Publish(context.Background(), hc, "bench:x", []byte(`{"a":1}`)); err != nil {
		t.Errorf("publish: %v", err)
	}
}

func TestRPCProxyEchoes(t *testing.T) {
	srv := httptest.NewServer(rpcProxyHandler())
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"client":"c","user":"u","method":"echo","data":{"t":1,"p":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Result struct {
			Data json.RawMessage `json:"data"`
		} `json:"result"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || string(out.Result.Data) != `{"t":1,"p":"x"}` {
		t.Errorf("echo: %s, %v", out.Result.Data, err)
	}
	resp, err = http.Post(srv.URL, "application/json", strings.NewReader(`not json`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad body: HTTP %d", resp.StatusCode)
	}
}

func TestStampRoundTrip(t *testing.T) {
	now := time.Unix(1767225600, 123456789)
	for _, size := range []int{64, 128, 4096} {
		p := payload(size, 7, now)
		if len(p) != size || !json.Valid(p) {
			t.Errorf("payload of %d: %d bytes, valid %v", size, len(p), json.Valid(p))
		}
		frame := append([]byte(`{"push":{"channel":"bench:x","offset":1,"epoch":"e","data":`), append(p, "}}"...)...)
		if got, ok := stamp(frame); !ok || !got.Equal(now) {
			t.Errorf("stamp = %v, %v", got, ok)
		}
	}
	for _, bad := range []string{`{"push":{"data":{"x":1}}}`, `{"t":}`, `{"t":-5}`, `{"t":99999999999999999999}`, `{"t":9999999999999999999}`} {
		if got, ok := stamp([]byte(bad)); ok {
			t.Errorf("stamp(%s) = %v, want none", bad, got)
		}
	}
}

// TestReadCPU checks the server CPU probe on this process: it reads, it
// does not go backwards, and it grows with work done.
func TestReadCPU(t *testing.T) {
	before, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := uint64(1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		for range 1 << 20 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		after, err := readCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after < before {
			t.Fatalf("CPU time went back: %v then %v", before, after)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v while spinning (%d)", before, x)
		}
	}
	if _, err := readCPU(-1); err == nil {
		t.Fatal("no error for a process that cannot exist")
	}
}
