package ops

import (
	"bytes"
	"encoding/json"
	"html/template"
	"strings"
	"unicode/utf8"
)

// Message types, the "type" of a published Message.
const (
	TypeState   = "state"
	TypeStatus  = "status"
	TypeLog     = "log"
	TypePercent = "percent"
	TypeError   = "error"
	TypeResult  = "result"
	TypeSwap    = "swap"
)

// Message is what the Manager publishes to an operation's channel, encoded
// as one JSON object (see the package documentation for each type's
// fields). Clients insert HTML only as HTML and Text only as text.
type Message struct {
	Op      string `json:"op"`
	Seq     uint64 `json:"seq"`
	Type    string `json:"type"`
	State   State  `json:"state,omitempty"`   // state
	Percent *int   `json:"percent,omitempty"` // percent
	Target  string `json:"target,omitempty"`  // swap: the element id
	Trusted bool   `json:"trusted,omitempty"` // swap: from Progress.TrustedHTML
	// Text is the report's raw text (status, log, error, result). It is
	// NOT escaped: insert it with textContent, never as HTML.
	Text string `json:"text,omitempty"`
	// HTML is the escaped fragment (status, log, error, result, swap),
	// or, in a swap with Trusted set, the application's trusted HTML.
	HTML string `json:"html,omitempty"`
	// Result is the result as JSON (result).
	Result json.RawMessage `json:"result,omitempty"`
}

// encode returns m as JSON. HTML characters are not \u-escaped: the
// payload is JSON inside a WebSocket frame, never inline in a page, and
// escaping would triple the size of every fragment.
func (m *Message) encode() (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// escape renders text as an HTML text fragment with html/template's
// escaper: <, >, &, ' and " become entities and NUL becomes U+FFFD, so
// "<img src=x onerror=alert(1)>" arrives as "&lt;img src=x onerror=alert(1)&gt;".
func escape(text string) template.HTML {
	return template.HTML(template.HTMLEscapeString(text)) // #nosec G203 -- escaped on this line
}

// clip returns s with invalid UTF-8 replaced and cut at a rune boundary to
// at most max bytes, ending in "…" when cut.
func clip(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// limitBuffer is a bytes.Buffer that refuses to grow past max bytes.
type limitBuffer struct {
	bytes.Buffer
	max int
}

func (l *limitBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > l.max {
		return 0, ErrTooLarge
	}
	return l.Buffer.Write(p)
}
