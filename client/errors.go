package client

import (
	"errors"
	"fmt"

	"github.com/livegate/livegate/protocol"
)

// Errors returned by the client API.
var (
	// ErrClosed is returned after Close, or after the server closed the
	// connection with a code whose advice is to stop (see
	// protocol.AdviceFor).
	ErrClosed = errors.New("client: closed")
	// ErrNotConnected is returned by calls made before Connect succeeded.
	ErrNotConnected = errors.New("client: not connected")
	// ErrAlreadyConnected is returned by Connect when the client is
	// already connected or connecting.
	ErrAlreadyConnected = errors.New("client: already connected")
	// ErrDisconnected is wrapped by the error of a call whose connection
	// was lost before the reply arrived. The error also wraps the reason,
	// usually a *CloseError. The server may or may not have run the
	// command.
	ErrDisconnected = errors.New("client: disconnected")
	// ErrAlreadySubscribed is returned by Subscribe for a channel the
	// client is already subscribed to.
	ErrAlreadySubscribed = errors.New("client: already subscribed")
	// ErrTooLarge is returned for a command whose frame would exceed
	// Config.MaxFrameSize; it was not sent.
	ErrTooLarge = errors.New("client: command too large")
)

// CloseError reports that the server closed the connection with a close
// frame. Connect returns it (wrapped) when the server refuses the
// connection, calls in flight see it wrapped with ErrDisconnected, and
// Config.OnError receives it when the client stops. Use errors.As to get
// it; protocol.AdviceFor(Code) says what the client does next.
type CloseError struct {
	// Code is the WebSocket close status, e.g. protocol.CloseUnauthorized.
	Code protocol.CloseCode
	// Reason is the generic reason text the server sent.
	Reason string
}

// Error implements the error interface.
func (e *CloseError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = e.Code.String()
	}
	return fmt.Sprintf("client: server closed the connection: %d %s", int(e.Code), reason)
}

// disconnected wraps cause as the error of a call lost with its connection.
func disconnected(cause error) error {
	return fmt.Errorf("%w: %w", ErrDisconnected, cause)
}

// adviceFor returns what to do after a connection ended because of cause.
// Anything but a close frame (a dropped socket, a silent server) is
// retried with back-off.
func adviceFor(cause error) protocol.Advice {
	var ce *CloseError
	if errors.As(cause, &ce) {
		return protocol.AdviceFor(ce.Code)
	}
	return protocol.AdviceReconnect
}

// closeCode returns the close code carried by err, or 0.
func closeCode(err error) protocol.CloseCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}
