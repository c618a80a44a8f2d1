package main

import (
	"encoding/json"
	"io"
	"net/http"
)

// rpcProxyHandler is the smallest RPC proxy backend Centrifugo can call:
// it answers every RPC at once with the call's own data,
// {"result":{"data":<data>}}. Centrifugo runs no application code of its
// own, so its client RPC needs such a backend; livegate runs the
// equivalent echo handler in process.
func rpcProxyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublishBody))
		var req struct {
			Data json.RawMessage `json:"data"`
		}
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if len(req.Data) == 0 {
			req.Data = json.RawMessage("null")
		}
		w.Header().Set("Content-Type", "application/json")
		out := make([]byte, 0, len(req.Data)+32)
		out = append(out, `{"result":{"data":`...)
		out = append(out, req.Data...)
		out = append(out, "}}"...)
		_, _ = w.Write(out)
	})
}
