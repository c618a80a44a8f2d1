package protocol

// Error codes carried in error replies. The message that goes with each is
// fixed and generic; see docs/protocol.md.
const (
	// CodeBadRequest: parameters or payload failed decoding or validation.
	CodeBadRequest = "bad_request"
	// CodeUnauthorized: a token was missing, invalid or expired.
	CodeUnauthorized = "unauthorized"
	// CodeForbidden: the channel is invalid, unknown or not allowed for
	// this connection, or client publishing is not allowed.
	CodeForbidden = "forbidden"
	// CodeNotAvailable: the event is unknown, guarded or not allowed. The
	// reply is byte-for-byte the same in every case.
	CodeNotAvailable = "not_available"
	// CodeRateLimited: the command was not run because a rate limit was hit.
	CodeRateLimited = "rate_limited"
	// CodeLimitExceeded: a structural limit (channels per connection) was hit.
	CodeLimitExceeded = "limit_exceeded"
	// CodeTooLarge: the message would exceed the outbound size limit.
	CodeTooLarge = "too_large"
	// CodeInternal: the server failed; details are in the server log.
	CodeInternal = "internal"
	// CodeUnavailable: a back end (broker, store) is unreachable; retry later.
	CodeUnavailable = "unavailable"
)

var messages = map[string]string{
	CodeBadRequest:    "bad request",
	CodeUnauthorized:  "unauthorized",
	CodeForbidden:     "forbidden",
	CodeNotAvailable:  "not available",
	CodeRateLimited:   "rate limited",
	CodeLimitExceeded: "limit exceeded",
	CodeTooLarge:      "message too large",
	CodeInternal:      "internal error",
	CodeUnavailable:   "temporarily unavailable",
}

// NewError returns the generic error for code.
func NewError(code string) *Error {
	m, ok := messages[code]
	if !ok {
		code, m = CodeInternal, messages[CodeInternal]
	}
	return &Error{Code: code, Message: m}
}

// CloseCode is a WebSocket close status used by livegate.
type CloseCode int

// Close codes. Advice tells a client what to do after each.
const (
	CloseNormal         CloseCode = 1000
	CloseGoingAway      CloseCode = 1001 // server shutting down: reconnect with back-off
	CloseTooBig         CloseCode = 1009 // inbound frame over the limit: stop
	CloseMalformed      CloseCode = 4400 // protocol violation: stop
	CloseUnauthorized   CloseCode = 4401 // bad token: get a new token, then reconnect
	CloseForbidden      CloseCode = 4403 // revoked or forbidden: stop
	CloseConnectTimeout CloseCode = 4408 // no connect in time: reconnect
	CloseTokenExpired   CloseCode = 4409 // token expired: get a new token, then reconnect
	CloseRateLimited    CloseCode = 4429 // rate limited: reconnect after a long back-off
	CloseSlowConsumer   CloseCode = 4503 // could not keep up: reconnect and recover
	CloseInternal       CloseCode = 4500 // server error: reconnect with back-off
)

// Advice is what a client should do after a close.
type Advice int

// Advices a client follows after a close.
const (
	// AdviceReconnect: reconnect with jittered back-off, recovering streams.
	AdviceReconnect Advice = iota
	// AdviceNewToken: obtain a fresh token, then reconnect.
	AdviceNewToken
	// AdviceStop: do not reconnect; the condition will not go away by itself.
	AdviceStop
)

// AdviceFor returns the client behaviour for a close code.
func AdviceFor(code CloseCode) Advice {
	switch code {
	case CloseUnauthorized, CloseTokenExpired:
		return AdviceNewToken
	case CloseTooBig, CloseMalformed, CloseForbidden, CloseNormal:
		return AdviceStop
	default:
		return AdviceReconnect
	}
}

// String returns the close reason sent with the code; it is generic.
func (c CloseCode) String() string {
	switch c {
	case CloseNormal:
		return "normal closure"
	case CloseGoingAway:
		return "server going away"
	case CloseTooBig:
		return "message too big"
	case CloseMalformed:
		return "malformed frame"
	case CloseUnauthorized:
		return "unauthorized"
	case CloseForbidden:
		return "forbidden"
	case CloseConnectTimeout:
		return "connect timeout"
	case CloseTokenExpired:
		return "token expired"
	case CloseRateLimited:
		return "rate limited"
	case CloseSlowConsumer:
		return "slow consumer"
	case CloseInternal:
		return "internal error"
	}
	return "closed"
}
