// Package loadgen holds the pieces shared by livegate's load tools
// (`livegate load` and livegate-bench): checking that a target is on this
// machine, dialing only loopback addresses, spreading connections over
// source addresses, and percentiles.
//
// Both tools are for this machine only: every URL is checked with
// CheckLoopbackURL before anything is dialed, and every dial goes through
// a transport from NewTransport, which refuses non-loopback addresses even
// when a name resolves to one.
package loadgen

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"syscall"
	"time"
)

// ErrNotLoopback is returned for a target that is not on this machine.
var ErrNotLoopback = errors.New("refusing a target that is not a loopback IP or localhost")

// CheckLoopbackURL accepts URLs with one of schemes whose host is a
// loopback IP literal or "localhost". It returns the literal address
// (invalid for localhost). Errors name raw but no flag.
func CheckLoopbackURL(raw string, schemes ...string) (netip.Addr, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return netip.Addr{}, err
	}
	if !slices.Contains(schemes, u.Scheme) {
		return netip.Addr{}, fmt.Errorf("%q: scheme must be one of %v", raw, schemes)
	}
	if u.Opaque != "" || u.User != nil {
		return netip.Addr{}, fmt.Errorf("%q: not a plain %s URL", raw, u.Scheme)
	}
	host := u.Hostname()
	if host == "localhost" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || !a.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("%q: %w", raw, ErrNotLoopback)
	}
	return a.Unmap(), nil
}

// Sources returns the local addresses conns connections dial from, round
// robin, perSource connections each: 127.0.0.2 and up (then 127.0.1.2 and
// so on) for an IPv4 loopback target, so that many connections stay well
// below the ephemeral port range of one (source, destination) pair and
// below per-IP limits. For other targets, or when spread is false, it
// returns one nil entry: the default address.
func Sources(target netip.Addr, conns, perSource int, spread bool) []net.Addr {
	if !spread || !target.Is4() || perSource < 1 {
		return []net.Addr{nil}
	}
	n := max(1, (conns+perSource-1)/perSource)
	n = min(n, 250*255)
	out := make([]net.Addr, n)
	for i := range n {
		out[i] = &net.TCPAddr{IP: net.IPv4(127, 0, byte(i/250), byte(2+i%250))}
	}
	return out
}

// DescribeSources formats the result of Sources for a summary line.
func DescribeSources(sources []net.Addr) string {
	if len(sources) == 0 || (len(sources) == 1 && sources[0] == nil) {
		return "the default source address"
	}
	first := sources[0].(*net.TCPAddr).IP
	if len(sources) == 1 {
		return first.String()
	}
	return fmt.Sprintf("%s-%s", first, sources[len(sources)-1].(*net.TCPAddr).IP)
}

// NewTransport returns an HTTP transport that dials from src (nil: the
// default address) and only ever to loopback addresses, whatever a name
// resolves to. Keep-alives are off: a refused handshake's socket is never
// reused, and each WebSocket gets its own connection.
func NewTransport(src net.Addr, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            Dialer(src, timeout).DialContext,
		DisableKeepAlives:      true,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// Dialer returns a dialer from src (nil: the default address) that
// refuses every address that is not loopback.
func Dialer(src net.Addr, timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:   timeout,
		LocalAddr: src,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().IsLoopback() {
				return fmt.Errorf("refusing to connect to %s: not loopback", address)
			}
			return nil
		},
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, or 0 when it is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps float error (99.9/100*1000 = 999.0000000000001)
	// from moving the rank up by one.
	i := int(math.Ceil(p/100*float64(len(sorted))-1e-9)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
