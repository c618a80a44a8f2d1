package broker

import (
	"context"
	"encoding/json"
	"time"
)

// Control is implemented by brokers that connect several gateway nodes. It
// carries node-to-node control messages — revocations, disconnects,
// presence joins and leaves — to every node sharing the broker. A
// single-node broker need not implement it.
type Control interface {
	// PublishControl delivers msg, an opaque JSON document, to the
	// control handler of every node, possibly including the sender's own
	// (senders recognise their own messages by a node id inside msg). An
	// error means the message may not have reached every node.
	PublishControl(ctx context.Context, msg []byte) error
	// SetControlHandler sets the function receiving control messages. It
	// is called once, before any PublishControl. The handler is called
	// from the broker's goroutines and must not block.
	SetControlHandler(h func(msg []byte))
}

// ClientInfo describes one connection present in a channel.
type ClientInfo struct {
	// ConnID is the connection's id, unique across nodes.
	ConnID string `json:"conn"`
	// User is the connection's user ("sub").
	User string `json:"user"`
	// Node is the id of the gateway node holding the connection.
	Node string `json:"node,omitempty"`
	// Info is optional application data about the connection, a JSON
	// value set by the server side, never by the client.
	Info json.RawMessage `json:"info,omitempty"`
}

// Presence records which connections are in which channels, for one node
// or across nodes. Entries expire unless refreshed, so the connections of
// a node that died disappear after ttl.
type Presence interface {
	// AddPresence records (or refreshes) c in channel until ttl from now.
	AddPresence(ctx context.Context, channel string, c ClientInfo, ttl time.Duration) error
	// RemovePresence removes connID from channel.
	RemovePresence(ctx context.Context, channel, connID string) error
	// Presence returns the unexpired entries of channel, in no particular
	// order.
	Presence(ctx context.Context, channel string) ([]ClientInfo, error)
}
