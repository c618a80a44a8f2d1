package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/livegate/livegate/metrics"
)

// record calls every recording method once.
func record(m *metrics.Metrics) {
	m.ConnectionOpened()
	m.ConnectionEnded()
	m.Accepted()
	m.UpgradeRefused("origin")
	m.ConnectRefused("token")
	m.Command("subscribe", "forbidden")
	m.Published()
	m.Delivered(3)
	m.Wrote(4)
	m.Wrote(2)
	m.CoalesceWait()
	m.Dropped(metrics.DropQueueFull)
	m.QueuedBytes(42)
	m.RateLimited("command")
	m.AuthFailed("connect", "expired")
	m.BrokerError("publish")
	m.DeliveryLatency(3 * time.Millisecond)
	m.Swept(5)
	m.SetAuditDropped(func() uint64 { return 9 })
}

func TestNilMetricsRecordNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	record(m) // must not panic
}

// scrape fetches h's exposition and parses it.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the value of the series of name with exactly labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, s := range f.GetMetric() {
		if len(s.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range s.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.GetCounter().GetValue()
		case s.Gauge != nil:
			return s.GetGauge().GetValue()
		case s.Histogram != nil:
			return float64(s.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func TestHandlerExposesEveryMetric(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	record(m)
	fams := scrape(t, m.Handler())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"livegate_connections", nil, 0},
		{"livegate_connections_accepted_total", nil, 1},
		{"livegate_connections_refused_total", []string{"stage", "upgrade", "reason", "origin"}, 1},
		{"livegate_connections_refused_total", []string{"stage", "connect", "reason", "token"}, 1},
		{"livegate_commands_total", []string{"method", "subscribe", "result", "forbidden"}, 1},
		{"livegate_commands_total", []string{"method", "subscribe", "result", "ok"}, 0},
		{"livegate_messages_published_total", nil, 1},
		{"livegate_messages_delivered_total", nil, 3},
		{"livegate_socket_writes_total", nil, 2},
		{"livegate_socket_write_frames_total", nil, 6},
		{"livegate_coalesce_waits_total", nil, 1},
		{"livegate_messages_dropped_total", []string{"reason", "queue_full"}, 1},
		{"livegate_outbound_queued_bytes", nil, 42},
		{"livegate_rate_limited_total", []string{"kind", "command"}, 1},
		{"livegate_auth_failures_total", []string{"command", "connect", "reason", "expired"}, 1},
		{"livegate_broker_errors_total", []string{"op", "publish"}, 1},
		{"livegate_delivery_latency_seconds", nil, 1},
		{"livegate_swept_total", nil, 5},
		{"livegate_audit_dropped_total", nil, 9},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}
}

func TestUnknownLabelValuesCountAsOther(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Command("bogus", "weird")
	m.Command("event", "weird")
	m.RateLimited("\x1b[31mforged")
	m.AuthFailed("connect", strings.Repeat("x", 1000))
	fams := scrape(t, m.Handler())
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"livegate_commands_total", []string{"method", "other", "result", "other"}},
		{"livegate_commands_total", []string{"method", "event", "result", "other"}},
		{"livegate_rate_limited_total", []string{"kind", "other"}},
		{"livegate_auth_failures_total", []string{"command", "connect", "reason", "other"}},
	} {
		if got := value(t, fams, c.name, c.labels...); got != 1 {
			t.Errorf("%s%v = %v, want 1", c.name, c.labels, got)
		}
	}
}

func TestRecordingDoesNotAllocate(t *testing.T) {
	m := metrics.New()
	for name, f := range map[string]func(){
		"Command":         func() { m.Command("event", "ok") },
		"CommandOther":    func() { m.Command("nope", "nope") },
		"AuthFailed":      func() { m.AuthFailed("subscribe", "signature") },
		"UpgradeRefused":  func() { m.UpgradeRefused("origin") },
		"ConnectRefused":  func() { m.ConnectRefused("abandoned") },
		"Delivered":       func() { m.Delivered(1000) },
		"Wrote":           func() { m.Wrote(7) },
		"CoalesceWait":    func() { m.CoalesceWait() },
		"DeliveryLatency": func() { m.DeliveryLatency(time.Millisecond) },
		"Dropped":         func() { m.Dropped(metrics.DropQueueFull) },
		"RateLimited":     func() { m.RateLimited("handler") },
		"Connections":     func() { m.ConnectionOpened(); m.ConnectionEnded() },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", name, n)
		}
	}
}

// TestOwnRegistry checks nothing lands in the global registry, so two
// Metrics (two gateways, or tests in parallel) never collide.
func TestOwnRegistry(t *testing.T) {
	t.Parallel()
	a, b := metrics.New(), metrics.New()
	a.Published()
	if got := value(t, scrape(t, b.Handler()), "livegate_messages_published_total"); got != 0 {
		t.Fatalf("second Metrics sees %v publications", got)
	}
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "livegate_") {
			t.Fatalf("%s registered globally", f.GetName())
		}
	}
	if a.Registry() == b.Registry() {
		t.Fatal("shared registry")
	}
}

func TestHandlerTextFormat(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "# TYPE livegate_delivery_latency_seconds histogram") {
		t.Fatalf("exposition lacks the latency histogram:\n%.2000s", b)
	}
}
