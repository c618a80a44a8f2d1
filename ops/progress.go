package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/livegate/livegate/internal/logsafe"
)

// elementIDPattern is the grammar of element ids in swaps.
var elementIDPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// Progress is an operation's reporting handle, given to its Func. Every
// report is rendered escaped (unless it is TrustedHTML), persisted, so
// that a reload shows the current state, and published to the operation's
// channel as a Message with the next seq.
//
// Status, Percent and swaps are current values: within
// Config.ReportInterval of the last publication only the latest of each is
// kept, and published when the interval ends (or before an error, a result
// or the end). Log lines are rate-limited (Config.LogRate). Reports made
// after the Func returned are ignored (ErrFinished).
//
// Its methods are safe for concurrent use; each report is persisted and
// published before the next one, in seq order, so a report blocks while
// the store writes.
type Progress struct {
	m       *Manager
	op      *Operation
	channel string
	ctx     context.Context // the Start context's values, never cancelled
	logs    *rate.Limiter

	mu          sync.Mutex
	seq         uint64
	finished    bool
	lastFlush   time.Time
	stopTimer   func() bool // the armed flush timer, or nil
	timerGen    uint64
	status      string // latest reported (pending or published)
	percent     int
	pendStatus  *string
	pendPercent *int
	pendSwaps   []pendingSwap
	targets     map[string]bool // every element swapped so far
	dropped     int             // log lines dropped since the last line
	errReported bool
}

type pendingSwap struct {
	target  string
	html    template.HTML
	trusted bool
}

func newProgress(m *Manager, ctx context.Context, op *Operation) *Progress {
	return &Progress{
		m:       m,
		op:      op,
		channel: Channel(op.ID),
		ctx:     ctx,
		logs:    rate.NewLimiter(rate.Limit(m.cfg.LogRate), m.cfg.LogBurst),
		targets: make(map[string]bool),
	}
}

// ID returns the operation's id.
func (p *Progress) ID() string { return p.op.ID }

// Kind returns the operation's kind.
func (p *Progress) Kind() string { return p.op.Kind }

// started publishes the first message, state "running", whose seq 1 the
// store already recorded.
func (p *Progress) started() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq = 1
	ctx, cancel := context.WithTimeout(p.ctx, writeTimeout)
	defer cancel()
	p.publish(ctx, &Message{Op: p.op.ID, Seq: 1, Type: TypeState, State: StateRunning})
}

// Status reports the operation's current status text, cut to
// MaxTextBytes. It is coalesced (see Progress).
func (p *Progress) Status(text string) {
	text = clip(text, MaxTextBytes)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished || text == p.status {
		return
	}
	p.status = text
	p.pendStatus = &text
	p.coalesceLocked()
}

// Percent reports progress, clamped to 0..100. It is coalesced (see
// Progress).
func (p *Progress) Percent(n int) {
	n = min(max(n, 0), 100)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished || n == p.percent {
		return
	}
	p.percent = n
	p.pendPercent = &n
	p.coalesceLocked()
}

// Log appends a line, cut to MaxTextBytes, to the operation's log, which
// keeps the newest Config.LogLines lines. Lines over Config.LogRate are
// dropped and counted in a "… N log lines dropped" line.
func (p *Progress) Log(line string) {
	line = clip(line, MaxTextBytes)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	now := p.m.cfg.Now()
	if !p.logs.AllowN(now, 1) {
		p.dropped++
		return
	}
	p.flushDroppedLocked(now)
	p.logLocked(now, line)
}

// Error reports an error message for the user, cut to MaxTextBytes. It
// does not end the operation: the Func's return value decides its state.
// Never pass internal details (stack traces, queries): the message is
// shown as is.
func (p *Progress) Error(msg string) {
	msg = clip(msg, MaxTextBytes)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.errReported = true
	now := p.m.cfg.Now()
	p.flushLocked(now)
	p.emitLocked(now, []Message{{Type: TypeError, Text: msg, HTML: string(escape(msg))}}, Update{Error: &msg})
}

// Result reports the operation's result. data is marshalled to JSON
// (Message.Result) and rendered escaped (Message.HTML): a string as its
// text, anything else as its JSON. The latest result is persisted. It
// returns the marshalling error, ErrTooLarge past Config.MaxMessageBytes,
// or ErrFinished.
func (p *Progress) Result(data any) error {
	js, err := json.Marshal(data) // <, > and & as \u003c…: inert anywhere
	if err != nil {
		return fmt.Errorf("ops: result: %w", err)
	}
	msg := Message{Type: TypeResult, Result: js}
	if s, ok := data.(string); ok {
		msg.Text = s
		msg.HTML = string(escape(s))
	} else {
		// Rendered from JSON without \u escapes, so that it reads well.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(data); err != nil {
			return fmt.Errorf("ops: result: %w", err)
		}
		msg.HTML = string(escape(strings.TrimSuffix(b.String(), "\n")))
	}
	if err := p.checkSize(&msg); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return ErrFinished
	}
	now := p.m.cfg.Now()
	p.flushLocked(now)
	p.emitLocked(now, []Message{msg}, Update{Result: &Result{JSON: js, HTML: template.HTML(msg.HTML)}}) // #nosec G203 -- msg.HTML was built by escape above
	return nil
}

// Swap renders the template named templateName from Config.Templates with
// data (html/template: escaped) and swaps the result into the element with
// id elementID, which must match ^[A-Za-z][A-Za-z0-9_-]{0,63}$. At most
// MaxSwapTargets distinct elements may be swapped; each keeps its latest
// HTML, persisted. It is coalesced per element (see Progress). It returns
// ErrInvalidElementID, ErrUnknownTemplate, the template's error,
// ErrTooLarge, ErrTooManyTargets or ErrFinished.
func (p *Progress) Swap(elementID, templateName string, data any) error {
	if !elementIDPattern.MatchString(elementID) {
		return ErrInvalidElementID
	}
	var t *template.Template
	if p.m.cfg.Templates != nil {
		t = p.m.cfg.Templates.Lookup(templateName)
	}
	if t == nil {
		return fmt.Errorf("%w: %q", ErrUnknownTemplate, logsafe.String(templateName))
	}
	buf := &limitBuffer{max: p.m.cfg.MaxMessageBytes}
	if err := t.Execute(buf, data); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return ErrTooLarge
		}
		return fmt.Errorf("ops: swap %q: %w", templateName, err)
	}
	return p.swap(elementID, template.HTML(buf.String()), false) // #nosec G203 -- the output of an html/template, escaped by it
}

// TrustedHTML swaps html, unescaped, into the element with id elementID,
// and marks the message trusted. It is the explicit escape hatch: html
// must come from the application, never contain user input that was not
// escaped, and is as dangerous as any template.HTML. Prefer Swap. Like
// Swap, it is coalesced per element and returns ErrInvalidElementID,
// ErrTooLarge, ErrTooManyTargets or ErrFinished.
func (p *Progress) TrustedHTML(elementID string, html template.HTML) error {
	if !elementIDPattern.MatchString(elementID) {
		return ErrInvalidElementID
	}
	return p.swap(elementID, html, true)
}

func (p *Progress) swap(target string, html template.HTML, trusted bool) error {
	if err := p.checkSize(&Message{Type: TypeSwap, Target: target, HTML: string(html), Trusted: trusted}); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return ErrFinished
	}
	if !p.targets[target] {
		if len(p.targets) >= MaxSwapTargets {
			return ErrTooManyTargets
		}
		p.targets[target] = true
	}
	s := pendingSwap{target, html, trusted}
	replaced := false
	for i := range p.pendSwaps {
		if p.pendSwaps[i].target == target {
			p.pendSwaps[i], replaced = s, true
		}
	}
	if !replaced {
		p.pendSwaps = append(p.pendSwaps, s)
	}
	p.coalesceLocked()
	return nil
}

// checkSize returns ErrTooLarge if msg, once it carries an id and a seq,
// would exceed Config.MaxMessageBytes.
func (p *Progress) checkSize(msg *Message) error {
	msg.Op = p.op.ID
	b, err := msg.encode()
	if err != nil {
		return fmt.Errorf("ops: encode: %w", err)
	}
	if len(b)+20 > p.m.cfg.MaxMessageBytes { // 20: the digits of the largest seq
		return ErrTooLarge
	}
	return nil
}

// coalesceLocked publishes the pending current values now if the last
// publication is at least ReportInterval old, and otherwise arms a timer
// for when it will be.
func (p *Progress) coalesceLocked() {
	now := p.m.cfg.Now()
	interval := p.m.cfg.ReportInterval
	since := now.Sub(p.lastFlush)
	if p.lastFlush.IsZero() || since >= interval {
		p.flushLocked(now)
		return
	}
	if p.stopTimer != nil {
		return
	}
	wait := interval - max(since, 0)
	p.timerGen++
	gen := p.timerGen
	p.stopTimer = p.m.afterFunc(wait, func() { p.onTimer(gen) })
}

// onTimer publishes the pending current values when the window ends.
func (p *Progress) onTimer(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.timerGen || p.finished {
		return
	}
	p.stopTimer = nil
	p.flushLocked(p.m.cfg.Now())
}

// flushLocked persists and publishes the pending current values, if any,
// as one store update and one message each.
func (p *Progress) flushLocked(now time.Time) {
	if p.stopTimer != nil {
		p.stopTimer()
		p.stopTimer = nil
		p.timerGen++
	}
	if p.pendStatus == nil && p.pendPercent == nil && len(p.pendSwaps) == 0 {
		return
	}
	var msgs []Message
	var u Update
	if s := p.pendStatus; s != nil {
		msgs = append(msgs, Message{Type: TypeStatus, Text: *s, HTML: string(escape(*s))})
		u.Status = s
	}
	if n := p.pendPercent; n != nil {
		msgs = append(msgs, Message{Type: TypePercent, Percent: n})
		u.Percent = n
	}
	for _, s := range p.pendSwaps {
		msgs = append(msgs, Message{Type: TypeSwap, Target: s.target, HTML: string(s.html), Trusted: s.trusted})
		u.Swaps = append(u.Swaps, Swap{Target: s.target, HTML: s.html})
	}
	p.pendStatus, p.pendPercent, p.pendSwaps = nil, nil, nil
	p.lastFlush = now
	p.emitLocked(now, msgs, u)
}

// flushDroppedLocked logs how many lines the rate limit dropped, if any.
func (p *Progress) flushDroppedLocked(now time.Time) {
	if p.dropped == 0 {
		return
	}
	n := p.dropped
	p.dropped = 0
	line := fmt.Sprintf("… %d log line", n)
	if n != 1 {
		line += "s"
	}
	p.logLocked(now, line+" dropped")
}

func (p *Progress) logLocked(now time.Time, line string) {
	p.emitLocked(now, []Message{{Type: TypeLog, Text: line, HTML: string(escape(line))}}, Update{Log: &line})
}

// emitLocked numbers msgs, persists u and publishes msgs, in that order,
// so that a client that sees a message and reloads finds it persisted.
// Failures are logged: the operation goes on.
func (p *Progress) emitLocked(now time.Time, msgs []Message, u Update) {
	for i := range msgs {
		p.seq++
		msgs[i].Op, msgs[i].Seq = p.op.ID, p.seq
	}
	u.Seq, u.At, u.KeepLogs = p.seq, now, p.m.cfg.LogLines
	ctx, cancel := context.WithTimeout(p.ctx, writeTimeout)
	defer cancel()
	if err := p.m.cfg.Store.Update(ctx, p.op.ID, u); err != nil {
		p.m.log.Warn("ops: persist report", "op", p.op.ID, "err", logsafe.String(err.Error()))
	}
	for i := range msgs {
		p.publish(ctx, &msgs[i])
	}
}

func (p *Progress) publish(ctx context.Context, msg *Message) {
	b, err := msg.encode()
	if err == nil {
		err = p.m.cfg.Publisher.Publish(ctx, p.channel, b)
	}
	if err != nil {
		p.m.log.Debug("ops: publish report", "op", p.op.ID, "type", msg.Type, "err", logsafe.String(err.Error()))
	}
}

// finish publishes what is pending, decides the final state from the
// Func's error and whether it was cancelled, and persists and publishes
// it. A failure the Func did not describe with Error gets a generic
// error message.
func (p *Progress) finish(err error, cancelled bool) State {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.m.cfg.Now()
	p.flushLocked(now)
	p.flushDroppedLocked(now)
	state := StateDone
	switch {
	case err != nil && cancelled:
		state = StateCancelled
	case err != nil:
		state = StateFailed
		if !p.errReported {
			msg := genericError
			p.emitLocked(now, []Message{{Type: TypeError, Text: msg, HTML: string(escape(msg))}}, Update{Error: &msg})
		}
	}
	p.finished = true
	p.seq++
	ctx, cancel := context.WithTimeout(p.ctx, writeTimeout)
	defer cancel()
	if err := p.m.cfg.Store.Finish(ctx, p.op.ID, state, p.seq, now); err != nil {
		p.m.log.Error("ops: persist final state", "op", p.op.ID, "state", string(state), "err", logsafe.String(err.Error()))
	}
	p.publish(ctx, &Message{Op: p.op.ID, Seq: p.seq, Type: TypeState, State: state})
	return state
}
