package demo

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/livegate/livegate/live"
	"github.com/livegate/livegate/policy"
)

// The live view "board": a counter and a message board shared by every
// signed-in user. It is rendered into the page over HTTP (it shows without
// JavaScript), then the page joins it over the WebSocket; every click and
// post re-renders it for everyone and sends each page a small patch.
const (
	// BoardView is the view's name.
	BoardView = "board"
	// MaxPostLen is the longest board post, in characters.
	MaxPostLen = 200
	// BoardPosts is how many posts the board keeps.
	BoardPosts = 10
	// maxCount bounds the counter's magnitude.
	maxCount = 1_000_000
)

// Post is the payload of the board's "post" event.
type Post struct {
	Text string `json:"text"`
}

// Validate accepts 1..MaxPostLen characters of printable UTF-8 after
// trimming.
func (p Post) Validate() error {
	if !utf8.ValidString(p.Text) {
		return errors.New("text: invalid UTF-8")
	}
	t := strings.TrimSpace(p.Text)
	if n := utf8.RuneCountInString(t); n < 1 || n > MaxPostLen {
		return errors.New("text: 1..200 characters")
	}
	for _, r := range t {
		if unicode.IsControl(r) {
			return errors.New("text: control character")
		}
	}
	return nil
}

// BoardPost is one post on the board (also an assign: exported fields,
// so that the state meter can measure it).
type BoardPost struct {
	User string
	Text string
	At   string // "15:04"
}

// board is the shared state and the joined instances to update.
type board struct {
	mu    sync.Mutex
	count int
	by    string
	posts []BoardPost // oldest first; replaced, never changed in place
	insts map[*live.Instance]struct{}
}

func newBoard() *board { return &board{insts: make(map[*live.Instance]struct{})} }

// assignLocked gives a socket the shared state.
func (b *board) assignLocked(s *live.Socket) {
	s.Assign("count", b.count)
	s.Assign("by", b.by)
	s.Assign("posts", b.posts)
}

// broadcastLocked updates every joined instance but self (whose handler
// assigns directly and gets its patch in the event's reply). Update never
// blocks: an instance busy with its own event applies it right after.
func (b *board) broadcastLocked(self *live.Instance) {
	count, by, posts := b.count, b.by, b.posts
	for inst := range b.insts {
		if inst == self {
			continue
		}
		_ = inst.Update(func(s *live.Socket) {
			s.Assign("count", count)
			s.Assign("by", by)
			s.Assign("posts", posts)
		})
	}
}

var boardTemplate = template.Must(template.New(BoardView).Parse(boardHTML))

// boardHTML is the view's template. Every value is escaped by
// html/template; the view has no template.HTML assign.
const boardHTML = `<div class="board">
<div class="counter">
<button type="button" class="round" id="board-dec" lg-click="dec" aria-label="Decrease the counter">−</button>
<output class="count" id="board-count" aria-live="polite">{{.count}}</output>
<button type="button" class="round" id="board-inc" lg-click="inc" aria-label="Increase the counter">+</button>
</div>
<p class="by" id="board-by">{{with .by}}Last change by <strong>{{.}}</strong>{{else}}Nobody has clicked yet.{{end}}</p>
<ol class="feed" id="board-feed" aria-live="polite">
{{- range .posts}}
<li{{if eq .User $.me}} class="mine"{{end}}><span class="user">{{.User}}</span><span class="text">{{.Text}}</span><time>{{.At}}</time></li>
{{- else}}
<li class="empty">No posts yet. Say hi!</li>
{{- end}}
</ol>
<form class="row" id="board-form" lg-submit="post" autocomplete="off">
<input type="text" id="board-text" name="text" maxlength="200" required placeholder="Post to the board…" aria-label="Board message">
<button type="submit" id="board-send">Post</button>
</form>
</div>`

// member events: only connections opened from a login session.
var memberOnly = live.Require(policy.Access{Mode: policy.ModeAuthenticated, Groups: []string{MemberGroup}})

func (s *Server) boardView() live.View {
	b := s.board
	step := func(d int) *live.Handler {
		return live.Event(func(_ context.Context, sock *live.Socket, _ struct{}) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.count = min(max(b.count+d, -maxCount), maxCount)
			b.by = sock.User()
			b.assignLocked(sock)
			b.broadcastLocked(sock.Instance())
			return nil
		}, live.RateLimit(10, 20), memberOnly)
	}
	return live.View{
		Name:     BoardView,
		Template: boardTemplate,
		Mount:    s.mountBoard,
		Events: map[string]*live.Handler{
			"inc": step(+1),
			"dec": step(-1),
			"post": live.Event(func(_ context.Context, sock *live.Socket, p Post) error {
				b.mu.Lock()
				defer b.mu.Unlock()
				posts := make([]BoardPost, 0, BoardPosts)
				if n := len(b.posts); n >= BoardPosts {
					posts = append(posts, b.posts[n-BoardPosts+1:]...)
				} else {
					posts = append(posts, b.posts...)
				}
				b.posts = append(posts, BoardPost{
					User: sock.User(), Text: strings.TrimSpace(p.Text), At: time.Now().Format("15:04"),
				})
				b.assignLocked(sock)
				b.broadcastLocked(sock.Instance())
				return nil
			}, live.RateLimit(2, 5), memberOnly),
		},
	}
}

// mountBoard checks that the view's session is a live login of the user
// (a page rendered before a logout cannot join), assigns the shared state
// and, for a joined instance, keeps it for updates until it closes.
func (s *Server) mountBoard(ctx context.Context, sock *live.Socket, sess live.Session, _ json.RawMessage) error {
	if !s.sessions.alive(sess["sess"], sock.User()) {
		return live.ErrForbidden
	}
	b := s.board
	b.mu.Lock()
	defer b.mu.Unlock()
	sock.Assign("me", sock.User())
	b.assignLocked(sock)
	if inst := sock.Instance(); inst != nil {
		b.insts[inst] = struct{}{}
		context.AfterFunc(ctx, func() {
			b.mu.Lock()
			delete(b.insts, inst)
			b.mu.Unlock()
		})
	}
	return nil
}

// renderBoard is the first render of the board for a login session.
func (s *Server) renderBoard(ctx context.Context, sess *session) (template.HTML, error) {
	var out strings.Builder
	if err := s.views.Render(ctx, &out, BoardView, sess.user, live.Session{"sess": sess.ref}, nil); err != nil {
		return "", err
	}
	// Render's output is html/template's escaped HTML in a wrapper livegate
	// builds: trusted.
	return template.HTML(out.String()), nil // #nosec G203 -- html/template output in livegate's own wrapper
}

// boardSession hands the page a fresh session token for the board (GET
// /board/session), for a re-join after the one in the page expired.
func (s *Server) boardSession(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sess := s.session(r)
	if sess == nil {
		writeJSON(w, http.StatusForbidden, authReply{Error: "forbidden"})
		return
	}
	tok, err := s.views.SignSession(BoardView, sess.user, live.Session{"sess": sess.ref})
	if err != nil {
		s.log.Error("demo: board session", "err", err)
		writeJSON(w, http.StatusInternalServerError, authReply{Error: "internal"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"session": tok})
}
