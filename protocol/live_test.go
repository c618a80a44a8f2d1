package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/livegate/livegate/protocol"
)

func TestDecodeClientFrameLiveViews(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame string
		ok    bool
		check func(protocol.ClientFrame) bool
	}{
		{"join", `{"id":1,"method":"join","params":{"view":"counter","session":"s","csrf":"c","params":{"room":"a"}}}`, true,
			func(f protocol.ClientFrame) bool {
				return f.View == "counter" && f.Session == "s" && f.CSRF == "c" && string(f.Params) == `{"room":"a"}`
			}},
		{"join without params", `{"id":2,"method":"join","params":{"view":"v","session":"s","csrf":"c"}}`, true,
			func(f protocol.ClientFrame) bool { return f.Params == nil }},
		{"join null params", `{"id":3,"method":"join","params":{"view":"v","session":"s","csrf":"c","params":null}}`, true,
			func(f protocol.ClientFrame) bool { return f.Params == nil }},
		{"join array params", `{"id":4,"method":"join","params":{"view":"v","params":[1]}}`, false, nil},
		{"join string params", `{"id":5,"method":"join","params":{"view":"v","params":"x"}}`, false, nil},
		{"join with ref", `{"id":6,"method":"join","params":{"view":"v","ref":"r"}}`, false, nil},
		{"join with payload", `{"id":7,"method":"join","params":{"view":"v","payload":{}}}`, false, nil},
		{"join unknown", `{"id":8,"method":"join","params":{"view":"v","admin":true}}`, false, nil},
		{"view", `{"id":9,"method":"view","params":{"ref":"v1","name":"inc","payload":{"by":1},"csrf":"c"}}`, true,
			func(f protocol.ClientFrame) bool {
				return f.Ref == "v1" && f.Name == "inc" && string(f.Payload) == `{"by":1}` && f.CSRF == "c"
			}},
		{"view with session", `{"id":10,"method":"view","params":{"ref":"v1","name":"inc","session":"s"}}`, false, nil},
		{"view with params", `{"id":11,"method":"view","params":{"ref":"v1","params":{}}}`, false, nil},
		{"leave", `{"id":12,"method":"leave","params":{"ref":"v1"}}`, true,
			func(f protocol.ClientFrame) bool { return f.Ref == "v1" }},
		{"leave with csrf", `{"id":13,"method":"leave","params":{"ref":"v1","csrf":"c"}}`, false, nil},
		{"event with csrf", `{"id":14,"method":"event","params":{"name":"x","csrf":"c"}}`, false, nil},
		{"event with ref", `{"id":15,"method":"event","params":{"name":"x","ref":"v1"}}`, false, nil},
		{"subscribe with view", `{"id":16,"method":"subscribe","params":{"channel":"a:b","view":"v"}}`, false, nil},
		{"ref wrong type", `{"id":17,"method":"leave","params":{"ref":1}}`, false, nil},
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

func TestDecodeCommandLiveMethods(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"join", "view", "leave"} {
		c, err := protocol.DecodeCommand([]byte(`{"id":1,"method":"` + m + `"}`))
		if err != nil || c.Method != m {
			t.Fatalf("%s: %v", m, err)
		}
	}
}

// TestLiveEncoders checks that the hand-written encoders produce JSON that
// decodes back to the same values, for awkward strings included.
func TestLiveEncoders(t *testing.T) {
	t.Parallel()
	strs := []string{
		"", "plain", `<div class="x">a & b</div>`, "quote\" back\\slash", "ctl\x00\x01\x1f\n\r\t\x7f",
		"h\u00e9llo \u4e16\u754c \U0001F600", "line\u2028para\u2029", "bad\xffutf8\xc3",
	}
	for _, s := range strs {
		p := protocol.Patch{Ref: "v" + s, Version: 7, Start: 3, End: 9, Insert: s}
		var f protocol.ServerFrame
		b := protocol.AppendPatchPush(nil, p)
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%q: %s: %v", s, b, err)
		}
		want := p
		want.Ref, want.Insert = strings.ToValidUTF8(p.Ref, "\ufffd"), strings.ToValidUTF8(s, "\ufffd")
		if f.Patch == nil || *f.Patch != want {
			t.Fatalf("%q: round trip %+v, want %+v", s, f.Patch, want)
		}
		// The same bytes as encoding/json, apart from HTML escaping and
		// how U+FFFD replacing invalid UTF-8 is written (escaped since
		// Go 1.27).
		std, _ := json.Marshal(p)
		norm := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&", `\ufffd`, "\ufffd")
		if got, std2 := norm.Replace(string(protocol.AppendPatch(nil, p))), norm.Replace(string(std)); got != std2 {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, std2)
		}

		var jr protocol.JoinResult
		if err := json.Unmarshal(protocol.AppendJoinResult(nil, protocol.JoinResult{Ref: "r", Version: 1, HTML: s}), &jr); err != nil {
			t.Fatal(err)
		}
		if jr.HTML != want.Insert || jr.Ref != "r" || jr.Version != 1 {
			t.Fatalf("join result %+v", jr)
		}
	}
	var vr protocol.ViewResult
	if err := json.Unmarshal(protocol.AppendViewResult(nil, protocol.ViewResult{Version: 4}), &vr); err != nil || vr.Version != 4 || vr.Patch != nil {
		t.Fatalf("view result without patch: %+v %v", vr, err)
	}
	var f protocol.ServerFrame
	if err := json.Unmarshal(protocol.AppendViewClosed(nil, "v1", protocol.CodeLimitExceeded), &f); err != nil ||
		f.ViewClosed == nil || f.ViewClosed.Ref != "v1" || f.ViewClosed.Code != protocol.CodeLimitExceeded {
		t.Fatalf("view_closed: %+v %v", f.ViewClosed, err)
	}
}

func ExampleAppendViewResult() {
	r := protocol.ViewResult{Version: 3, Patch: &protocol.Patch{Ref: "v1", Version: 3, Start: 24, End: 25, Insert: "<b>3</b>"}}
	fmt.Println(string(protocol.AppendReply(nil, 9, protocol.AppendViewResult(nil, r))))
	// Output: {"id":9,"result":{"version":3,"patch":{"ref":"v1","version":3,"start":24,"end":25,"insert":"<b>3</b>"}}}
}
