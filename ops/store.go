package ops

import (
	"context"
	"encoding/json"
	"html/template"
	"time"
)

// State is the life-cycle state of an operation.
type State string

// States. An operation starts running and ends in exactly one of the three
// final states.
const (
	StateRunning   State = "running"
	StateDone      State = "done"      // the Func returned nil
	StateFailed    State = "failed"    // the Func returned an error or panicked
	StateCancelled State = "cancelled" // cancelled (Cancel, Restart, Shutdown) and the Func returned an error
)

// Final reports whether s is a final state.
func (s State) Final() bool {
	return s == StateDone || s == StateFailed || s == StateCancelled
}

// Snapshot is the persisted current state of an operation, everything a
// page needs to render it after a reload.
//
// Status, Logs and Error hold the operation's text as reported: a page
// template escapes them like any other string. ResultHTML and Swaps hold
// HTML that was escaped (or explicitly trusted, see Progress.TrustedHTML)
// when it was reported, typed template.HTML so that a page template inserts
// it as is. They are only as trustworthy as the Store: nobody but livegate
// may write it.
type Snapshot struct {
	ID            string
	Kind          string
	State         State
	Status        string
	Percent       int
	Logs          []string // the newest Config.LogLines lines, oldest first
	Error         string
	Result        json.RawMessage // the result as JSON; nil if none
	ResultHTML    template.HTML   // the result rendered escaped
	Swaps         map[string]template.HTML
	Seq           uint64 // the seq of the newest persisted message
	RestartedFrom string // the id of the operation this one restarted, or ""
	CreatedAt     time.Time
	UpdatedAt     time.Time
	FinishedAt    time.Time // zero while running
}

// Channel returns the operation's channel, "op:<id>".
func (s *Snapshot) Channel() string { return Channel(s.ID) }

// Record is an operation as a Store keeps it: its Snapshot and its owner.
type Record struct {
	Snapshot
	User   string // the owner's auth.Identity.User; never empty
	Tenant string // the owner's auth.Identity.Tenant
}

// Update is the change one or more reports make to a stored operation.
// Only the fields it sets change; Seq and At are always stored.
type Update struct {
	Seq     uint64    // the seq of the newest message it carries
	At      time.Time // stored as UpdatedAt
	Status  *string
	Percent *int
	// Log, when set, is appended at position Seq; the store then keeps only
	// the newest KeepLogs lines. An Update carries at most one line.
	Log      *string
	KeepLogs int
	Error    *string
	Result   *Result
	Swaps    []Swap // each replaces the HTML of its target
}

// Result is a stored result: its JSON and its escaped rendering.
type Result struct {
	JSON json.RawMessage
	HTML template.HTML
}

// Swap is the HTML last swapped into one element.
type Swap struct {
	Target string
	HTML   template.HTML
}

// Store persists operations so that a page reload, another request or a
// restarted process sees their current state. The Manager writes each
// operation from one goroutine at a time, in Seq order; reads may run
// concurrently with writes. Implementations must be safe for concurrent
// use and must return copies the caller may keep. MemoryStore and the
// SQLite store (store.DB.Operations in package store) implement it; the
// package opstest checks an implementation against this contract.
type Store interface {
	// Create stores a new running operation. The id is unique; creating
	// an existing id is an error.
	Create(ctx context.Context, r Record) error
	// Update applies u to operation id; ErrNotFound if there is none.
	Update(ctx context.Context, id string, u Update) error
	// Finish records that operation id reached the final state at time
	// at, with seq the seq of its final message; ErrNotFound if there is
	// none.
	Finish(ctx context.Context, id string, state State, seq uint64, at time.Time) error
	// Get returns operation id with its logs and swaps; ErrNotFound if
	// there is none.
	Get(ctx context.Context, id string) (Record, error)
	// ListByOwner returns up to limit operations of the owner (user and
	// tenant both match), newest first, without their Logs and Swaps.
	ListByOwner(ctx context.Context, user, tenant string, limit int) ([]Record, error)
	// DeleteFinishedBefore deletes the operations that finished before t,
	// with their logs and swaps, and returns how many it deleted. Running
	// operations are never deleted.
	DeleteFinishedBefore(ctx context.Context, t time.Time) (int, error)
	// FailRunning marks every running operation created before t as
	// failed at time at with error msg, and returns how many it marked.
	// Manager.Recover uses it for operations a previous process left
	// running when it stopped.
	FailRunning(ctx context.Context, t, at time.Time, msg string) (int, error)
}
