package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"testing"

	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/protocol"
)

type chatLine struct {
	User, Text, At string
}

var benchTmpl = template.Must(template.New("room").Parse(`<section class="room">
<header><h2>{{.room}}</h2><p class="count">Clicks: <b>{{.count}}</b></p><button lg-click="inc">+1</button></header>
<ol class="log">{{range .log}}
<li><time>{{.At}}</time> <strong>{{.User}}</strong> {{.Text}}</li>{{end}}
</ol>
<form lg-submit="say"><input name="text" maxlength="500"><button>Send</button></form>
</section>`))

func benchView() live.View {
	return live.View{
		Name:     "room",
		Template: benchTmpl,
		Mount: func(_ context.Context, s *live.Socket, _ live.Session, _ json.RawMessage) error {
			s.Assign("room", "lobby")
			s.Assign("count", 0)
			s.Assign("log", chatLog(50))
			return nil
		},
		Events: map[string]*live.Handler{
			"inc": live.Event(func(_ context.Context, s *live.Socket, _ struct{}) error {
				s.Assign("count", s.Get("count").(int)+1)
				return nil
			}),
			"say": live.Event(func(_ context.Context, s *live.Socket, p sayPayload) error {
				s.Assign("log", append(s.Get("log").([]chatLine), chatLine{User: s.User(), Text: p.Text, At: "12:00"}))
				return nil
			}),
		},
	}
}

func chatLog(n int) []chatLine {
	log := make([]chatLine, n, n+16)
	for i := range log {
		log[i] = chatLine{User: fmt.Sprint("user", i%7), Text: fmt.Sprintf("message %d: see you at the standup <3", i), At: "11:59"}
	}
	return log
}

// BenchmarkViewUpdate measures one live-view update end to end on the
// server: the event's payload decoding and handler, the render through
// html/template, the state measure, the diff against the previous HTML and
// the encoding of the reply frame. The view has a counter and a 50-line
// chat log (about 4.5 KB of HTML). wire-bytes/op is the reply frame sent;
// full-html-bytes/op is what sending the whole HTML instead would cost.
func BenchmarkViewUpdate(b *testing.B) {
	for _, bc := range []struct {
		name, event string
	}{
		{"counter", "inc"},
		{"chat_append", "say"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reg := newRegistry(b, live.Options{MaxStateBytes: 1 << 20}, benchView())
			inst, _ := join(b, reg, "alice", "room", nil, live.WithPatch(func(protocol.Patch) {}))
			payloads := make([]json.RawMessage, 10)
			for i := range payloads {
				payloads[i] = json.RawMessage(`{}`)
				if bc.event == "say" {
					payloads[i] = json.RawMessage(fmt.Sprintf(`{"text":"new message %d: on my way, five minutes"}`, i))
				}
			}
			ctx, sub := context.Background(), subject("alice")
			frame := make([]byte, 0, 16<<10)
			result := make([]byte, 0, 16<<10)
			var wire, full, fullSamples int
			sampleFull := func() {
				full += len(protocol.AppendReply(nil, 1, protocol.AppendJoinResult(nil, protocol.JoinResult{Ref: inst.Ref(), Version: inst.Version(), HTML: inst.HTML()})))
				fullSamples++
			}
			sampleFull()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if bc.event == "say" && i%10 == 0 && i > 0 {
					// Keep the log at 50 to 59 lines: trim it back.
					b.StopTimer()
					sampleFull()
					_ = inst.Update(func(s *live.Socket) { s.Assign("log", s.Get("log").([]chatLine)[:50]) })
					sampleFull()
					b.StartTimer()
				}
				res, err := inst.Event(ctx, sub, bc.event, payloads[i%len(payloads)])
				if err != nil {
					b.Fatal(err)
				}
				result = protocol.AppendViewResult(result[:0], res)
				frame = protocol.AppendReply(frame[:0], uint64(i+1), result)
				wire += len(frame)
				i++
			}
			b.StopTimer()
			sampleFull()
			b.ReportMetric(float64(wire)/float64(i), "wire-bytes/op")
			b.ReportMetric(float64(full)/float64(fullSamples), "full-html-bytes/op")
		})
	}
}
