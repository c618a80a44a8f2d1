package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Subprotocol is the WebSocket subprotocol a client must offer.
const Subprotocol = "livegate.v1"

// Method names a client may send.
const (
	MethodConnect     = "connect"
	MethodSubscribe   = "subscribe"
	MethodUnsubscribe = "unsubscribe"
	MethodEvent       = "event"
	MethodPublish     = "publish"
	MethodRefresh     = "refresh"
	// MethodJoin, MethodView and MethodLeave drive live views: join mounts
	// a view, view sends it an event, leave closes it.
	MethodJoin  = "join"
	MethodView  = "view"
	MethodLeave = "leave"
	// MethodPresence lists the connections present in a channel the
	// connection is subscribed to.
	MethodPresence = "presence"
)

// MaxConnectData is the largest "data" a connect may carry, in bytes.
const MaxConnectData = 4 << 10

// ErrMalformed reports a frame that is not a well-formed v1 command.
var ErrMalformed = errors.New("protocol: malformed frame")

// Command is a client to server frame.
type Command struct {
	// ID correlates the reply; it must be at least 1.
	ID uint64 `json:"id"`
	// Method is one of the Method constants.
	Method string `json:"method"`
	// Params holds the method's parameters, decoded with DecodeParams.
	Params json.RawMessage `json:"params,omitempty"`
}

// ConnectParams are the parameters of "connect".
type ConnectParams struct {
	// Token is the connect token; it may be absent only when the gateway
	// has a connect hook that accepts connections without one.
	Token string `json:"token,omitempty"`
	// Data is an optional JSON value (at most MaxConnectData bytes) handed
	// to the gateway's connect hook; without a hook it is ignored.
	Data json.RawMessage `json:"data,omitempty"`
	// Batch asks the server to send several frames in one WebSocket
	// message when it has more than one queued, separated by "\n". A
	// client that sets it splits every message it receives on "\n"; the
	// server then never leaves a raw newline inside a frame.
	Batch bool `json:"batch,omitempty"`
}

// StreamPosition identifies a point in a channel's stream.
type StreamPosition struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// SubscribeParams are the parameters of "subscribe".
type SubscribeParams struct {
	Channel string          `json:"channel"`
	Token   string          `json:"token,omitempty"`
	Since   *StreamPosition `json:"since,omitempty"`
}

// UnsubscribeParams are the parameters of "unsubscribe".
type UnsubscribeParams struct {
	Channel string `json:"channel"`
}

// EventParams are the parameters of "event".
type EventParams struct {
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// PublishParams are the parameters of "publish".
type PublishParams struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// RefreshParams are the parameters of "refresh".
type RefreshParams struct {
	Token string `json:"token"`
}

// ConnectResult is the result of a successful "connect".
type ConnectResult struct {
	// Client is the connection's id, unique per node.
	Client string `json:"client"`
	// User is the authenticated subject.
	User string `json:"user"`
	// Expires is the token's expiry as Unix seconds; the client must
	// refresh before it.
	Expires int64 `json:"expires"`
	// Ping is the server's ping interval in seconds.
	Ping int `json:"ping"`
	// Channels are the channels the server subscribed the connection to
	// at connect, by name, with each one's stream position.
	Channels map[string]StreamPosition `json:"channels,omitempty"`
	// Batch confirms that messages may carry several frames separated by
	// "\n" (the connect asked for it).
	Batch bool `json:"batch,omitempty"`
}

// PresenceParams are the parameters of "presence".
type PresenceParams struct {
	Channel string `json:"channel"`
}

// PresenceClient is one connection present in a channel.
type PresenceClient struct {
	Conn string `json:"conn"`
	User string `json:"user"`
}

// PresenceResult is the result of a successful "presence".
type PresenceResult struct {
	Clients []PresenceClient `json:"clients"`
}

// Publication is one message of a channel's stream, as carried in a
// subscribe result during recovery.
type Publication struct {
	Offset uint64          `json:"offset"`
	Data   json.RawMessage `json:"data"`
}

// SubscribeResult is the result of a successful "subscribe".
type SubscribeResult struct {
	// Offset and Epoch give the channel's current stream position.
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
	// Recovered is present when the subscribe carried "since": true when
	// Publications holds exactly the messages missed, false when they
	// could not all be recovered and the application must reload state.
	Recovered *bool `json:"recovered,omitempty"`
	// Publications are the missed messages in offset order.
	Publications []Publication `json:"publications,omitempty"`
}

// PublishResult is the result of a successful "publish".
type PublishResult struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// RefreshResult is the result of a successful "refresh".
type RefreshResult struct {
	Expires int64 `json:"expires"`
}

// Error is the error object of a reply. Messages are generic; details
// never reach the client outside debug mode.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Detail is only set in debug mode.
	Detail string `json:"detail,omitempty"`
}

// Error implements the error interface.
func (e *Error) Error() string { return "livegate: " + e.Code + ": " + e.Message }

// Reply is a server to client answer to a command.
type Reply struct {
	ID     uint64          `json:"id"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Push is a server initiated message on a channel: a publication, or,
// when one of Resubscribe, Join and Leave is set, a notice about the
// channel that carries no publication (and no offset, epoch or data).
type Push struct {
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	Epoch   string          `json:"epoch"`
	Data    json.RawMessage `json:"data"`
	// Resubscribe asks the client to unsubscribe and subscribe again with
	// "since" set to the last position it processed: publications may
	// have been lost on the server side.
	Resubscribe bool `json:"resubscribe,omitempty"`
	// Join and Leave announce a connection entering or leaving the
	// channel (namespaces with join/leave notices only).
	Join  *PresenceClient `json:"join,omitempty"`
	Leave *PresenceClient `json:"leave,omitempty"`
}

// IsPublication reports whether p carries a publication rather than a
// notice.
func (p *Push) IsPublication() bool {
	return !p.Resubscribe && p.Join == nil && p.Leave == nil
}

// ServerFrame is any server to client frame: a reply (ID set), a push, a
// live view's patch or the notice that a live view was closed. Clients
// decode into it and branch on which of Push, Patch and ViewClosed is
// non-nil.
type ServerFrame struct {
	ID         uint64          `json:"id,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      *Error          `json:"error,omitempty"`
	Push       *Push           `json:"push,omitempty"`
	Patch      *Patch          `json:"patch,omitempty"`
	ViewClosed *ViewClosed     `json:"view_closed,omitempty"`
}

// DecodeCommand decodes one client frame. Unknown fields, trailing data,
// a missing id and unknown methods are reported as ErrMalformed.
func DecodeCommand(frame []byte) (Command, error) {
	var c Command
	if err := strictUnmarshal(frame, &c); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if c.ID == 0 {
		return Command{}, fmt.Errorf("%w: missing id", ErrMalformed)
	}
	switch c.Method {
	case MethodConnect, MethodSubscribe, MethodUnsubscribe, MethodEvent, MethodPublish, MethodRefresh,
		MethodJoin, MethodView, MethodLeave, MethodPresence:
	default:
		return Command{}, fmt.Errorf("%w: unknown method", ErrMalformed)
	}
	return c, nil
}

// DecodeParams decodes command parameters into v with unknown fields
// rejected. Empty params decode as an empty object.
func DecodeParams(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	if err := strictUnmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: params: %v", ErrMalformed, err)
	}
	return nil
}

// Unmarshal decodes a single JSON value into v, rejecting unknown object
// fields and trailing data. Applications use it for typed payloads.
func Unmarshal(data []byte, v any) error {
	return strictUnmarshal(data, v)
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// AppendReply appends the encoding of a successful reply whose result is
// the already encoded JSON value result.
func AppendReply(dst []byte, id uint64, result []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"result":`...)
	if len(result) == 0 {
		result = []byte("null")
	}
	dst = append(dst, result...)
	return append(dst, '}')
}

// AppendErrorReply appends the encoding of an error reply.
func AppendErrorReply(dst []byte, id uint64, e *Error) []byte {
	b, err := json.Marshal(e)
	if err != nil { // cannot happen: Error holds strings only
		b = []byte(`{"code":"internal","message":"internal error"}`)
	}
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"error":`...)
	dst = append(dst, b...)
	return append(dst, '}')
}

// AppendPush appends the encoding of a push frame. data must be valid
// JSON; channel and epoch are JSON-quoted.
func AppendPush(dst []byte, channel string, offset uint64, epoch string, data []byte) []byte {
	dst = append(dst, `{"push":{"channel":`...)
	dst = appendQuoted(dst, channel)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, offset, 10)
	dst = append(dst, `,"epoch":`...)
	dst = appendQuoted(dst, epoch)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, "}}"...)
}

// AppendResubscribePush appends the encoding of a push asking the client
// to resubscribe to channel with "since".
func AppendResubscribePush(dst []byte, channel string) []byte {
	dst = append(dst, `{"push":{"channel":`...)
	dst = appendQuoted(dst, channel)
	return append(dst, `,"resubscribe":true}}`...)
}

// AppendPresencePush appends the encoding of a join (join true) or leave
// push for channel.
func AppendPresencePush(dst []byte, channel string, join bool, c PresenceClient) []byte {
	dst = append(dst, `{"push":{"channel":`...)
	dst = appendQuoted(dst, channel)
	if join {
		dst = append(dst, `,"join":{"conn":`...)
	} else {
		dst = append(dst, `,"leave":{"conn":`...)
	}
	dst = appendQuoted(dst, c.Conn)
	dst = append(dst, `,"user":`...)
	dst = appendQuoted(dst, c.User)
	return append(dst, "}}}"...)
}

// PushSize returns the exact encoded length of a push frame, so callers
// can refuse oversize messages before encoding.
func PushSize(channel string, offset uint64, epoch string, data []byte) int {
	var num [20]byte
	return len(`{"push":{"channel":,"offset":,"epoch":,"data":}}`) +
		quotedLen(channel) + len(strconv.AppendUint(num[:0], offset, 10)) +
		quotedLen(epoch) + len(data)
}

func appendQuoted(dst []byte, s string) []byte {
	if isPlain(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

func quotedLen(s string) int {
	if isPlain(s) {
		return len(s) + 2
	}
	b, _ := json.Marshal(s)
	return len(b)
}

// isPlain reports whether s needs no JSON escaping (and no HTML escaping
// as encoding/json would apply).
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// ClientFrame is a decoded client command with its parameters, for
// servers. Fields a method does not take are always empty.
type ClientFrame struct {
	ID     uint64
	Method string
	// Token: connect, refresh, subscribe (optional subscription token).
	Token string
	// Channel: subscribe, unsubscribe, publish, presence.
	Channel string
	// Since: subscribe (optional).
	Since *StreamPosition
	// Name and Payload: event. Payload is nil when absent.
	Name    string
	Payload json.RawMessage
	// Data: publish, connect (optional); nil when absent.
	Data json.RawMessage
	// View, Session and Params: join. Params is nil when absent or null;
	// otherwise it is a JSON object.
	View    string
	Session string
	Params  json.RawMessage
	// CSRF: join, view.
	CSRF string
	// Ref: view, leave. (A view event also uses Name and Payload.)
	Ref string
	// Batch: connect (optional); see ConnectParams.Batch.
	Batch bool
}

// wireFrame decodes a command and its parameters in one pass. Which
// parameters are present is recorded by checkFrameKeys (a null value
// leaves a pointer field nil but still counts as present); a string
// parameter that is present with a nil pointer was null.
type wireFrame struct {
	ID     uint64      `json:"id"`
	Method string      `json:"method"`
	Params *wireParams `json:"params"`
}

type wireParams struct {
	Token   *string         `json:"token"`
	Channel *string         `json:"channel"`
	Since   *StreamPosition `json:"since"`
	Name    *string         `json:"name"`
	Payload json.RawMessage `json:"payload"`
	Data    json.RawMessage `json:"data"`
	View    *string         `json:"view"`
	Session *string         `json:"session"`
	CSRF    *string         `json:"csrf"`
	Params  json.RawMessage `json:"params"`
	Ref     *string         `json:"ref"`
	Batch   *bool           `json:"batch"`
}

// param bits: which parameters each method takes. Bit i is paramKeys[i].
const (
	pToken = 1 << iota
	pChannel
	pSince
	pName
	pPayload
	pData
	pView
	pSession
	pCSRF
	pParams
	pRef
	pBatch
)

// stringParams are the parameters whose value must be a JSON string.
const stringParams = pToken | pChannel | pName | pView | pSession | pCSRF | pRef

var methodParams = map[string]uint64{
	MethodConnect:     pToken | pData | pBatch,
	MethodRefresh:     pToken,
	MethodSubscribe:   pChannel | pToken | pSince,
	MethodUnsubscribe: pChannel,
	MethodEvent:       pName | pPayload,
	MethodPublish:     pChannel | pData,
	MethodJoin:        pView | pSession | pCSRF | pParams,
	MethodView:        pRef | pName | pPayload | pCSRF,
	MethodLeave:       pRef,
	MethodPresence:    pChannel,
}

// DecodeClientFrame decodes one client frame and its parameters in a
// single strict pass: unknown fields anywhere, trailing data, a missing
// id, an unknown method, a key repeated in the command, its params or
// since, a parameter the method does not take (whatever its value, null
// included) and null where a string parameter is expected are all
// ErrMalformed. Otherwise it is equivalent to DecodeCommand followed by
// DecodeParams into the method's params type, at about half the cost;
// those are more lenient (a repeated key's last value wins, and a null
// parameter counts as absent).
func DecodeClientFrame(frame []byte) (ClientFrame, error) {
	// Keys are checked exactly first, so the faster json.Unmarshal (which
	// would ignore unknown keys and match case-insensitively) is strict.
	present, err := checkFrameKeys(frame)
	if err != nil {
		return ClientFrame{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var w wireFrame
	if err := json.Unmarshal(frame, &w); err != nil {
		return ClientFrame{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.ID == 0 {
		return ClientFrame{}, fmt.Errorf("%w: missing id", ErrMalformed)
	}
	allowed, ok := methodParams[w.Method]
	if !ok {
		return ClientFrame{}, fmt.Errorf("%w: unknown method", ErrMalformed)
	}
	f := ClientFrame{ID: w.ID, Method: w.Method}
	p := w.Params
	if p == nil {
		return f, nil
	}
	if present&^allowed != 0 {
		return ClientFrame{}, fmt.Errorf("%w: parameter not taken by %s", ErrMalformed, w.Method)
	}
	// A string parameter present but decoded to a nil pointer was null.
	nonNull := bitIf(p.Token != nil, pToken) | bitIf(p.Channel != nil, pChannel) | bitIf(p.Name != nil, pName) |
		bitIf(p.View != nil, pView) | bitIf(p.Session != nil, pSession) | bitIf(p.CSRF != nil, pCSRF) | bitIf(p.Ref != nil, pRef)
	if present&stringParams != nonNull {
		return ClientFrame{}, fmt.Errorf("%w: null where a string parameter is expected", ErrMalformed)
	}
	if p.Params != nil {
		switch {
		case string(p.Params) == "null":
			p.Params = nil
		case p.Params[0] != '{':
			return ClientFrame{}, fmt.Errorf("%w: join params must be an object", ErrMalformed)
		}
	}
	f.View, f.Session, f.CSRF, f.Ref = deref(p.View), deref(p.Session), deref(p.CSRF), deref(p.Ref)
	f.Params = p.Params
	if p.Token != nil {
		f.Token = *p.Token
	}
	if p.Channel != nil {
		f.Channel = *p.Channel
	}
	if p.Name != nil {
		f.Name = *p.Name
	}
	f.Since, f.Payload, f.Data = p.Since, p.Payload, p.Data
	if p.Batch != nil {
		f.Batch = *p.Batch
	}
	return f, nil
}

func bitIf(cond bool, bit uint64) uint64 {
	if cond {
		return bit
	}
	return 0
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
