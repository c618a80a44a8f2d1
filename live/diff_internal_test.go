package live

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/livegate/livegate/protocol"
)

// BenchmarkDiffEncode isolates the diff and the reply encoding of
// BenchmarkViewUpdate (no render): a 50-line log, one line appended.
func BenchmarkDiffEncode(b *testing.B) {
	var old bytes.Buffer
	old.WriteString(`<section class="room"><header><h2>lobby</h2><p>Clicks: <b>7</b></p></header><ol class="log">`)
	for i := range 50 {
		fmt.Fprintf(&old, "\n<li><time>11:59</time> <strong>user%d</strong> message %d: see you at the standup &lt;3 😀</li>", i%7, i)
	}
	tail := "\n</ol><form lg-submit=\"say\"><input name=\"text\"><button>Send</button></form></section>"
	cur := bytes.Clone(old.Bytes())
	cur = append(cur, "\n<li><time>12:00</time> <strong>alice</strong> new message: on my way</li>"...)
	oldB := append(old.Bytes(), tail...)
	cur = append(cur, tail...)
	frame, result := make([]byte, 0, 1024), make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(cur)))
	for b.Loop() {
		p, _ := makePatch(oldB, cur)
		p.Ref, p.Version = "v1", 2
		result = protocol.AppendViewResult(result[:0], protocol.ViewResult{Version: 2, Patch: &p})
		frame = protocol.AppendReply(frame[:0], 1, result)
	}
}
