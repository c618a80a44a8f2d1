// Package protocol defines livegate's wire protocol v1: the frames a client
// and the server exchange over a WebSocket with subprotocol "livegate.v1",
// the error codes carried in replies and the close codes that end a
// connection.
//
// The exact contract is written down in docs/protocol.md; this package is
// its executable form. It depends on the standard library only, so a Go
// client and the server share one definition of every frame.
//
// Decoding is strict: every frame is a single JSON object, unknown fields
// are rejected and parameters are decoded into typed structs. Encoding of
// server pushes is done once per publication and the bytes are shared by
// every subscriber.
package protocol
