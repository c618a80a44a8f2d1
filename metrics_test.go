package livegate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/metrics"
	"github.com/livegate/livegate/protocol"
)

// adminServer serves m's metrics and gw's health endpoints as an
// operator's admin listener would.
func adminServer(t *testing.T, gw *livegate.Gateway, m *metrics.Metrics) string {
	t.Helper()
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("/metrics", m.Handler())
	}
	mux.Handle("/healthz", gw.HealthHandler())
	mux.Handle("/readyz", gw.ReadyHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// scrapeMetrics fetches and parses url's Prometheus text exposition.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// series is one sample of a scrape: its labels and value (a histogram's
// sample count).
type series struct {
	labels map[string]string
	value  float64
}

func familySeries(t *testing.T, fams map[string]*dto.MetricFamily, name string) []series {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("metric %s not exposed", name)
	}
	var out []series
	for _, m := range f.GetMetric() {
		s := series{labels: map[string]string{}}
		for _, l := range m.GetLabel() {
			s.labels[l.GetName()] = l.GetValue()
		}
		switch {
		case m.Counter != nil:
			s.value = m.GetCounter().GetValue()
		case m.Gauge != nil:
			s.value = m.GetGauge().GetValue()
		case m.Histogram != nil:
			s.value = float64(m.GetHistogram().GetSampleCount())
		}
		out = append(out, s)
	}
	return out
}

// checkFamily asserts the exact value of every series of name: those in
// want (keyed "label=value,label=value" with the labels sorted by name,
// "" for none) and zero for all others.
func checkFamily(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]float64) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range familySeries(t, fams, name) {
		var key []string
		for n, v := range s.labels {
			key = append(key, n+"="+v)
		}
		slices.Sort(key)
		k := strings.Join(key, ",")
		seen[k] = true
		if s.value != want[k] {
			t.Errorf("%s{%s} = %v, want %v", name, k, s.value, want[k])
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("%s{%s} not exposed", name, k)
		}
	}
}

// TestMetricsAfterScriptedSession runs a session against a real gateway,
// scrapes /metrics over HTTP and checks every livegate counter exactly.
func TestMetricsAfterScriptedSession(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.SetAuditDropped(func() uint64 { return 7 })
	e := newEnv(t, func(c *livegate.Config) {
		c.Metrics = m
		// Three commands after connect, then rate_limited.
		c.CommandRate, c.CommandBurst = 0.0001, 3
	})
	admin := adminServer(t, e.gw, m)
	ctx := context.Background()

	// An upgrade refused: a plain GET.
	r, err := http.Get(e.srv.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d", r.StatusCode)
	}

	c := e.connect(t, "alice")
	c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "chat:lobby"})
	if f := c.reply(2); f.Error != nil {
		t.Fatalf("subscribe: %+v", f.Error)
	}
	c.sendCmd(3, "publish", protocol.PublishParams{Channel: "chat:lobby", Data: json.RawMessage(`{"n":1}`)})
	if p := c.push(); string(p.Data) != `{"n":1}` {
		t.Fatalf("push %s", p.Data)
	}
	if f := c.reply(3); f.Error != nil {
		t.Fatalf("publish: %+v", f.Error)
	}
	// A forbidden subscribe: no such namespace.
	c.sendCmd(4, "subscribe", protocol.SubscribeParams{Channel: "nope:x"})
	if f := c.reply(4); f.Error == nil || f.Error.Code != protocol.CodeForbidden {
		t.Fatalf("forbidden subscribe: %+v", f)
	}
	// The bucket is empty: rate limited.
	c.sendCmd(5, "unsubscribe", protocol.UnsubscribeParams{Channel: "chat:lobby"})
	if f := c.reply(5); f.Error == nil || f.Error.Code != protocol.CodeRateLimited {
		t.Fatalf("rate-limited command: %+v", f)
	}
	if _, err := e.gw.Publish(ctx, "chat:lobby", "from the server"); err != nil {
		t.Fatal(err)
	}
	c.push()

	// A bad token: signed with another key.
	other, err := auth.NewSigner(auth.SignerConfig{Algorithm: "HS256", HMACSecret: []byte("another-secret-0123456789abcdef-0123")})
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.Sign(auth.Identity{User: "mallory"}, auth.KindConnect, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	bad := e.dial(t)
	bad.send(`{"id":1,"method":"connect","params":{"token":"` + forged + `"}}`)
	bad.expectClose(protocol.CloseUnauthorized)
	waitFor(t, "the refused connection to end", func() bool { return e.gw.Stats().Connections == 1 })

	fams := scrapeMetrics(t, admin)
	checkFamily(t, fams, "livegate_connections", map[string]float64{"": 1})
	checkFamily(t, fams, "livegate_connections_accepted_total", map[string]float64{"": 1})
	checkFamily(t, fams, "livegate_connections_refused_total", map[string]float64{
		"reason=not_websocket,stage=upgrade": 1,
		"reason=token,stage=connect":         1,
	})
	checkFamily(t, fams, "livegate_commands_total", map[string]float64{
		"method=connect,result=ok":               1,
		"method=connect,result=closed":           1,
		"method=subscribe,result=ok":             1,
		"method=publish,result=ok":               1,
		"method=subscribe,result=forbidden":      1,
		"method=unsubscribe,result=rate_limited": 1,
	})
	checkFamily(t, fams, "livegate_messages_published_total", map[string]float64{"": 2})
	checkFamily(t, fams, "livegate_messages_delivered_total", map[string]float64{"": 2})
	checkFamily(t, fams, "livegate_messages_dropped_total", nil)
	checkFamily(t, fams, "livegate_rate_limited_total", map[string]float64{"kind=command": 1})
	checkFamily(t, fams, "livegate_auth_failures_total", map[string]float64{"command=connect,reason=signature": 1})
	checkFamily(t, fams, "livegate_broker_errors_total", nil)
	checkFamily(t, fams, "livegate_audit_dropped_total", map[string]float64{"": 7})
	checkFamily(t, fams, "livegate_delivery_latency_seconds", map[string]float64{"": 2})
	checkFamily(t, fams, "livegate_swept_total", map[string]float64{"": 0})
	familySeries(t, fams, "livegate_outbound_queued_bytes") // measured each second
	// How frames group into writes depends on timing; every frame the
	// client read went out in some write.
	writes := familySeries(t, fams, "livegate_socket_writes_total")
	frames := familySeries(t, fams, "livegate_socket_write_frames_total")
	if len(writes) != 1 || len(frames) != 1 || writes[0].value < 1 || frames[0].value < writes[0].value {
		t.Errorf("socket writes %+v carrying frames %+v: want at least one write, at least one frame each", writes, frames)
	}
	familySeries(t, fams, "livegate_coalesce_waits_total")
}

// TestMetricsOffServes runs the same kinds of paths with
// Config.Metrics nil (the default): nothing is recorded and nothing panics.
func TestMetricsOffServes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *livegate.Config) { c.CommandRate, c.CommandBurst = 0.0001, 2 })
	admin := adminServer(t, e.gw, nil)
	c := e.connect(t, "alice")
	c.sendCmd(2, "subscribe", protocol.SubscribeParams{Channel: "chat:lobby"})
	c.reply(2)
	c.sendCmd(3, "publish", protocol.PublishParams{Channel: "chat:lobby", Data: json.RawMessage(`1`)})
	c.push()
	c.reply(3)
	c.sendCmd(4, "subscribe", protocol.SubscribeParams{Channel: "nope:x"})
	if f := c.reply(4); f.Error == nil || f.Error.Code != protocol.CodeRateLimited {
		t.Fatalf("want rate_limited, got %+v", f)
	}
	bad := e.dial(t)
	bad.send(`{"id":1,"method":"connect","params":{"token":"x.y.z"}}`)
	bad.expectClose(protocol.CloseUnauthorized)
	resp, err := http.Get(admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("readyz: %d %s", resp.StatusCode, body)
	}
}
