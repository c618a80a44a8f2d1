// Package httpapi is livegate's HTTP API for backends: publish, broadcast,
// disconnect, revoke, presence, history and channel listing, each a POST
// of a JSON object under /api/, authenticated with a scoped API key
// (package apikey).
//
// Mount the Handler at "/api/" next to the gateway:
//
//	keys, _ := apikey.New(apikey.Config{Store: db.APIKeys()})
//	api, _ := httpapi.New(httpapi.Config{Gateway: gw, Keys: keys, SecurityEvents: events})
//	mux.Handle("/ws", gw)
//	mux.Handle("/api/", api)
//
// The handler routes on the full request path, so mount it without
// http.StripPrefix.
//
// Every request must carry a key in "Authorization: Bearer lg_…" or
// "X-API-Key". Bodies are decoded strictly (one JSON object, no unknown or
// duplicate fields, at most Config.MaxBodyBytes). A missing or bad key gets
// 401, a call outside the key's scopes 403, a key past its rate limit 429
// with Retry-After; every refusal has a generic JSON body, and every call,
// served or refused, is an audit event (TypeAPIRequest, TypeAPIDenied)
// naming the key's id, never its secret. docs/http-api.md describes the
// endpoints.
package httpapi
