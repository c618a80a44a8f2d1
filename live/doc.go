// Package live serves server-rendered live views: pages whose HTML is
// rendered on the server with html/template and kept up to date over a
// livegate connection by small patches.
//
// A view is defined once (View: a name, a template, a Mount function and
// its explicitly registered events) and registered with a Registry:
//
//	reg, _ := live.NewRegistry(secret, live.Options{})
//	reg.Register(live.View{
//		Name:     "counter",
//		Template: template.Must(template.New("c").Parse(`<p>{{.count}}</p><button lg-click="inc">+</button>`)),
//		Mount: func(ctx context.Context, s *live.Socket, _ live.Session, _ json.RawMessage) error {
//			s.Assign("count", 0)
//			return nil
//		},
//		Events: map[string]*live.Handler{
//			"inc": live.Event(func(ctx context.Context, s *live.Socket, p struct{}) error {
//				s.Assign("count", s.Get("count").(int)+1)
//				return nil
//			}, live.RateLimit(10, 20)),
//		},
//	})
//
// The life of a view:
//
//  1. The page handler calls Registry.Render: the view mounts with the
//     HTTP session data and renders into a <div data-lg-view
//     data-lg-session> that works without JavaScript. The session data
//     travel in a session token signed with HMAC-SHA256 that binds the
//     view, the user and an expiry; the client can read it but not change
//     it, nor use it for another view or user.
//  2. The browser client joins over the WebSocket ("join" with the session
//     token and the page's CSRF token; the gateway refuses a join without a
//     valid CSRF token or whose token was minted for another user). The
//     gateway calls Registry.Join, which verifies the token, mounts again
//     and returns the full HTML: the base for patches.
//  3. Each event ("view" with the event name, payload and CSRF token) goes
//     through Instance.Event: the same name guard, allow-list, guards, rate
//     limits and typed, strictly decoded payloads as gateway events. The
//     handler changes the socket's assigns; the view re-renders, and the
//     client gets one patch — replace a range of the previous HTML,
//     counted in UTF-16 code units, with new text — typically tens of
//     bytes where the whole HTML is kilobytes.
//  4. Application code updates a view on its own (another user's message,
//     a timer) with Instance.Update; the patch is pushed.
//
// # Safety
//
// Templates are html/template: every assign is escaped for its context.
// The only way around it is an assign of a trusted type such as
// template.HTML, which is inserted verbatim and so must never hold
// anything derived from user input (see View.Template).
//
// Assigns change only in application code (Mount, handlers, Update
// functions): payloads are decoded into the handler's type, unknown keys
// such as "__proto__" or "constructor" are refused, and nothing copies a
// payload into the assigns.
//
// State is bounded: an instance whose rendered HTML plus JSON-encoded
// assigns exceeds Options.MaxStateBytes is closed, and a connection joins
// at most Options.MaxViewsPerConn views.
//
// # Concurrency
//
// Registry and Instance are safe for concurrent use. Mount, handlers and
// Update functions run with their instance locked, one at a time, and may
// call Update on any instance without deadlock. They should not block for
// long: the connection's commands wait meanwhile.
package live
