package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// JoinParams are the parameters of "join": mount the live view View for
// this connection's user.
type JoinParams struct {
	// View is the view's name, as in the page's data-lg-view attribute.
	View string `json:"view"`
	// Session is the signed session token of the page's data-lg-session
	// attribute; it binds the view, the user and the HTTP session data.
	Session string `json:"session"`
	// CSRF is the page's CSRF token (<meta name="csrf-token">); a join
	// without a valid one is refused.
	CSRF string `json:"csrf"`
	// Params are the view's mount parameters: a JSON object, or absent.
	// They are client-controlled, unlike Session.
	Params json.RawMessage `json:"params,omitempty"`
}

// ViewParams are the parameters of "view": an event for a joined view.
type ViewParams struct {
	// Ref is the view's reference from the join result.
	Ref string `json:"ref"`
	// Name is the event's name; it must match ^[a-z][a-z0-9_]{0,63}$.
	Name string `json:"name"`
	// Payload is the event's input.
	Payload json.RawMessage `json:"payload,omitempty"`
	// CSRF is the page's CSRF token; an event without a valid one is
	// refused.
	CSRF string `json:"csrf"`
}

// LeaveParams are the parameters of "leave".
type LeaveParams struct {
	Ref string `json:"ref"`
}

// JoinResult is the result of a successful "join".
type JoinResult struct {
	// Ref names the view on this connection in "view", "leave" and
	// patches.
	Ref string `json:"ref"`
	// Version is the version of HTML; each patch increases it by one.
	Version uint64 `json:"version"`
	// HTML is the view's full render: the base later patches apply to.
	HTML string `json:"html"`
}

// Patch is one change of a live view's HTML: replace the UTF-16 code units
// [Start, End) of the previous HTML (version Version-1) with Insert, giving
// version Version. Offsets count UTF-16 code units because browsers hold
// the HTML as a JavaScript string; they never split a character.
type Patch struct {
	Ref     string `json:"ref"`
	Version uint64 `json:"version"`
	Start   int    `json:"start"`
	End     int    `json:"end"`
	Insert  string `json:"insert"`
}

// ViewResult is the result of a successful "view": the view's version
// after the event and, when the event changed the HTML, the patch.
type ViewResult struct {
	Version uint64 `json:"version"`
	Patch   *Patch `json:"patch,omitempty"`
}

// ViewClosed tells a client that the server closed one of its live views
// (for example because its state outgrew the server's limit). Code is one
// of the error codes; later "view" commands for Ref are refused.
type ViewClosed struct {
	Ref  string `json:"ref"`
	Code string `json:"code"`
}

// AppendJoinResult appends the JSON encoding of r. HTML is not escaped
// for embedding in HTML (the frame is parsed as JSON, never embedded),
// which keeps markup at its own size on the wire.
func AppendJoinResult(dst []byte, r JoinResult) []byte {
	dst = append(dst, `{"ref":`...)
	dst = appendString(dst, r.Ref)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, r.Version, 10)
	dst = append(dst, `,"html":`...)
	dst = appendString(dst, r.HTML)
	return append(dst, '}')
}

// AppendPatch appends the JSON encoding of p.
func AppendPatch(dst []byte, p Patch) []byte {
	dst = append(dst, `{"ref":`...)
	dst = appendString(dst, p.Ref)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, p.Version, 10)
	dst = append(dst, `,"start":`...)
	dst = strconv.AppendInt(dst, int64(p.Start), 10)
	dst = append(dst, `,"end":`...)
	dst = strconv.AppendInt(dst, int64(p.End), 10)
	dst = append(dst, `,"insert":`...)
	dst = appendString(dst, p.Insert)
	return append(dst, '}')
}

// AppendViewResult appends the JSON encoding of r.
func AppendViewResult(dst []byte, r ViewResult) []byte {
	dst = append(dst, `{"version":`...)
	dst = strconv.AppendUint(dst, r.Version, 10)
	if r.Patch != nil {
		dst = append(dst, `,"patch":`...)
		dst = AppendPatch(dst, *r.Patch)
	}
	return append(dst, '}')
}

// AppendPatchPush appends a server-initiated patch frame {"patch": p}.
func AppendPatchPush(dst []byte, p Patch) []byte {
	dst = append(dst, `{"patch":`...)
	dst = AppendPatch(dst, p)
	return append(dst, '}')
}

// AppendViewClosed appends a {"view_closed": {"ref", "code"}} frame.
func AppendViewClosed(dst []byte, ref, code string) []byte {
	dst = append(dst, `{"view_closed":{"ref":`...)
	dst = appendString(dst, ref)
	dst = append(dst, `,"code":`...)
	dst = appendString(dst, code)
	return append(dst, "}}"...)
}

// appendString appends s as a JSON string. Unlike encoding/json it does
// not escape <, > and &: frames are parsed with JSON.parse, never embedded
// in a page, so HTML travels at its own size. Control characters, U+2028
// and U+2029 are escaped; invalid UTF-8 becomes U+FFFD, as encoding/json
// does.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
