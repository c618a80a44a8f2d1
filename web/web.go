// Package web serves livegate's browser client, livegate.js: a
// dependency-free ES module that speaks wire protocol v1 (docs/protocol.md).
//
// The client authenticates with a fresh token for every connection attempt,
// refreshes its token before it expires, reconnects with jittered
// exponential back-off following the server's close codes, resubscribes
// with the last seen stream position so that no publication is missed or
// delivered twice, and paces its own commands under the server's rate
// limit. The application mounts the handler
//
//	mux.Handle("GET /livegate.js", web.ClientHandler())
//
// and its page script (a file, so that a strict Content-Security-Policy
// without 'unsafe-inline' allows it) imports the module:
//
//	import {Client} from "/livegate.js";
//
//	const client = new Client("wss://example.com/ws", {getToken});
//	await client.connect();
//
// The file is embedded in the binary; the handler sets a strong ETag (the
// SHA-256 of the content) and Cache-Control: no-cache, so browsers always
// revalidate and never run a stale client after an upgrade.
package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed livegate.js
var clientJS []byte

// clientETag is the strong entity tag of clientJS.
var clientETag = func() string {
	sum := sha256.Sum256(clientJS)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}()

// ClientJS returns a copy of the embedded browser client.
func ClientJS() []byte {
	return bytes.Clone(clientJS)
}

// ClientHandler returns an http.Handler that serves the browser client
// livegate.js to GET and HEAD requests with Content-Type
// "text/javascript; charset=utf-8", X-Content-Type-Options: nosniff,
// Cache-Control: no-cache and an ETag; a matching If-None-Match gets 304 Not
// Modified. Other methods get 405 Method Not Allowed. The handler ignores the
// request path, so mount it at the path pages import the module from.
func ClientHandler() http.Handler {
	return http.HandlerFunc(serveClient)
}

func serveClient(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", clientETag)
	// ServeContent answers If-None-Match (304), HEAD and Range requests; the
	// zero modification time disables Last-Modified handling.
	http.ServeContent(w, r, "livegate.js", time.Time{}, bytes.NewReader(clientJS))
}
