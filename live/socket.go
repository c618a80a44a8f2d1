package live

// Socket is a view instance's state as its application code sees it: the
// user, the verified session data and the assigns the template renders.
//
// Assigns change only through Assign, called by Mount, event handlers and
// Update functions: there is no path from a client payload to the assigns
// other than the application's own handler code. A Socket is not safe for
// concurrent use; it is only handed to code that runs with its instance
// locked. To change it from another goroutine, use Instance.Update.
type Socket struct {
	user    string
	session Session
	assigns map[string]any
	inst    *Instance
}

func newSocket(user string, session Session, inst *Instance) *Socket {
	return &Socket{user: user, session: session, assigns: make(map[string]any), inst: inst}
}

// Assign sets the assign key to value; the template reads it as .key.
// Values must be encodable as JSON (their JSON size counts towards
// Options.MaxStateBytes). A value of type template.HTML is rendered
// without escaping: see View.Template for why that is dangerous.
func (s *Socket) Assign(key string, value any) {
	s.assigns[key] = value
}

// Get returns the assign key, or nil.
func (s *Socket) Get(key string) any {
	return s.assigns[key]
}

// User returns the user the view was rendered or joined for (the
// connection's authenticated user when joined over the WebSocket).
func (s *Socket) User() string { return s.user }

// Session returns a copy of the verified session data.
func (s *Socket) Session() Session { return cloneSession(s.session) }

// Instance returns the live instance the socket belongs to, or nil during
// a plain HTTP render (Registry.Render). Keep it to update the view from
// other goroutines (Instance.Update); Instance.Done tells when to let go.
func (s *Socket) Instance() *Instance { return s.inst }
