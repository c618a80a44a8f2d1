package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/livegate/livegate/protocol"
)

func TestDecodeCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame string
		ok    bool
	}{
		{"connect", `{"id":1,"method":"connect","params":{"token":"x"}}`, true},
		{"no params", `{"id":2,"method":"unsubscribe"}`, true},
		{"unknown field", `{"id":1,"method":"connect","extra":1}`, false},
		{"missing id", `{"method":"connect"}`, false},
		{"zero id", `{"id":0,"method":"connect"}`, false},
		{"negative id", `{"id":-1,"method":"connect"}`, false},
		{"unknown method", `{"id":1,"method":"admin"}`, false},
		{"not json", `{"id":1,`, false},
		{"array", `[1,2]`, false},
		{"trailing", `{"id":1,"method":"connect"} {}`, false},
		{"string id", `{"id":"1","method":"connect"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := protocol.DecodeCommand([]byte(tt.frame))
			if (err == nil) != tt.ok {
				t.Fatalf("DecodeCommand(%s) = %v, want ok=%v", tt.frame, err, tt.ok)
			}
			if err != nil && !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
		})
	}
}

func TestDecodeParamsRejectsUnknownFields(t *testing.T) {
	t.Parallel()
	var p protocol.SubscribeParams
	err := protocol.DecodeParams(json.RawMessage(`{"channel":"a:b","admin":true}`), &p)
	if !errors.Is(err, protocol.ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
	err = protocol.DecodeParams(json.RawMessage(`{"channel":"a:b","since":{"offset":3,"epoch":"e"}}`), &p)
	if err != nil || p.Since == nil || p.Since.Offset != 3 {
		t.Fatalf("valid params: %v %+v", err, p)
	}
}

func TestAppendPush(t *testing.T) {
	t.Parallel()
	for _, ch := range []string{"room:a", `odd"<ch>`} {
		b := protocol.AppendPush(nil, ch, 42, "ep", []byte(`{"x":1}`))
		if got := protocol.PushSize(ch, 42, "ep", []byte(`{"x":1}`)); got != len(b) {
			t.Fatalf("PushSize = %d, encoded %d", got, len(b))
		}
		var f protocol.ServerFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if f.Push == nil || f.Push.Channel != ch || f.Push.Offset != 42 || string(f.Push.Data) != `{"x":1}` {
			t.Fatalf("round trip: %s", b)
		}
	}
}

func TestAdvice(t *testing.T) {
	t.Parallel()
	cases := map[protocol.CloseCode]protocol.Advice{
		protocol.CloseGoingAway:      protocol.AdviceReconnect,
		protocol.CloseTokenExpired:   protocol.AdviceNewToken,
		protocol.CloseUnauthorized:   protocol.AdviceNewToken,
		protocol.CloseForbidden:      protocol.AdviceStop,
		protocol.CloseMalformed:      protocol.AdviceStop,
		protocol.CloseTooBig:         protocol.AdviceStop,
		protocol.CloseRateLimited:    protocol.AdviceReconnect,
		protocol.CloseSlowConsumer:   protocol.AdviceReconnect,
		protocol.CloseConnectTimeout: protocol.AdviceReconnect,
	}
	for code, want := range cases {
		if got := protocol.AdviceFor(code); got != want {
			t.Errorf("AdviceFor(%d) = %v, want %v", code, got, want)
		}
	}
}

func ExampleDecodeCommand() {
	cmd, err := protocol.DecodeCommand([]byte(`{"id":7,"method":"subscribe","params":{"channel":"room:lobby"}}`))
	if err != nil {
		panic(err)
	}
	var p protocol.SubscribeParams
	_ = protocol.DecodeParams(cmd.Params, &p)
	fmt.Println(cmd.ID, cmd.Method, p.Channel)
	_, err = protocol.DecodeCommand([]byte(`{"id":8,"method":"subscribe","sudo":true}`))
	fmt.Println(err != nil)
	// Output:
	// 7 subscribe room:lobby
	// true
}

func ExampleAppendErrorReply() {
	fmt.Println(string(protocol.AppendErrorReply(nil, 3, protocol.NewError(protocol.CodeNotAvailable))))
	// Output: {"id":3,"error":{"code":"not_available","message":"not available"}}
}

func TestDecodeClientFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame string
		ok    bool
		check func(protocol.ClientFrame) bool
	}{
		{"connect", `{"id":1,"method":"connect","params":{"token":"t"}}`, true,
			func(f protocol.ClientFrame) bool { return f.Token == "t" }},
		{"subscribe since", `{"id":2,"method":"subscribe","params":{"channel":"a:b","since":{"offset":4,"epoch":"e"}}}`, true,
			func(f protocol.ClientFrame) bool { return f.Channel == "a:b" && f.Since != nil && f.Since.Offset == 4 }},
		{"event", `{"id":3,"method":"event","params":{"name":"say","payload":{"x":[1]}}}`, true,
			func(f protocol.ClientFrame) bool { return f.Name == "say" && string(f.Payload) == `{"x":[1]}` }},
		{"publish null data", `{"id":4,"method":"publish","params":{"channel":"a:b","data":null}}`, true,
			func(f protocol.ClientFrame) bool { return string(f.Data) == "null" }},
		{"no params", `{"id":5,"method":"unsubscribe"}`, true,
			func(f protocol.ClientFrame) bool { return f.Channel == "" }},
		{"param of another method", `{"id":6,"method":"connect","params":{"token":"t","channel":"a:b"}}`, false, nil},
		{"payload on publish", `{"id":7,"method":"publish","params":{"channel":"a:b","payload":1}}`, false, nil},
		{"unknown param", `{"id":8,"method":"event","params":{"name":"x","admin":true}}`, false, nil},
		{"unknown field in since", `{"id":9,"method":"subscribe","params":{"channel":"a:b","since":{"offset":1,"epoch":"e","x":1}}}`, false, nil},
		{"wrong type", `{"id":10,"method":"subscribe","params":{"channel":5}}`, false, nil},
		{"unknown method", `{"id":11,"method":"sudo"}`, false, nil},
		{"no id", `{"method":"connect"}`, false, nil},
		{"trailing", `{"id":12,"method":"connect"}x`, false, nil},
		{"null param of another method", `{"id":13,"method":"connect","params":{"channel":null}}`, false, nil},
		{"null param of another method, valid token", `{"id":14,"method":"connect","params":{"token":"t","since":null}}`, false, nil},
		{"null token", `{"id":15,"method":"connect","params":{"token":null}}`, false, nil},
		{"null optional token", `{"id":16,"method":"subscribe","params":{"channel":"a:b","token":null}}`, false, nil},
		{"null channel", `{"id":17,"method":"unsubscribe","params":{"channel":null}}`, false, nil},
		{"null csrf", `{"id":18,"method":"join","params":{"view":"v","session":"s","csrf":null}}`, false, nil},
		{"repeated token, last null", `{"id":19,"method":"connect","params":{"token":"a","token":null}}`, false, nil},
		{"repeated token", `{"id":20,"method":"connect","params":{"token":"a","token":"b"}}`, false, nil},
		{"repeated params", `{"id":21,"method":"subscribe","params":{"channel":"a:b"},"params":{"token":"t"}}`, false, nil},
		{"repeated method", `{"id":22,"method":"connect","method":"subscribe","params":{"channel":"a:b"}}`, false, nil},
		{"repeated id", `{"id":23,"id":24,"method":"connect"}`, false, nil},
		{"repeated key in since", `{"id":25,"method":"subscribe","params":{"channel":"a:b","since":{"offset":1,"offset":2,"epoch":"e"}}}`, false, nil},
		{"null since is absent", `{"id":26,"method":"subscribe","params":{"channel":"a:b","since":null}}`, true,
			func(f protocol.ClientFrame) bool { return f.Channel == "a:b" && f.Since == nil }},
		{"null payload", `{"id":27,"method":"event","params":{"name":"x","payload":null}}`, true,
			func(f protocol.ClientFrame) bool { return string(f.Payload) == "null" }},
		{"null join params are absent", `{"id":28,"method":"join","params":{"view":"v","session":"s","csrf":"c","params":null}}`, true,
			func(f protocol.ClientFrame) bool { return f.View == "v" && f.Params == nil }},
		{"repeated keys inside application data", `{"id":29,"method":"event","params":{"name":"x","payload":{"a":1,"a":2}}}`, true,
			func(f protocol.ClientFrame) bool { return string(f.Payload) == `{"a":1,"a":2}` }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := protocol.DecodeClientFrame([]byte(tt.frame))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if tt.check != nil && !tt.check(f) {
				t.Fatalf("decoded %+v", f)
			}
		})
	}
}

// TestParamBits ties the params key order of the key scanner to the
// parameter bits DecodeClientFrame compares it with: each parameter alone
// is accepted exactly by the methods that take it.
func TestParamBits(t *testing.T) {
	t.Parallel()
	takes := map[string][]string{
		"token": {"connect", "refresh", "subscribe"}, "channel": {"subscribe", "unsubscribe", "publish", "presence"},
		"since": {"subscribe"}, "name": {"event", "view"}, "payload": {"event", "view"}, "data": {"publish", "connect"},
		"view": {"join"}, "session": {"join"}, "csrf": {"join", "view"}, "params": {"join"}, "ref": {"view", "leave"},
	}
	methods := []string{"connect", "refresh", "subscribe", "unsubscribe", "event", "publish", "join", "view", "leave", "presence"}
	for param, ms := range takes {
		value := `"x"`
		switch param {
		case "since":
			value = `{"offset":1,"epoch":"e"}`
		case "params":
			value = `{}`
		}
		for _, m := range methods {
			frame := `{"id":1,"method":"` + m + `","params":{"` + param + `":` + value + `}}`
			_, err := protocol.DecodeClientFrame([]byte(frame))
			if want := slices.Contains(ms, m); (err == nil) != want {
				t.Errorf("DecodeClientFrame(%s) = %v, want ok=%v", frame, err, want)
			}
		}
	}
}

func BenchmarkDecodeClientFrame(b *testing.B) {
	frame := []byte(`{"id":42,"method":"event","params":{"name":"echo","payload":{"text":"hello"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.DecodeClientFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNoticePushes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		frame []byte
		check func(p *protocol.Push) bool
	}{
		{protocol.AppendResubscribePush(nil, "room:a<b>"), func(p *protocol.Push) bool { return p.Resubscribe && p.Channel == "room:a<b>" }},
		{protocol.AppendPresencePush(nil, "room:a", true, protocol.PresenceClient{Conn: "c1", User: "u\"1"}),
			func(p *protocol.Push) bool {
				return p.Join != nil && p.Join.User == "u\"1" && p.Join.Conn == "c1" && p.Leave == nil
			}},
		{protocol.AppendPresencePush(nil, "room:a", false, protocol.PresenceClient{Conn: "c2", User: "bob"}),
			func(p *protocol.Push) bool { return p.Leave != nil && p.Leave.Conn == "c2" && p.Join == nil }},
	} {
		var f protocol.ServerFrame
		if err := json.Unmarshal(tc.frame, &f); err != nil {
			t.Fatalf("%s: %v", tc.frame, err)
		}
		if f.Push == nil || !tc.check(f.Push) || f.Push.IsPublication() {
			t.Fatalf("%s decoded to %+v", tc.frame, f.Push)
		}
	}
	var f protocol.ServerFrame
	_ = json.Unmarshal(protocol.AppendPush(nil, "room:a", 1, "e", []byte(`1`)), &f)
	if !f.Push.IsPublication() {
		t.Fatal("publication push not recognised")
	}
}
