package live_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/protocol"
)

var testKey = []byte("0123456789abcdef0123456789abcdef-live")

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type incPayload struct {
	By int `json:"by"`
	//lint:ignore U1000 an unexported field a payload must not reach
	secret int //nolint:unused // an unexported field a payload must not reach
}

func (p incPayload) Validate() error {
	if p.By < 0 || p.By > 100 {
		return errors.New("by out of range")
	}
	return nil
}

type sayPayload struct {
	Text string `json:"text"`
}

func (p sayPayload) Validate() error {
	if p.Text == "" || len(p.Text) > 500 {
		return errors.New("bad text")
	}
	return nil
}

var counterTmpl = template.Must(template.New("counter").Parse(
	`<section class="counter"><h2>Hello {{.name}}</h2><p>Count: <b>{{.count}}</b></p>` +
		`<button lg-click="inc">+1</button><ul>{{range .log}}<li>{{.}}</li>{{end}}</ul></section>`))

// counterView is a view with a counter, a log of messages, a guarded
// event and a rate-limited one.
func counterView() live.View {
	return live.View{
		Name:     "counter",
		Template: counterTmpl,
		Mount: func(ctx context.Context, s *live.Socket, session live.Session, params json.RawMessage) error {
			s.Assign("name", session["name"])
			s.Assign("count", 0)
			s.Assign("log", []string{})
			return nil
		},
		Events: map[string]*live.Handler{
			"inc": live.Event(func(ctx context.Context, s *live.Socket, p incPayload) error {
				by := p.By
				if by == 0 {
					by = 1
				}
				s.Assign("count", s.Get("count").(int)+by)
				return nil
			}),
			"say": live.Event(func(ctx context.Context, s *live.Socket, p sayPayload) error {
				s.Assign("log", append(s.Get("log").([]string), p.Text))
				return nil
			}),
			"reset": live.Event(func(ctx context.Context, s *live.Socket, _ struct{}) error {
				s.Assign("count", 0)
				return nil
			}, live.Require(policy.Access{Groups: []string{"admin"}})),
			"slow": live.Event(func(ctx context.Context, s *live.Socket, _ struct{}) error {
				s.Assign("count", s.Get("count").(int)+1)
				return nil
			}, live.RateLimit(1, 2)),
			"fail": live.Event(func(ctx context.Context, s *live.Socket, _ struct{}) error {
				s.Assign("count", -1)
				return errors.New("boom")
			}),
			"panic": live.Event(func(ctx context.Context, s *live.Socket, _ struct{}) error {
				s.Assign("count", -2)
				panic("handler bug")
			}),
		},
	}
}

func newRegistry(t testing.TB, opts live.Options, views ...live.View) *live.Registry {
	t.Helper()
	reg, err := live.NewRegistry(testKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if err := reg.Register(v); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func join(t testing.TB, reg *live.Registry, user, view string, session live.Session, opts ...live.JoinOption) (*live.Instance, string) {
	t.Helper()
	tok, err := reg.SignSession(view, user, session)
	if err != nil {
		t.Fatal(err)
	}
	inst, html, err := reg.Join(context.Background(), user, view, tok, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Close)
	return inst, html
}

func subject(user string, groups ...string) policy.Subject {
	return policy.Subject{User: user, Groups: groups}
}

// tracker applies every patch, as a client would, and checks versions.
type tracker struct {
	t       testing.TB
	html    string
	version uint64
}

func (tr *tracker) apply(p *protocol.Patch) {
	tr.t.Helper()
	if p == nil {
		return
	}
	if p.Version != tr.version+1 {
		tr.t.Fatalf("patch version %d after %d", p.Version, tr.version)
	}
	h, err := live.Apply(tr.html, *p)
	if err != nil {
		tr.t.Fatalf("apply %+v: %v", p, err)
	}
	tr.html, tr.version = h, p.Version
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
