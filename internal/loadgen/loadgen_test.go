package loadgen_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/livegate/livegate/internal/loadgen"
)

func TestCheckLoopbackURL(t *testing.T) {
	for _, ok := range []string{"ws://127.0.0.1:8080/ws", "ws://127.9.9.9/ws", "ws://[::1]:1/ws", "ws://localhost:80/ws"} {
		if _, err := loadgen.CheckLoopbackURL(ok, "ws", "wss"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"ws://10.0.0.1/ws", "ws://example.com/ws", "ws://127.0.0.1.example.com/ws", "ws://[fe80::1%25lo]/ws",
		"ws://0.0.0.0/ws", "ws://user@127.0.0.1/ws", "http://127.0.0.1/ws", "ws:127.0.0.1", "::",
	} {
		if _, err := loadgen.CheckLoopbackURL(bad, "ws", "wss"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := loadgen.CheckLoopbackURL("ws://192.0.2.1/", "ws"); !errors.Is(err, loadgen.ErrNotLoopback) {
		t.Errorf("want ErrNotLoopback, got %v", err)
	}
}

func TestSources(t *testing.T) {
	v4 := netip.MustParseAddr("127.0.0.1")
	s := loadgen.Sources(v4, 1001, 500, true)
	if len(s) != 3 || s[0].(*net.TCPAddr).IP.String() != "127.0.0.2" || s[2].(*net.TCPAddr).IP.String() != "127.0.0.4" {
		t.Errorf("sources %v", s)
	}
	s = loadgen.Sources(v4, 300*500, 500, true)
	if got := s[250].(*net.TCPAddr).IP.String(); got != "127.0.1.2" {
		t.Errorf("source 250 = %s, want 127.0.1.2", got)
	}
	for _, s := range [][]net.Addr{
		loadgen.Sources(netip.MustParseAddr("::1"), 5000, 500, true),
		loadgen.Sources(v4, 5000, 500, false),
	} {
		if len(s) != 1 || s[0] != nil {
			t.Errorf("want the default address only, got %v", s)
		}
	}
}

func TestDialerRefusesOtherHosts(t *testing.T) {
	_, err := loadgen.Dialer(nil, time.Second).Dial("tcp", "192.0.2.1:80")
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("dial 192.0.2.1: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 500, 99: 990, 99.9: 999, 100: 1000} {
		if got := loadgen.Percentile(d, p); got != want {
			t.Errorf("p%g = %d, want %d", p, got, want)
		}
	}
	if loadgen.Percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}

func ExampleSources() {
	target := netip.MustParseAddr("127.0.0.1")
	fmt.Println(loadgen.DescribeSources(loadgen.Sources(target, 1200, 500, true)))
	// Output: 127.0.0.2-127.0.0.4
}
