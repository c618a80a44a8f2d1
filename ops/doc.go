// Package ops runs live operations: long-running tasks owned by one user,
// whose progress streams to the page as escaped HTML fragments over the
// channel "op:<id>", and whose state is persisted so that a reload shows
// where they are. Cancel and restart are owner-only, CSRF-protected POSTs.
//
// # Wiring
//
// ops does not import the gateway; it needs only a Publisher. With a
// livegate.Gateway gw, an HTTP session lookup and a csrf.Protector:
//
//	m, err := ops.New(ops.Config{
//		Publisher: ops.PublisherFunc(func(ctx context.Context, ch string, data any) error {
//			_, err := gw.Publish(ctx, ch, data)
//			return err
//		}),
//		Store:     db.Operations(), // package store; nil keeps operations in memory
//		Templates: fragments,       // *html/template.Template for Progress.Swap
//		CSRF:      protector,
//		Identify:  sessionUser,     // func(*http.Request) (auth.Identity, error)
//	})
//	...
//	m.Recover(ctx)                                   // once: fail what a crash left "running"
//	gw.Authorize(ops.Namespace, m.Authorizer())      // owner-only joins of op:<id>
//	mux.Handle("/ops/", http.StripPrefix("/ops", m.Handler()))
//	m.Register("export", export)                     // func(ctx, *ops.Progress) error
//	op, err := m.Start(r.Context(), user, "export")  // op.Channel() == "op:" + op.ID
//	...
//	m.Sweep(ctx)                                     // periodically: drop old finished ones
//	m.Shutdown(ctx)                                  // before gw.Shutdown and db.Close
//
// The gateway's policy must configure the namespace "op" with Subscribe
// set to authenticated users (the Authorizer then checks ownership), no
// client publishing (the default), and TenantScoped false: the Manager
// publishes without a tenant, and ids are unique across tenants anyway
// (ownership compares user and tenant). A small history (HistorySize) lets
// a client that reconnects recover the reports it missed.
//
// # Security
//
//   - Ids are random UUIDv4 (crypto/rand), and only the owner — the same
//     auth.Identity User and Tenant — may join the channel, Get, Cancel or
//     Restart an operation; with Config.RequiredGroup the joiner must also
//     be in that group. Another user's id behaves exactly like an unknown
//     one (ErrNotFound; a 403 over HTTP), so ids cannot be probed. Every
//     refused join and request is an audit event.
//   - Every report is escaped by html/template unless the Func explicitly
//     calls Progress.TrustedHTML; element ids must match
//     ^[A-Za-z][A-Za-z0-9_-]{0,63}$.
//   - The Handler accepts only POST, checks csrf.Protector.Check (Fetch
//     Metadata, Origin and the X-CSRF-Token header against the cookie) and
//     the session, and answers every refusal with the same 403.
//   - Reports are bounded: text is cut to MaxTextBytes, a message to
//     Config.MaxMessageBytes, logs to Config.LogLines lines and
//     Config.LogRate lines per second, swaps to MaxSwapTargets elements;
//     status, percent and swaps are coalesced to one publication per
//     Config.ReportInterval; running operations are bounded per owner and
//     in total.
//   - A Func's error is logged, never shown: the user sees a generic
//     message unless the Func reported one with Progress.Error.
//
// # Messages
//
// Each report is published to "op:<id>" as one JSON object (a Message),
// and each carries "op" (the id), "seq" (1, 2, 3… per operation, in the
// order reports were made) and "type":
//
//	{"op":"<id>","seq":1,"type":"state","state":"running"}
//	{"op":"<id>","seq":2,"type":"status","text":"Reading <a.csv>","html":"Reading &lt;a.csv&gt;"}
//	{"op":"<id>","seq":3,"type":"percent","percent":40}
//	{"op":"<id>","seq":4,"type":"log","text":"row 7 <b>","html":"row 7 &lt;b&gt;"}
//	{"op":"<id>","seq":5,"type":"swap","target":"chart","html":"<b>3</b> files"}
//	{"op":"<id>","seq":6,"type":"swap","target":"graph","trusted":true,"html":"<svg>…</svg>"}
//	{"op":"<id>","seq":7,"type":"error","text":"Row 9 is invalid.","html":"Row 9 is invalid."}
//	{"op":"<id>","seq":8,"type":"result","html":"{&#34;rows&#34;:3}","result":{"rows":3}}
//	{"op":"<id>","seq":9,"type":"state","state":"done"}
//
// "html" is always safe to insert as HTML: text escaped by html/template,
// a named template rendered by html/template, or — only in a "swap" with
// "trusted": true — HTML the application vouched for with TrustedHTML.
// "text" is the raw text and must only ever be inserted as text
// (textContent). A "result" carries the data as JSON in "result" (<, >
// and & \u-escaped), its escaped rendering in "html", and "text" when the
// data is a string. "percent" is 0..100. "state" is "running" at the
// start and then exactly one of "done", "failed" or "cancelled", always
// the last message. Empty fields are omitted. See docs/operations.md.
//
// # Persistence
//
// Every report is written to the Store before it is published, so a
// client that sees a message and reloads finds it; Manager.Get returns the
// Snapshot to render the page from (status, percent, the newest log
// lines, error, result, the HTML of each swapped element, state, and the
// seq of the newest message, after which pushed messages are new).
// MemoryStore keeps operations in memory; package store keeps them in
// SQLite. Package opstest checks a Store against the contract.
//
// # Concurrency
//
// A Manager and a Progress are safe for concurrent use. Each operation's
// Func runs on its own goroutine, owned by the Manager: Shutdown cancels
// and waits for them. Reports of one operation are persisted and
// published one at a time, in seq order; a report blocks while the store
// writes (bounded by a timeout), never on subscribers.
package ops
