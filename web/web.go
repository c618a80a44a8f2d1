// Package web serves livegate's browser client, livegate.js: an ES module
// that speaks wire protocol v1 (docs/protocol.md), with its TypeScript
// declarations and the two libraries its live views and live-operation
// widgets use (vendor/README.md).
//
// The client authenticates with a fresh token for every connection attempt,
// refreshes its token before it expires, reconnects with jittered
// exponential back-off following the server's close codes, resubscribes
// with the last seen stream position so that no publication is missed or
// delivered twice, and paces its own commands under the server's rate
// limit. Live views and live operations insert server-rendered HTML only
// through DOMPurify and idiomorph, which the client loads on first use from
// vendor/ next to its own URL.
//
// Handler serves the whole file set (see Paths): livegate.js, livegate.d.ts
// and vendor/purify.es.mjs and vendor/idiomorph.esm.js. Mount it under a
// prefix,
//
//	mux.Handle("GET /livegate/", http.StripPrefix("/livegate", web.Handler()))
//
// and import "/livegate/livegate.js"; or at the root, one pattern per path:
//
//	for _, p := range web.Paths() {
//		mux.Handle("GET "+p, web.Handler())
//	}
//
// ClientHandler serves livegate.js alone at whatever path it is mounted:
//
//	mux.Handle("GET /livegate.js", web.ClientHandler())
//
// That is enough for the core client (connect, subscribe, call, publish);
// mountViews and watchOperation also need vendor/ beside it, so mount
// Handler as well (or instead) when the pages use them.
//
// The page script (a file, so that a strict Content-Security-Policy
// without 'unsafe-inline' allows it) imports the module:
//
//	import {Client} from "/livegate.js";
//
//	const client = new Client("wss://example.com/ws", {getToken});
//	await client.connect();
//
// The files are embedded in the binary; every response sets a strong ETag
// (the SHA-256 of the content), Cache-Control: no-cache (browsers always
// revalidate and never run a stale client after an upgrade) and
// X-Content-Type-Options: nosniff.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

//go:embed livegate.js livegate.d.ts vendor/purify.es.mjs vendor/idiomorph.esm.js
var files embed.FS

const (
	typeJS = "text/javascript; charset=utf-8"
	typeTS = "application/typescript; charset=utf-8"
)

// asset is one served file.
type asset struct {
	name  string // base name, for http.ServeContent
	body  []byte
	ctype string
	etag  string // strong: the quoted hex SHA-256 of body
}

// fileSet lists the served paths and their embedded files, in Paths order.
var fileSet = []struct{ path, file, ctype string }{
	{"/livegate.js", "livegate.js", typeJS},
	{"/livegate.d.ts", "livegate.d.ts", typeTS},
	{"/vendor/purify.es.mjs", "vendor/purify.es.mjs", typeJS},
	{"/vendor/idiomorph.esm.js", "vendor/idiomorph.esm.js", typeJS},
}

var assets = func() map[string]*asset {
	m := make(map[string]*asset, len(fileSet))
	for _, f := range fileSet {
		body, err := files.ReadFile(f.file)
		if err != nil {
			panic("web: embedded file missing: " + f.file)
		}
		sum := sha256.Sum256(body)
		m[f.path] = &asset{
			name:  f.file[strings.LastIndexByte(f.file, '/')+1:],
			body:  body,
			ctype: f.ctype,
			etag:  `"` + hex.EncodeToString(sum[:]) + `"`,
		}
	}
	return m
}()

// clientAsset is livegate.js.
var clientAsset = assets["/livegate.js"]

// ClientJS returns a copy of the embedded browser client.
func ClientJS() []byte {
	return bytes.Clone(clientAsset.body)
}

// Paths returns the paths Handler serves: "/livegate.js",
// "/livegate.d.ts", "/vendor/purify.es.mjs" and "/vendor/idiomorph.esm.js".
// The result is a new slice on every call.
func Paths() []string {
	out := make([]string, len(fileSet))
	for i, f := range fileSet {
		out[i] = f.path
	}
	return out
}

// ClientHandler returns an http.Handler that serves the browser client
// livegate.js to GET and HEAD requests with Content-Type
// "text/javascript; charset=utf-8", X-Content-Type-Options: nosniff,
// Cache-Control: no-cache and an ETag; a matching If-None-Match gets 304 Not
// Modified. Other methods get 405 Method Not Allowed. The handler ignores the
// request path, so mount it at the path pages import the module from.
// Live views and live operations also need the vendor files: see Handler.
func ClientHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, clientAsset)
	})
}

// Handler returns an http.Handler that serves the fixed file set of Paths,
// matched exactly against the request path (strip any mount prefix with
// http.StripPrefix): JavaScript as "text/javascript; charset=utf-8", the
// TypeScript declarations as "application/typescript; charset=utf-8", each
// with X-Content-Type-Options: nosniff, Cache-Control: no-cache and a
// strong ETag, answering If-None-Match with 304. Any other path gets 404 Not
// Found, and a method other than GET or HEAD on a served path 405 Method
// Not Allowed.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			w.Header().Set("X-Content-Type-Options", "nosniff")
			http.NotFound(w, r)
			return
		}
		serveAsset(w, r, a)
	})
}

func serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	// ServeContent answers If-None-Match (304), HEAD and Range requests; the
	// zero modification time disables Last-Modified handling.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
