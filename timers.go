package livegate

import (
	"sync"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/protocol"
)

// A connection's deadlines share one timer: the connect deadline (4408),
// the maximum lifetime, the token expiry (4409) and the next ping. The
// timer is set for the earliest; when it fires, every deadline that has
// passed is acted on and the timer is set for the next. One timer and four
// small deadlines cost a connection far less than four timers with their
// closures.
type timerKind int

const (
	timerConnect timerKind = iota
	timerLifetime
	timerExpiry
	timerPing
	numTimers
)

// clockBase is the origin of connTimers' deadlines, read on the monotonic
// clock.
var clockBase = time.Now()

// sinceBase returns the monotonic time elapsed since clockBase, at least 1
// so that 0 can mean "not armed".
func sinceBase() time.Duration { return max(time.Since(clockBase), 1) }

// connTimers is a connection's deadlines and their one timer.
type connTimers struct {
	mu sync.Mutex
	t  *time.Timer
	// at holds each deadline as time since clockBase; 0 is not armed.
	at      [numTimers]time.Duration
	stopped bool
}

// setTimer arms deadline k to fire after d (d <= 0: at once).
func (c *conn) setTimer(k timerKind, d time.Duration) {
	ts := &c.timers
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stopped {
		return
	}
	ts.at[k] = max(sinceBase()+d, 1)
	c.armTimerLocked()
}

// clearTimer disarms deadline k.
func (c *conn) clearTimer(k timerKind) {
	ts := &c.timers
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stopped || ts.at[k] == 0 {
		return
	}
	ts.at[k] = 0
	c.armTimerLocked()
}

// stopTimers disarms every deadline for good.
func (c *conn) stopTimers() {
	ts := &c.timers
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.stopped = true
	ts.at = [numTimers]time.Duration{}
	if ts.t != nil {
		ts.t.Stop()
	}
}

// armTimerLocked sets the timer for the earliest armed deadline, or stops
// it when none is. c.timers.mu must be held.
func (c *conn) armTimerLocked() {
	ts := &c.timers
	var next time.Duration
	for _, at := range ts.at {
		if at != 0 && (next == 0 || at < next) {
			next = at
		}
	}
	if next == 0 {
		if ts.t != nil {
			ts.t.Stop()
		}
		return
	}
	d := next - sinceBase()
	if ts.t == nil {
		ts.t = time.AfterFunc(d, c.fireTimers)
		return
	}
	ts.t.Reset(d)
}

// fireTimers runs on the timer's goroutine: it disarms the deadlines that
// passed, sets the timer for the next, then acts on them. A ping waits for
// its pong here; the other deadlines keep their timer meanwhile.
func (c *conn) fireTimers() {
	ts := &c.timers
	ts.mu.Lock()
	if ts.stopped {
		ts.mu.Unlock()
		return
	}
	now := sinceBase()
	var due [numTimers]bool
	for k, at := range ts.at {
		if at != 0 && at <= now {
			due[k] = true
			ts.at[k] = 0
		}
	}
	c.armTimerLocked()
	ts.mu.Unlock()

	if due[timerConnect] {
		c.event(audit.TypeConnectTimeout, audit.SeverityInfo, "deadline", "")
		c.close(protocol.CloseConnectTimeout)
	}
	if due[timerLifetime] {
		c.close(protocol.CloseGoingAway)
	}
	if due[timerExpiry] {
		c.event(audit.TypeTokenExpired, audit.SeverityInfo, "expired", "")
		c.close(protocol.CloseTokenExpired)
	}
	if due[timerPing] {
		c.ping()
	}
}
