package demo

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/ops"
	"github.com/livegate/livegate/protocol"
)

// The live operation "long_task": TaskSteps steps of Config.TaskStep each
// (five seconds by default) that report status, percent, log lines, a
// swapped "chunks" fragment, an error (when asked to fail) and a result.
// Its label is the user's text and goes through all of them, escaped.
const (
	// TaskKind is the operation kind of the long task.
	TaskKind = "long_task"
	// TaskSteps is the number of steps of the long task.
	TaskSteps = 20
	// MaxLabelLen is the longest task label, in characters.
	MaxLabelLen = 100
	// MarkupLogLine is a log line every task writes: markup that must show
	// as text.
	MarkupLogLine = `A line with markup, shown as text: <img src=x onerror=alert(1)>`
	defaultLabel  = "the demo data"
	// maxTaskParams bounds the labels remembered for restarts.
	maxTaskParams = 1000
	// taskChunksID is the element the task swaps its chunks fragment into.
	taskChunksID = "task-chunks"
)

// opsTemplates are the fragments Progress.Swap renders (html/template).
var opsTemplates = template.Must(template.New("ops").Parse(
	`{{define "chunks"}}{{range .Cells}}<i class="cell{{if .}} done{{end}}"></i>{{end}}<span class="chunks-label">{{.Done}} / {{.Total}} chunks</span>{{end}}`))

// chunks is the data of the "chunks" fragment.
type chunks struct {
	Cells       []bool
	Done, Total int
}

func newChunks(done int) chunks {
	c := chunks{Cells: make([]bool, TaskSteps), Done: done, Total: TaskSteps}
	for i := range done {
		c.Cells[i] = true
	}
	return c
}

// TaskParams are what a user chose when starting a long task: the body
// of POST /ops/start.
type TaskParams struct {
	Label string `json:"label"`
	Fail  bool   `json:"fail"`
}

// normalize trims the label and checks it; an empty label becomes the
// default.
func (p *TaskParams) normalize() error {
	if !utf8.ValidString(p.Label) {
		return errors.New("label: invalid UTF-8")
	}
	p.Label = strings.TrimSpace(p.Label)
	if utf8.RuneCountInString(p.Label) > MaxLabelLen {
		return errors.New("label: at most 100 characters")
	}
	for _, r := range p.Label {
		if unicode.IsControl(r) {
			return errors.New("label: control character")
		}
	}
	if p.Label == "" {
		p.Label = defaultLabel
	}
	return nil
}

type taskParamsKey struct{}

// tasks holds what the long task needs beyond its Progress: the params
// of each operation (a restart runs with the params of the operation it
// restarts) and, for a new one, a signal that its page is watching.
type tasks struct {
	step, watchWait time.Duration

	mu      sync.Mutex
	params  map[string]TaskParams
	order   []string // ids in params, oldest first
	waiters map[string]*waiter
}

type waiter struct {
	once sync.Once
	ch   chan struct{}
}

func newTasks(step, watchWait time.Duration) *tasks {
	if step <= 0 {
		step = 250 * time.Millisecond
	}
	if watchWait <= 0 {
		watchWait = 2 * time.Second
	}
	return &tasks{step: step, watchWait: watchWait, params: make(map[string]TaskParams), waiters: make(map[string]*waiter)}
}

func (t *tasks) remember(id string, p TaskParams) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.params[id]; !ok {
		t.order = append(t.order, id)
	}
	t.params[id] = p
	if len(t.order) > maxTaskParams {
		drop := len(t.order) - maxTaskParams
		for _, old := range t.order[:drop] {
			delete(t.params, old)
		}
		t.order = append(t.order[:0:0], t.order[drop:]...)
	}
}

func (t *tasks) paramsOf(id string) (TaskParams, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.params[id]
	return p, ok
}

// restartParams passes the params of the operation being restarted to the
// new one, through the request context that ops.Manager.Restart starts it
// with. The ops Handler still checks CSRF, the session and ownership.
func (t *tasks) restartParams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := strings.CutPrefix(r.URL.Path, "/restart/"); ok && r.Method == http.MethodPost {
			if p, ok := t.paramsOf(id); ok {
				r = r.WithContext(context.WithValue(r.Context(), taskParamsKey{}, p))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// waiterOf returns the watch signal of operation id, made on first use.
func (t *tasks) waiterOf(id string) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waiters[id]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		t.waiters[id] = w
	}
	return w
}

// watched tells a new task that its owner subscribed to its channel.
func (t *tasks) watched(id string) {
	t.mu.Lock()
	w := t.waiters[id]
	t.mu.Unlock()
	if w != nil {
		w.once.Do(func() { close(w.ch) })
	}
}

func (t *tasks) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.waiters, id)
}

func (s *Server) setupOps(cfg Config) error {
	m, err := ops.New(ops.Config{
		Publisher: ops.PublisherFunc(func(ctx context.Context, ch string, data any) error {
			_, err := s.gw.Publish(ctx, ch, data)
			return err
		}),
		Store:         cfg.Operations,
		Templates:     opsTemplates,
		RequiredGroup: MemberGroup,
		CSRF:          s.csrf,
		Identify:      s.sessionUser,
		ClientIP:      clientIP,
		Logger:        s.log,
		Events:        s.events,
	})
	if err != nil {
		return err
	}
	s.ops = m
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := m.Recover(ctx); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("demo: operations interrupted by the last stop marked failed", "n", n)
	}
	if err := m.Register(TaskKind, s.longTask); err != nil {
		return err
	}
	az := m.Authorizer()
	return s.gw.Authorize(ops.Namespace, func(ctx context.Context, id auth.Identity, channel string) error {
		if err := az(ctx, id, channel); err != nil {
			return err
		}
		s.tasks.watched(strings.TrimPrefix(channel, ops.Namespace+":"))
		return nil
	})
}

// awaitLiveWatcher waits until the operation's channel has a live
// subscriber on this node, or until timeout fires or ctx ends.
func (s *Server) awaitLiveWatcher(ctx context.Context, id string, timeout <-chan time.Time) {
	channel := ops.Namespace + ":" + id
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, c := range s.gw.Channels(channel) {
			if c.Channel == channel {
				return
			}
		}
		select {
		case <-tick.C:
		case <-timeout:
			return
		case <-ctx.Done():
			return
		}
	}
}

// longTask is the Func of TaskKind.
func (s *Server) longTask(ctx context.Context, p *ops.Progress) error {
	params, ok := ctx.Value(taskParamsKey{}).(TaskParams)
	if !ok {
		params = TaskParams{Label: defaultLabel}
	}
	s.tasks.remember(p.ID(), params)
	// Wait (briefly) for the page that started the task to watch it, so
	// that it sees the first reports too.
	w := s.tasks.waiterOf(p.ID())
	defer s.tasks.forget(p.ID())
	wait := time.NewTimer(s.tasks.watchWait)
	select {
	case <-w.ch:
		// The subscribe was authorised; its reply (and the position the
		// page will receive reports after) comes a moment later.
		s.awaitLiveWatcher(ctx, p.ID(), wait.C)
	case <-wait.C:
	case <-ctx.Done():
	}
	wait.Stop()

	started := time.Now()
	label := params.Label
	p.Status(fmt.Sprintf("Preparing “%s”…", label))
	p.Log(fmt.Sprintf("Started on “%s”.", label))
	_ = p.Swap(taskChunksID, "chunks", newChunks(0))
	phases := []string{"Reading", "Parsing", "Checking", "Crunching", "Writing"}
	tick := time.NewTicker(s.tasks.step)
	defer tick.Stop()
	for i := 1; i <= TaskSteps; i++ {
		select {
		case <-ctx.Done():
			p.Log(fmt.Sprintf("Cancelled before step %d.", i))
			p.Status(fmt.Sprintf("Cancelled at %d %%.", (i-1)*100/TaskSteps))
			return ctx.Err()
		case <-tick.C:
		}
		phase := phases[(i-1)*len(phases)/TaskSteps]
		p.Percent(i * 100 / TaskSteps)
		p.Status(fmt.Sprintf("%s “%s”: step %d of %d", phase, label, i, TaskSteps))
		p.Log(fmt.Sprintf("step %d: %s chunk %d of “%s”", i, strings.ToLower(phase), i, label))
		_ = p.Swap(taskChunksID, "chunks", newChunks(i))
		if i == 3 {
			p.Log(MarkupLogLine)
		}
		if params.Fail && i == TaskSteps/2 {
			p.Error(fmt.Sprintf("Could not process “%s”: a simulated failure at step %d.", label, i))
			p.Status(fmt.Sprintf("Failed at step %d of %d.", i, TaskSteps))
			return errors.New("demo: simulated failure")
		}
	}
	p.Status(fmt.Sprintf("Done: “%s”.", label))
	return p.Result(fmt.Sprintf("Processed %d chunks of “%s” in %.1f s.", TaskSteps, label, time.Since(started).Seconds()))
}

// startReply answers POST /ops/start.
type startReply struct {
	OK      bool   `json:"ok,omitempty"`
	Op      string `json:"op,omitempty"`
	Channel string `json:"channel,omitempty"`
	Error   string `json:"error,omitempty"`
}

// startTask starts a long task for the signed-in user (POST /ops/start,
// JSON {"label", "fail"} or a form, CSRF checked by the guard). A form post
// is redirected to the operation's page, which works without JavaScript.
func (s *Server) startTask(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sess := s.session(r)
	if sess == nil {
		s.record(r, ops.EventDenied, "unauthenticated", "")
		writeJSON(w, http.StatusForbidden, startReply{Error: "forbidden"})
		return
	}
	var p TaskParams
	if isJSON(r) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
		if err == nil {
			err = protocol.Unmarshal(body, &p)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, startReply{Error: "bad_request"})
			return
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, startReply{Error: "bad_request"})
			return
		}
		p.Label = r.PostFormValue("label")
		p.Fail = r.PostFormValue("fail") != ""
	}
	if err := p.normalize(); err != nil {
		writeJSON(w, http.StatusBadRequest, startReply{Error: "bad_request"})
		return
	}
	op, err := s.ops.Start(context.WithValue(r.Context(), taskParamsKey{}, p), member(sess), TaskKind)
	switch {
	case err == nil:
	case errors.Is(err, ops.ErrTooMany):
		writeJSON(w, http.StatusTooManyRequests, startReply{Error: "too_many_operations"})
		return
	case errors.Is(err, ops.ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, startReply{Error: "unavailable"})
		return
	default:
		s.log.Error("demo: start task", "err", err)
		writeJSON(w, http.StatusInternalServerError, startReply{Error: "internal"})
		return
	}
	if !isJSON(r) {
		http.Redirect(w, r, "/ops/"+op.ID, http.StatusSeeOther) // #nosec G710 -- a same-site path; op.ID is a server-made UUID
		return
	}
	writeJSON(w, http.StatusOK, startReply{OK: true, Op: op.ID, Channel: op.Channel()})
}
