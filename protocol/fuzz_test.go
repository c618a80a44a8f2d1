package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/livegate/livegate/protocol"
)

// knownMethods is the method set, written out independently of the
// package so that a method added there without a test shows up here.
var knownMethods = map[string]bool{
	"connect": true, "subscribe": true, "unsubscribe": true, "event": true, "publish": true,
	"refresh": true, "join": true, "view": true, "leave": true, "presence": true,
}

// frameSeeds are well-formed frames for every method plus the malformed
// and borderline shapes the decoders must refuse or normalise.
var frameSeeds = []string{
	`{"id":1,"method":"connect","params":{"token":"x.y.z"}}`,
	`{"id":2,"method":"refresh","params":{"token":"t"}}`,
	`{"id":3,"method":"subscribe","params":{"channel":"room:lobby","token":"s","since":{"offset":4,"epoch":"e"}}}`,
	`{"id":4,"method":"unsubscribe","params":{"channel":"dm:x#a,b"}}`,
	`{"id":5,"method":"event","params":{"name":"say","payload":{"text":"<b>hi</b> \u2028"}}}`,
	`{"id":6,"method":"publish","params":{"channel":"a:b","data":[1,"2",{"3":null}]}}`,
	`{"id":7,"method":"join","params":{"view":"counter","session":"s","csrf":"c","params":{"room":"a"}}}`,
	`{"id":8,"method":"view","params":{"ref":"v1","name":"inc","payload":{"by":1},"csrf":"c"}}`,
	`{"id":9,"method":"leave","params":{"ref":"v1"}}`,
	`{"id":10,"method":"presence","params":{"channel":"room:lobby"}}`,
	`{"id":11,"method":"connect","params":{"data":{"room":"a"}}}`,
	`{"id":18446744073709551615,"method":"unsubscribe"}`,
	`{"id":18446744073709551616,"method":"connect"}`,
	`{"id":0,"method":"connect"}`,
	`{"id":-1,"method":"connect"}`,
	`{"id":1.0,"method":"connect"}`,
	`{"id":"1","method":"connect"}`,
	`{"method":"connect"}`,
	`{"id":1,"method":"CONNECT"}`,
	`{"ID":1,"Method":"connect","PARAMS":{"Token":"t"}}`,
	`{"id":1,"method":"connect","params":null}`,
	`{"id":1,"method":"connect","params":[]}`,
	`{"id":1,"method":"connect","params":"x"}`,
	`{"id":1,"method":"connect","params":{"token":"t","channel":"a:b"}}`,
	`{"id":1,"method":"connect","params":{"channel":null}}`,
	`{"id":1,"method":"connect","params":{"token":"a","token":null}}`,
	`{"id":1,"method":"connect","params":{"token":"a"},"params":{}}`,
	`{"id":1,"method":"connect","method":"subscribe","params":{"channel":"a:b"}}`,
	`{"id":1,"method":"event","params":{"name":"x","payload":null}}`,
	`{"id":1,"method":"publish","params":{"channel":"a:b","data":null}}`,
	`{"id":1,"method":"join","params":{"params":null}}`,
	`{"id":1,"method":"join","params":{"params":[1]}}`,
	`{"id":1,"method":"join","params":{"params":5}}`,
	`{"id":1,"method":"subscribe","params":{"channel":"a:b","since":null}}`,
	`{"id":1,"method":"subscribe","params":{"channel":"a:b","token":null}}`,
	`{"id":1,"method":"subscribe","params":{"channel":"a:b","since":{"offset":1,"offset":2,"epoch":"e"}}}`,
	`{"id":1,"method":"view","params":{"ref":"r","name":"n","payload":{"a":1,"a":2},"csrf":"c"}}`,
	`{"id":1,"method":"join","params":{"view":"v","session":"s","csrf":"c","params":{"a":null,"a":1}}}`,
	`{"id":1,"id":2,"method":"connect"}`,
	`{"id":1,"method":"subscribe","params":{"channel":"a:b","since":{"offset":1,"epoch":"e","x":1}}}`,
	`{"id":1,"method":"subscribe","params":{"channel":"\ud800\u0000\"\\"}}`,
	"{\"id\":1,\"method\":\"connect\",\"params\":{\"token\":\"\xff\xfe\"}}",
	`{"id":1,"method":"connect"} {}`,
	`{"id":1,"method":"connect"}x`,
	` {"id":1,"method":"connect"} `,
	`{"id":1,`,
	`null`,
	`[]`,
	``,
}

// FuzzDecodeClientFrame checks, for any input, that DecodeClientFrame
// never panics, refuses only with ErrMalformed, and that every frame it
// accepts has an id of at least 1 and a known method, leaves the fields
// its method does not take empty, re-encodes to a frame that decodes to
// the same value, and agrees with DecodeCommand followed by DecodeParams
// into the method's parameter type, as its documentation promises: every
// frame it accepts is accepted there with the same values, and it refuses
// nothing accepted there unless a key is not spelled exactly as the
// schema's, or the frame breaks one of the rules only DecodeClientFrame
// enforces (see frameShape): such frames it must refuse.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := protocol.DecodeClientFrame(frame)
		want, wantErr := clientFrameViaCommand(frame)
		strict, inexact := frameShape(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("DecodeClientFrame(%q) error %v is not ErrMalformed", frame, err)
			}
			if wantErr == nil && strict == "" && !inexact {
				t.Fatalf("DecodeClientFrame(%q) = %v, but DecodeCommand+DecodeParams accept it as %+v", frame, err, want)
			}
			return
		}
		if strict != "" {
			t.Fatalf("DecodeClientFrame(%q) = %+v, but the frame has %s", frame, c, strict)
		}
		if c.ID < 1 {
			t.Fatalf("DecodeClientFrame(%q) accepted id %d", frame, c.ID)
		}
		if !knownMethods[c.Method] {
			t.Fatalf("DecodeClientFrame(%q) accepted unknown method %q", frame, c.Method)
		}
		if cmd, err := protocol.DecodeCommand(frame); err != nil || cmd.ID != c.ID || cmd.Method != c.Method {
			t.Fatalf("DecodeClientFrame(%q) = %+v, but DecodeCommand = %+v, %v", frame, c, cmd, err)
		}
		if bad := foreignFields(c); bad != "" {
			t.Fatalf("DecodeClientFrame(%q): method %s has field %s set: %+v", frame, c.Method, bad, c)
		}
		if c.Params != nil && c.Params[0] != '{' {
			t.Fatalf("DecodeClientFrame(%q): join params %q are not an object", frame, c.Params)
		}
		if wantErr != nil {
			t.Fatalf("DecodeClientFrame(%q) = %+v, but DecodeCommand+DecodeParams refuse it: %v", frame, c, wantErr)
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("DecodeClientFrame(%q) = %+v, DecodeCommand+DecodeParams = %+v", frame, c, want)
		}
		// Re-encoding: the canonical encoding decodes to the same frame,
		// and encoding is then a fixed point.
		enc := encodeClientFrame(t, c)
		c2, err := protocol.DecodeClientFrame(enc)
		if err != nil {
			t.Fatalf("re-encoding of %q = %s refused: %v", frame, enc, err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip of %q through %s: %+v != %+v", frame, enc, c, c2)
		}
		if enc2 := encodeClientFrame(t, c2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %s != %s", enc, enc2)
		}
	})
}

// FuzzDecodeCommand checks that DecodeCommand never panics, refuses only
// with ErrMalformed, accepts only ids of at least 1 and known methods, and
// that an accepted command marshals back to a frame that decodes to the
// same id, method and (compacted) params.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"id":1,"method":"event","params":  {"a" : [ 1 , 2 ] }  }`))
	f.Add([]byte(`{"id":1,"method":"publish","params":"<&>"}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := protocol.DecodeCommand(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("DecodeCommand(%q) error %v is not ErrMalformed", frame, err)
			}
			if c.ID != 0 || c.Method != "" || c.Params != nil {
				t.Fatalf("DecodeCommand(%q) refused but returned %+v", frame, c)
			}
			return
		}
		if c.ID < 1 {
			t.Fatalf("DecodeCommand(%q) accepted id %d", frame, c.ID)
		}
		if !knownMethods[c.Method] {
			t.Fatalf("DecodeCommand(%q) accepted unknown method %q", frame, c.Method)
		}
		if c.Params != nil && !json.Valid(c.Params) {
			t.Fatalf("DecodeCommand(%q): params %q are not valid JSON", frame, c.Params)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(c); err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		c2, err := protocol.DecodeCommand(buf.Bytes())
		if err != nil {
			t.Fatalf("re-encoding of %q = %s refused: %v", frame, buf.Bytes(), err)
		}
		if c2.ID != c.ID || c2.Method != c.Method || !bytes.Equal(compact(t, c.Params), c2.Params) {
			t.Fatalf("round trip of %q through %s: %+v != %+v", frame, buf.Bytes(), c, c2)
		}
	})
}

// clientFrameViaCommand decodes frame the slow, documented way:
// DecodeCommand, then DecodeParams into the method's own parameter type.
func clientFrameViaCommand(frame []byte) (protocol.ClientFrame, error) {
	cmd, err := protocol.DecodeCommand(frame)
	if err != nil {
		return protocol.ClientFrame{}, err
	}
	c := protocol.ClientFrame{ID: cmd.ID, Method: cmd.Method}
	var p any
	switch cmd.Method {
	case "connect":
		p = &protocol.ConnectParams{}
	case "refresh":
		p = &protocol.RefreshParams{}
	case "subscribe":
		p = &protocol.SubscribeParams{}
	case "unsubscribe":
		p = &protocol.UnsubscribeParams{}
	case "event":
		p = &protocol.EventParams{}
	case "publish":
		p = &protocol.PublishParams{}
	case "join":
		p = &protocol.JoinParams{}
	case "view":
		p = &protocol.ViewParams{}
	case "leave":
		p = &protocol.LeaveParams{}
	case "presence":
		p = &protocol.PresenceParams{}
	default:
		return protocol.ClientFrame{}, errors.New("no params type for " + cmd.Method)
	}
	if err := protocol.DecodeParams(cmd.Params, p); err != nil {
		return protocol.ClientFrame{}, err
	}
	switch p := p.(type) {
	case *protocol.ConnectParams:
		c.Token, c.Data = p.Token, p.Data
	case *protocol.RefreshParams:
		c.Token = p.Token
	case *protocol.SubscribeParams:
		c.Channel, c.Token, c.Since = p.Channel, p.Token, p.Since
	case *protocol.UnsubscribeParams:
		c.Channel = p.Channel
	case *protocol.EventParams:
		c.Name, c.Payload = p.Name, p.Payload
	case *protocol.PublishParams:
		c.Channel, c.Data = p.Channel, p.Data
	case *protocol.JoinParams:
		c.View, c.Session, c.CSRF, c.Params = p.View, p.Session, p.CSRF, p.Params
		// ClientFrame documents the stricter rule: an object, or nil
		// when absent or null.
		if string(c.Params) == "null" {
			c.Params = nil
		}
		if c.Params != nil && c.Params[0] != '{' {
			return protocol.ClientFrame{}, errors.New("join params not an object")
		}
	case *protocol.ViewParams:
		c.Ref, c.Name, c.Payload, c.CSRF = p.Ref, p.Name, p.Payload, p.CSRF
	case *protocol.LeaveParams:
		c.Ref = p.Ref
	case *protocol.PresenceParams:
		c.Channel = p.Channel
	}
	return c, nil
}

// foreignFields names a field of c that c.Method does not take but that
// is set, or returns "".
func foreignFields(c protocol.ClientFrame) string {
	takes := map[string]string{
		"connect":     "token data",
		"refresh":     "token",
		"subscribe":   "channel token since",
		"unsubscribe": "channel",
		"event":       "name payload",
		"publish":     "channel data",
		"join":        "view session csrf params",
		"view":        "ref name payload csrf",
		"leave":       "ref",
		"presence":    "channel",
	}[c.Method]
	set := map[string]bool{
		"token": c.Token != "", "channel": c.Channel != "", "since": c.Since != nil,
		"name": c.Name != "", "payload": c.Payload != nil, "data": c.Data != nil,
		"view": c.View != "", "session": c.Session != "", "csrf": c.CSRF != "",
		"params": c.Params != nil, "ref": c.Ref != "",
	}
	for name, isSet := range set {
		if isSet && !strings.Contains(" "+takes+" ", " "+name+" ") {
			return name
		}
	}
	return ""
}

// encodeClientFrame is the canonical encoding of c: id, method and the
// non-empty parameters in a fixed order.
func encodeClientFrame(t *testing.T, c protocol.ClientFrame) []byte {
	t.Helper()
	quote := func(s string) string {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal %q: %v", s, err)
		}
		return string(b)
	}
	var params []string
	str := func(k, v string) {
		if v != "" {
			params = append(params, quote(k)+":"+quote(v))
		}
	}
	raw := func(k string, v json.RawMessage) {
		if v != nil {
			params = append(params, quote(k)+":"+string(v))
		}
	}
	str("token", c.Token)
	str("channel", c.Channel)
	if c.Since != nil {
		b, err := json.Marshal(c.Since)
		if err != nil {
			t.Fatalf("marshal since: %v", err)
		}
		raw("since", b)
	}
	str("name", c.Name)
	raw("payload", c.Payload)
	raw("data", c.Data)
	str("view", c.View)
	str("session", c.Session)
	str("csrf", c.CSRF)
	raw("params", c.Params)
	str("ref", c.Ref)
	out := `{"id":` + strconv.FormatUint(c.ID, 10) + `,"method":` + quote(c.Method)
	if len(params) > 0 {
		out += `,"params":{` + strings.Join(params, ",") + "}"
	}
	return []byte(out + "}")
}

// frameShape reports two things about frame.
//
// strict says which rule that only DecodeClientFrame enforces the frame
// breaks, or is "": two keys of the envelope, of params or of
// params.since that encoding/json folds together (DecodeCommand and
// DecodeParams let the last one win, merging repeated objects), or a
// string parameter that is null (which they read as ""). DecodeClientFrame
// must refuse such frames. (A null parameter the method does not take is
// refused by both: it is present whatever its value.)
//
// inexact: a key of the envelope, of params or of params.since is not
// spelled byte-for-byte as the schema's key (other case, Unicode folding,
// escapes), which encoding/json accepts and DecodeClientFrame may refuse.
func frameShape(frame []byte) (strict string, inexact bool) {
	dec := json.NewDecoder(bytes.NewReader(frame))
	// ctx: 0 any value, 1 the value of the envelope's "params", 2 a
	// string parameter, 3 the value of its "since", 4 another parameter.
	var walk func(depth, ctx int) error
	walk = func(depth, ctx int) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			schema := depth == 0 || ctx == 1 || ctx == 3
			var keys []string
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				if schema && !spelledExactly(frame, dec.InputOffset(), k) {
					inexact = true
				}
				if schema && strict == "" {
					for _, s := range keys {
						if strings.EqualFold(s, k) {
							strict = fmt.Sprintf("keys %q and %q in one object", s, k)
						}
					}
				}
				keys = append(keys, k)
				next := 0
				switch {
				case depth == 0 && strings.EqualFold(k, "params"):
					next = 1
				case ctx == 1 && strings.EqualFold(k, "since"):
					next = 3
				case ctx == 1 && stringParams[strings.ToLower(k)]:
					next = 2
				case ctx == 1:
					next = 4
				}
				if err := walk(depth+1, next); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(depth+1, 0); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case nil:
			if ctx == 2 && strict == "" {
				strict = "a null string parameter"
			}
		}
		return nil
	}
	_ = walk(0, 0)
	return strict, inexact
}

// stringParams are the parameters whose values are strings.
var stringParams = map[string]bool{
	"token": true, "channel": true, "name": true, "view": true, "session": true, "csrf": true, "ref": true,
}

// schemaKeys are the keys of the envelope, params and since objects.
var schemaKeys = map[string]bool{
	"id": true, "method": true, "params": true,
	"token": true, "channel": true, "since": true, "name": true, "payload": true, "data": true,
	"view": true, "session": true, "csrf": true, "ref": true,
	"offset": true, "epoch": true,
}

// spelledExactly reports whether the key k, which the decoder read ending
// at offset end of frame, is a schema key written without escapes.
func spelledExactly(frame []byte, end int64, k string) bool {
	raw := `"` + k + `"`
	return schemaKeys[k] && end >= int64(len(raw)) && string(frame[end-int64(len(raw)):end]) == raw
}

func compact(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("compact %q: %v", raw, err)
	}
	return b.Bytes()
}
