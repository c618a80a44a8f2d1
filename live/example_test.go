package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"

	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/protocol"
)

type step struct {
	By int `json:"by"`
}

func exampleRegistry() *live.Registry {
	reg, err := live.NewRegistry([]byte("an example secret of at least 32 bytes"), live.Options{})
	if err != nil {
		panic(err)
	}
	err = reg.Register(live.View{
		Name:     "counter",
		Template: template.Must(template.New("c").Parse(`<p>{{.who}}: <b>{{.count}}</b></p>`)),
		Mount: func(ctx context.Context, s *live.Socket, session live.Session, params json.RawMessage) error {
			s.Assign("who", session["name"]) // escaped by html/template
			s.Assign("count", 0)
			return nil
		},
		Events: map[string]*live.Handler{
			"inc": live.Event(func(ctx context.Context, s *live.Socket, p step) error {
				s.Assign("count", s.Get("count").(int)+p.By)
				return nil
			}, live.RateLimit(10, 20)),
		},
	})
	if err != nil {
		panic(err)
	}
	return reg
}

// The first render over plain HTTP: a page handler writes the view inside
// its wrapper, which carries the signed session token for the join.
func ExampleRegistry_Render() {
	reg := exampleRegistry()
	// In a page handler, w is the http.ResponseWriter.
	err := reg.Render(context.Background(), discardToken{}, "counter", "alice", live.Session{"name": "<Alice>"}, nil)
	fmt.Println(err)
	// Output:
	// <div data-lg-view="counter" data-lg-session="…"><p>&lt;Alice&gt;: <b>0</b></p></div>
	// <nil>
}

// discardToken prints a rendered wrapper with the (time-dependent) session
// token elided.
type discardToken struct{}

func (discardToken) Write(p []byte) (int, error) {
	s := string(p)
	start := len(`<div data-lg-view="counter" data-lg-session="`)
	end := start
	for end < len(s) && s[end] != '"' {
		end++
	}
	fmt.Println(s[:start] + "…" + s[end:])
	return len(p), nil
}

// Joining over the connection and handling an event: the reply carries a
// small patch instead of the whole HTML.
func ExampleInstance_Event() {
	reg := exampleRegistry()
	tok, _ := reg.SignSession("counter", "alice", live.Session{"name": "Alice"})
	inst, html, err := reg.Join(context.Background(), "alice", "counter", tok, nil)
	if err != nil {
		panic(err)
	}
	defer inst.Close()
	fmt.Println(html)

	res, _ := inst.Event(context.Background(), subject("alice"), "inc", json.RawMessage(`{"by":41}`))
	fmt.Println(string(protocol.AppendViewResult(nil, res)))
	html, _ = live.Apply(html, *res.Patch)
	fmt.Println(html)

	_, err = inst.Event(context.Background(), subject("alice"), "inc", json.RawMessage(`{"by":1,"__proto__":{}}`))
	fmt.Println(err != nil)
	// Output:
	// <p>Alice: <b>0</b></p>
	// {"version":2,"patch":{"ref":"v1","version":2,"start":13,"end":14,"insert":"41"}}
	// <p>Alice: <b>41</b></p>
	// true
}

// Server-initiated updates: application code changes the view, and the
// patch goes to the connection's WithPatch function.
func ExampleInstance_Update() {
	reg := exampleRegistry()
	tok, _ := reg.SignSession("counter", "alice", live.Session{"name": "Alice"})
	inst, _, err := reg.Join(context.Background(), "alice", "counter", tok, nil,
		live.WithPatch(func(p protocol.Patch) {
			fmt.Println(string(protocol.AppendPatchPush(nil, p)))
		}))
	if err != nil {
		panic(err)
	}
	defer inst.Close()
	_ = inst.Update(func(s *live.Socket) { s.Assign("count", 7) })
	// Output: {"patch":{"ref":"v1","version":2,"start":13,"end":14,"insert":"7"}}
}

func ExampleDiff() {
	p, _ := live.Diff("<p>😀 9</p>", "<p>😀 10</p>")
	fmt.Println(p.Start, p.End, p.Insert) // 😀 counts two UTF-16 code units
	// Output: 6 7 10
}
