package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/internal/loadgen"
	"github.com/livegate/livegate/protocol"
)

// A driver speaks one server's client protocol and publishing API.
type driver interface {
	// Name is "livegate" or "centrifugo".
	Name() string
	// Subprotocols are offered in the upgrade.
	Subprotocols() []string
	// Connect returns the first frame of connection user.
	Connect(id uint64, user string) ([]byte, error)
	// Subscribe returns a subscribe frame.
	Subscribe(id uint64, channel string) []byte
	// Call returns a frame calling the echo handler with payload.
	Call(id uint64, payload []byte) []byte
	// Batched reports whether one WebSocket message may hold several
	// frames separated by newlines.
	Batched() bool
	// Publish publishes data to channel through the server's HTTP API.
	Publish(ctx context.Context, hc *http.Client, channel string, data []byte) error
}

// Errors a connection reports.
var (
	errReply  = errors.New("error reply")
	errClosed = errors.New("connection closed")
)

// livegateDriver speaks livegate protocol v1 and publishes with
// POST {"channel","data"} and "Authorization: Bearer <key>".
type livegateDriver struct {
	// batch asks the server, at connect, to batch frames into messages
	// separated by newlines.
	batch      bool
	signer     *auth.Signer
	publishURL string
	apiKey     string
}

func newLivegateDriver(secret []byte, audience, publishURL, apiKey string) (*livegateDriver, error) {
	s, err := auth.NewSigner(auth.SignerConfig{Algorithm: auth.AlgHS256, HMACSecret: secret, Audience: audience})
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	return &livegateDriver{signer: s, publishURL: publishURL, apiKey: apiKey}, nil
}

func (*livegateDriver) Name() string           { return "livegate" }
func (*livegateDriver) Subprotocols() []string { return []string{protocol.Subprotocol} }
func (d *livegateDriver) Batched() bool        { return d.batch }

func lgFrame(id uint64, method string, params any) []byte {
	raw, _ := json.Marshal(params)
	b, _ := json.Marshal(protocol.Command{ID: id, Method: method, Params: raw})
	return b
}

func (d *livegateDriver) Connect(id uint64, user string) ([]byte, error) {
	tok, _, err := d.signer.Sign(auth.Identity{User: user}, auth.KindConnect, tokenTTL)
	if err != nil {
		return nil, err
	}
	return lgFrame(id, protocol.MethodConnect, protocol.ConnectParams{Token: tok, Batch: d.batch}), nil
}

func (*livegateDriver) Subscribe(id uint64, channel string) []byte {
	return lgFrame(id, protocol.MethodSubscribe, protocol.SubscribeParams{Channel: channel})
}

func (*livegateDriver) Call(id uint64, payload []byte) []byte {
	return lgFrame(id, protocol.MethodEvent, protocol.EventParams{Name: echoEvent, Payload: payload})
}

func (d *livegateDriver) Publish(ctx context.Context, hc *http.Client, channel string, data []byte) error {
	return postPublish(ctx, hc, d.publishURL, "Authorization", "Bearer "+d.apiKey, channel, data)
}

// centrifugoDriver speaks Centrifugo's JSON client protocol (v2 framing:
// one command object per id, replies possibly newline-batched) and
// publishes through its HTTP API with X-API-Key.
type centrifugoDriver struct {
	secret     []byte
	publishURL string
	apiKey     string
}

func (*centrifugoDriver) Name() string           { return "centrifugo" }
func (*centrifugoDriver) Subprotocols() []string { return nil }
func (*centrifugoDriver) Batched() bool          { return true }

func (d *centrifugoDriver) Connect(id uint64, user string) ([]byte, error) {
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iat": now.Unix(), "exp": now.Add(tokenTTL).Unix(),
	}).SignedString(d.secret)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"id": id, "connect": map[string]any{"token": tok, "name": "livegate-bench"}})
}

func (*centrifugoDriver) Subscribe(id uint64, channel string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "subscribe": map[string]any{"channel": channel}})
	return b
}

func (*centrifugoDriver) Call(id uint64, payload []byte) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "rpc": map[string]any{"method": echoEvent, "data": json.RawMessage(payload)}})
	return b
}

func (d *centrifugoDriver) Publish(ctx context.Context, hc *http.Client, channel string, data []byte) error {
	return postPublish(ctx, hc, d.publishURL, "X-API-Key", d.apiKey, channel, data)
}

// postPublish POSTs {"channel","data"} to url and checks the answer: a 2xx
// status and no "error" member in the body.
func postPublish(ctx context.Context, hc *http.Client, url, header, value, channel string, data []byte) error {
	body, err := json.Marshal(struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}{channel, data})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(header, value)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &r) == nil && len(r.Error) > 0 && string(r.Error) != "null" {
		return fmt.Errorf("publish: %s", r.Error)
	}
	return nil
}

// newPublishClient returns a keep-alive HTTP client for publishing that
// only dials loopback addresses.
func newPublishClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         loadgen.Dialer(nil, dialTimeout).DialContext,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
		},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// pushFunc gets every publication a connection receives, with the time
// it was read.
type pushFunc func(data []byte, at time.Time)

// benchConn is one client connection: a reader goroutine hands replies to
// the single command in flight and publications to onPush.
type benchConn struct {
	ws      *websocket.Conn
	d       driver
	nextID  uint64
	replies chan reply
	done    chan struct{}
	onPush  pushFunc
	mu      sync.Mutex // serialises writes (pings of Centrifugo)
	readErr error
}

type reply struct {
	id  uint64
	err error
}

// dialConn opens a WebSocket to url with hc, connects as user and
// returns when the connect reply arrived.
func dialConn(ctx context.Context, d driver, hc *http.Client, url, user string, onPush pushFunc) (*benchConn, error) {
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, Subprotocols: d.Subprotocols()})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("upgrade refused: HTTP %d", resp.StatusCode)
		}
		return nil, err
	}
	ws.SetReadLimit(readLimit)
	c := &benchConn{ws: ws, d: d, nextID: 1, replies: make(chan reply, 4), done: make(chan struct{}), onPush: onPush}
	go c.read()
	frame, err := d.Connect(c.nextID, user)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	if err := c.roundTrip(ctx, frame); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// Subscribe subscribes to channel and waits for the reply.
func (c *benchConn) Subscribe(ctx context.Context, channel string) error {
	if err := c.roundTrip(ctx, c.d.Subscribe(c.nextID, channel)); err != nil {
		return fmt.Errorf("subscribe %s: %w", channel, err)
	}
	return nil
}

// Call calls the echo handler and waits for its reply.
func (c *benchConn) Call(ctx context.Context, payload []byte) error {
	return c.roundTrip(ctx, c.d.Call(c.nextID, payload))
}

func (c *benchConn) roundTrip(ctx context.Context, frame []byte) error {
	id := c.nextID
	c.nextID++
	c.mu.Lock()
	err := c.ws.Write(ctx, websocket.MessageText, frame)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	for {
		select {
		case r := <-c.replies:
			if r.id != id {
				continue // a late reply to a command given up on
			}
			return r.err
		case <-c.done:
			return fmt.Errorf("%w: %v", errClosed, c.readErr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close closes the connection and waits for its reader.
func (c *benchConn) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	go func() {
		<-ctx.Done()
		c.ws.CloseNow()
	}()
	_ = c.ws.Close(websocket.StatusNormalClosure, "bench done")
	<-c.done
}

func (c *benchConn) read() {
	defer close(c.done)
	// One buffer per connection, reused for every message: the load
	// generator must cost as little per delivery as it can, so that the
	// server, not the generator, sets the pace. Nothing keeps a slice of it
	// past the call that gets it.
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.readErr = err
			return
		}
		msg := buf.Bytes()
		at := time.Now()
		if !c.d.Batched() {
			c.frame(msg, at)
			continue
		}
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			if len(bytes.TrimSpace(line)) > 0 {
				c.frame(line, at)
			}
		}
	}
}

var (
	pushPrefix  = []byte(`{"push":`)
	emptyObject = []byte(`{}`)
)

func (c *benchConn) frame(f []byte, at time.Time) {
	if bytes.HasPrefix(f, pushPrefix) {
		if c.onPush != nil {
			c.onPush(f, at)
		}
		return
	}
	if _, cf := c.d.(*centrifugoDriver); cf && bytes.Equal(bytes.TrimSpace(f), emptyObject) {
		// Centrifugo's application-level ping: answer with a pong.
		go func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			defer cancel()
			_ = c.ws.Write(ctx, websocket.MessageText, emptyObject)
		}()
		return
	}
	var r struct {
		ID    uint64          `json:"id"`
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(f, &r) != nil || r.ID == 0 {
		return
	}
	var err error
	if len(r.Error) > 0 && string(r.Error) != "null" {
		err = fmt.Errorf("%w: %s", errReply, r.Error)
	}
	select {
	case c.replies <- reply{id: r.ID, err: err}:
	default: // nobody waits: a reply to a command given up on
	}
}

// stampKey starts every payload the bench makes: {"t":<unix nanos>,...}.
var stampKey = []byte(`{"t":`)

// payload returns a JSON object of about size bytes stamped with now.
func payload(size int, seq uint64, now time.Time) []byte {
	b := make([]byte, 0, size+32)
	b = append(b, stampKey...)
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	b = append(b, `,"s":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"p":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// stamp finds the send time in a frame carrying a bench payload.
func stamp(frame []byte) (time.Time, bool) {
	i := bytes.Index(frame, stampKey)
	if i < 0 {
		return time.Time{}, false
	}
	// Parsed in place (no string, no allocation): a Unix time in
	// nanoseconds has 19 digits.
	var n int64
	digits := 0
	for _, c := range frame[i+len(stampKey):] {
		if c < '0' || c > '9' {
			break
		}
		if digits++; digits > 19 {
			return time.Time{}, false
		}
		n = n*10 + int64(c-'0')
	}
	if digits == 0 || n < 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}
