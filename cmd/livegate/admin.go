package main

import (
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/metrics"
)

// adminServer serves /metrics, /healthz and /readyz on a listener of their
// own, apart from the public one, so they can be kept off the internet. A
// nil *adminServer (no --admin-addr) does nothing.
type adminServer struct {
	ln net.Listener
	hs *http.Server
	// revoke, when set before serve, is mounted at /admin/revoke.
	revoke http.Handler
}

// listenAdmin opens the admin listener on addr; "" disables it (nil).
func listenAdmin(addr string) (*adminServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	return &adminServer{ln: ln}, nil
}

// serve starts serving gw's health endpoints and m's metrics and prints
// where. On a loopback listener other Host headers are refused (DNS
// rebinding: a web page must not read the metrics through the browser).
func (a *adminServer) serve(gw *livegate.Gateway, m *metrics.Metrics, out io.Writer) {
	if a == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.Handle("/healthz", gw.HealthHandler())
	mux.Handle("/readyz", gw.ReadyHandler())
	if a.revoke != nil {
		mux.Handle("/admin/revoke", a.revoke)
	}
	var h http.Handler = mux
	if hosts := loopbackHosts(a.ln.Addr()); hosts != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, host := range hosts {
				if r.Host == host {
					mux.ServeHTTP(w, r)
					return
				}
			}
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		})
	}
	a.hs = newHTTPServer(h)
	fmt.Fprintf(out, "metrics and health on http://%s (/metrics, /healthz, /readyz)\n", a.ln.Addr())
	go func() { _ = a.hs.Serve(a.ln) }()
}

// Close stops the admin listener and its connections.
func (a *adminServer) Close() error {
	if a == nil {
		return nil
	}
	if a.hs != nil {
		return a.hs.Close()
	}
	return a.ln.Close()
}
