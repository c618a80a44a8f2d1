package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/csrf"
	"github.com/livegate/livegate/ops"
)

const origin = "https://app.example"

func newProtector(t *testing.T, key string) *csrf.Protector {
	t.Helper()
	p, err := csrf.New([]byte(strings.Repeat(key, 32)), csrf.Options{
		AllowOrigin: func(_ *http.Request, o string) bool { return o == origin },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// token returns a CSRF cookie value and token issued by p.
func token(t *testing.T, p *csrf.Protector) (*http.Cookie, string) {
	t.Helper()
	rr := httptest.NewRecorder()
	tok, err := p.Token(rr, httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	return rr.Result().Cookies()[0], tok
}

// identify is the test's session lookup: the user is in a header.
func identify(r *http.Request) (auth.Identity, error) {
	u := r.Header.Get("X-Test-User")
	if u == "" {
		return auth.Identity{}, errors.New("no session")
	}
	return auth.Identity{User: u}, nil
}

func TestHandler(t *testing.T) {
	prot := newProtector(t, "k")
	e := newEnv(t, nil, func(c *ops.Config) { c.CSRF = prot; c.Identify = identify })
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", e.m.Handler()))
	cookie, tok := token(t, prot)
	forgedCookie, forgedTok := token(t, newProtector(t, "x")) // another key
	_, otherTok := token(t, prot)                             // valid, but not this cookie's

	ali := auth.Identity{User: "alice"}
	op, h := e.hold(t, ali)
	defer func() {
		select {
		case h.release <- nil:
		default:
		}
	}()

	type request struct {
		method, path, user, token, site, origin string
		cookie                                  *http.Cookie
	}
	valid := func(path string) request {
		return request{http.MethodPost, path, "alice", tok, "same-origin", origin, cookie}
	}
	do := func(rq request) *httptest.ResponseRecorder {
		r := httptest.NewRequest(rq.method, rq.path, nil)
		r.RemoteAddr = "192.0.2.7:5555"
		if rq.user != "" {
			r.Header.Set("X-Test-User", rq.user)
		}
		if rq.token != "" {
			r.Header.Set(csrf.HeaderName, rq.token)
		}
		if rq.site != "" {
			r.Header.Set("Sec-Fetch-Site", rq.site)
		}
		if rq.origin != "" {
			r.Header.Set("Origin", rq.origin)
		}
		if rq.cookie != nil {
			r.AddCookie(rq.cookie)
		}
		rr := httptest.NewRecorder()
		mux.ServeHTTP(rr, r)
		return rr
	}
	cancelPath := "/ops/cancel/" + op.ID
	with := func(rq request, f func(*request)) request { f(&rq); return rq }
	const forbiddenBody = `{"error":"forbidden"}` + "\n"

	e.events.take()
	for _, tc := range []struct {
		name   string
		req    request
		code   int
		audit  string // the audit event type expected, if any
		reason string
	}{
		{"GET", with(valid(cancelPath), func(r *request) { r.method = http.MethodGet }), 405, "", ""},
		{"PUT restart", with(valid("/ops/restart/"+op.ID), func(r *request) { r.method = http.MethodPut }), 405, "", ""},
		{"no token", with(valid(cancelPath), func(r *request) { r.token = "" }), 403, audit.TypeCSRFRejected, csrf.ErrNoToken.Error()},
		{"no cookie", with(valid(cancelPath), func(r *request) { r.cookie = nil }), 403, audit.TypeCSRFRejected, csrf.ErrNoToken.Error()},
		{"forged token", with(valid(cancelPath), func(r *request) { r.token, r.cookie = forgedTok, forgedCookie }), 403, audit.TypeCSRFRejected, csrf.ErrBadToken.Error()},
		{"another cookie's token", with(valid(cancelPath), func(r *request) { r.token = otherTok }), 403, audit.TypeCSRFRejected, csrf.ErrBadToken.Error()},
		{"cross-site", with(valid(cancelPath), func(r *request) { r.site = "cross-site" }), 403, audit.TypeCSRFRejected, csrf.ErrCrossSite.Error()},
		{"foreign origin", with(valid(cancelPath), func(r *request) { r.site, r.origin = "", "https://evil.example" }), 403, audit.TypeCSRFRejected, csrf.ErrOrigin.Error()},
		{"no session", with(valid(cancelPath), func(r *request) { r.user = "" }), 403, ops.EventDenied, "unauthenticated"},
		{"other user cancels", with(valid(cancelPath), func(r *request) { r.user = "bob" }), 403, ops.EventDenied, "not_found_or_not_owner"},
		{"other user restarts", with(valid("/ops/restart/"+op.ID), func(r *request) { r.user = "bob" }), 403, ops.EventDenied, "not_found_or_not_owner"},
		{"unknown id", valid("/ops/cancel/00000000-0000-4000-8000-000000000000"), 403, ops.EventDenied, "not_found_or_not_owner"},
		{"malformed id", valid("/ops/cancel/x'"), 403, ops.EventDenied, "not_found_or_not_owner"},
		{"other action", valid("/ops/delete/" + op.ID), 404, "", ""},
		{"extra segment", valid(cancelPath + "/x"), 404, "", ""},
		{"no id", valid("/ops/cancel/"), 404, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr := do(tc.req)
			if rr.Code != tc.code {
				t.Fatalf("status %d, want %d (%s)", rr.Code, tc.code, rr.Body)
			}
			if ct := rr.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" || rr.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", rr.Header())
			}
			if tc.code == 403 && rr.Body.String() != forbiddenBody {
				t.Errorf("body %q, want the generic %q", rr.Body, forbiddenBody)
			}
			if tc.code == 405 && rr.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q", rr.Header().Get("Allow"))
			}
			ev := e.events.take()
			if tc.audit == "" {
				if len(ev) != 0 {
					t.Errorf("unexpected audit events %+v", ev)
				}
			} else if len(ev) != 1 || ev[0].Type != tc.audit || ev[0].Reason != tc.reason || ev[0].IP != "192.0.2.7" {
				t.Errorf("audit events %+v, want one %s %q", ev, tc.audit, tc.reason)
			}
			if h.ctx.Err() != nil {
				t.Fatal("a refused request cancelled the operation")
			}
		})
	}

	// The owner's requests succeed.
	rr := do(valid("/ops/restart/" + op.ID))
	if rr.Code != 200 {
		t.Fatalf("restart: %d %s", rr.Code, rr.Body)
	}
	var res struct {
		OK            bool   `json:"ok"`
		Op            string `json:"op"`
		Channel       string `json:"channel"`
		Kind          string `json:"kind"`
		RestartedFrom string `json:"restarted_from"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &res); err != nil || !res.OK || res.Op == op.ID ||
		res.Channel != "op:"+res.Op || res.Kind != "hold" || res.RestartedFrom != op.ID {
		t.Fatalf("restart reply %s (%v)", rr.Body, err)
	}
	wait(t, op) // restarting cancelled it
	h2 := <-e.holds
	rr = do(valid("/ops/cancel/" + res.Op))
	if rr.Code != 200 || rr.Body.String() != `{"ok":true,"op":"`+res.Op+`"}`+"\n" {
		t.Fatalf("cancel: %d %s", rr.Code, rr.Body)
	}
	<-h2.ctx.Done()
	// The restarted operation has no Operation handle here: Shutdown waits
	// for it to finish.
	if err := e.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap2, err := e.m.Get(context.Background(), ali, res.Op)
	if err != nil || snap2.State != ops.StateCancelled {
		t.Fatalf("after cancel: %+v, %v", snap2, err)
	}
	if rr := do(valid("/ops/cancel/" + res.Op)); rr.Code != 409 || rr.Body.String() != `{"error":"not_running"}`+"\n" {
		t.Fatalf("second cancel: %d %s", rr.Code, rr.Body)
	}
}

// TestHandlerNeedsCSRFAndIdentify checks that a Handler without its
// security configuration refuses everything.
func TestHandlerNeedsCSRFAndIdentify(t *testing.T) {
	prot := newProtector(t, "k")
	cookie, tok := token(t, prot)
	for name, edit := range map[string]func(*ops.Config){
		"no CSRF":     func(c *ops.Config) { c.Identify = identify },
		"no Identify": func(c *ops.Config) { c.CSRF = prot },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil, edit)
			op, h := e.hold(t, auth.Identity{User: "alice"})
			r := httptest.NewRequest(http.MethodPost, "/cancel/"+op.ID, nil)
			r.Header.Set("X-Test-User", "alice")
			r.Header.Set("Origin", origin)
			r.Header.Set(csrf.HeaderName, tok)
			r.AddCookie(cookie)
			rr := httptest.NewRecorder()
			e.m.Handler().ServeHTTP(rr, r)
			if rr.Code != 403 || h.ctx.Err() != nil {
				t.Fatalf("status %d, cancelled %v; want 403 and still running", rr.Code, h.ctx.Err())
			}
			h.release <- nil
			wait(t, op)
		})
	}
}
