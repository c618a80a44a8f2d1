package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"

	"github.com/livegate/livegate/httpsec"
	"github.com/livegate/livegate/ops"
)

// pageOptions are what a request adds to the page.
type pageOptions struct {
	authNotice     string // a refused sign-in (form post without JavaScript)
	authUser       string // the name to prefill
	registerNotice string // a refused registration
	opID           string // show this operation (GET /ops/{id}) instead of the newest
}

// pageData is the data of templates/index.html. Strings are escaped by
// html/template; the template.HTML fields come from livegate (the live
// view's first render, the operation's escaped reports).
type pageData struct {
	Nonce          string
	CSRFToken      string
	User           string // the signed-in account, or ""
	DemoUsers      []string
	Board          template.HTML
	BoardError     bool
	Op             opData
	OpMissing      bool
	AuthNotice     string
	AuthUser       string
	RegisterNotice string
	MaxPost        int
	MaxLabel       int
}

// opData is an operation's snapshot as the page shows it.
type opData struct {
	Present    bool
	ID         string
	State      string
	Running    bool
	Seq        uint64
	Percent    int
	Status     string
	Error      string
	Logs       []string
	ResultHTML template.HTML
	Chunks     template.HTML
}

func opDataOf(s *ops.Snapshot) opData {
	return opData{
		Present: true, ID: s.ID, State: string(s.State), Running: s.State == ops.StateRunning,
		Seq: s.Seq, Percent: s.Percent, Status: s.Status, Error: s.Error, Logs: s.Logs,
		ResultHTML: s.ResultHTML, Chunks: s.Swaps[taskChunksID],
	}
}

// indexPage serves the demo page (GET /).
func (s *Server) indexPage(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, r, http.StatusOK, pageOptions{})
}

// opPage serves the page showing one of the user's operations (GET
// /ops/{id}): where a plain form post of "Start long task" lands, and a
// link that survives reloads. Another user's id is a 404, like an unknown
// one.
func (s *Server) opPage(w http.ResponseWriter, r *http.Request) {
	if s.session(r) == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.renderPage(w, r, http.StatusOK, pageOptions{opID: r.PathValue("id")})
}

// renderPage renders templates/index.html for the request's browser: its
// CSRF token (setting the cookie if needed), the CSP nonce, and for a
// signed-in user the live board and the newest (or the chosen) operation
// from the store.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, opts pageOptions) {
	tok, err := s.gw.CSRFToken(w, r)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	data := pageData{
		Nonce:          httpsec.Nonce(r.Context()),
		CSRFToken:      tok,
		DemoUsers:      DemoUsers,
		AuthNotice:     opts.authNotice,
		AuthUser:       opts.authUser,
		RegisterNotice: opts.registerNotice,
		MaxPost:        MaxPostLen,
		MaxLabel:       MaxLabelLen,
	}
	if len(data.AuthUser) > MaxUserLen {
		data.AuthUser = ""
	}
	if sess := s.session(r); sess != nil {
		data.User = sess.user
		ctx := r.Context()
		if data.Board, err = s.renderBoard(ctx, sess); err != nil {
			s.log.Error("demo: render board", "err", err)
			data.BoardError = true
		}
		who := member(sess)
		id := opts.opID
		if id == "" {
			if list, err := s.ops.List(ctx, who); err != nil {
				s.log.Error("demo: list operations", "err", err)
			} else if len(list) > 0 {
				id = list[0].ID
			}
		}
		if id != "" {
			snap, err := s.ops.Get(ctx, who, id)
			switch {
			case err == nil:
				data.Op = opDataOf(snap)
			case errors.Is(err, ops.ErrNotFound):
				data.OpMissing = true
				if status == http.StatusOK {
					status = http.StatusNotFound
				}
			default:
				s.log.Error("demo: get operation", "err", err)
			}
		}
	}
	var buf bytes.Buffer
	if err := s.index.Execute(&buf, data); err != nil {
		s.log.Error("demo: render page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	// A page with a nonce and a CSRF token must not be cached anywhere.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
