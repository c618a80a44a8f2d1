package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store kept in memory, for tests and development: it
// forgets everything when the process exits. It is safe for concurrent
// use.
type MemoryStore struct {
	mu  sync.Mutex
	ops map[string]*Record
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{ops: make(map[string]*Record)}
}

// Create implements Store. Logs and Swaps of r are ignored: a new
// operation has none.
func (s *MemoryStore) Create(ctx context.Context, r Record) error {
	if err := checkCreate(ctx, r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.ops[r.ID]; dup {
		return fmt.Errorf("ops: memory store: operation %s exists", r.ID)
	}
	c := clone(r, false) // a new operation has no logs or swaps
	s.ops[r.ID] = &c
	return nil
}

// checkCreate validates a new record, for every Store.
func checkCreate(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.ID == "" || r.User == "" || r.Kind == "" {
		return errors.New("ops: create: record needs an ID, a User and a Kind")
	}
	if r.State != StateRunning {
		return fmt.Errorf("ops: create: state %q, want running", r.State)
	}
	return nil
}

// Update implements Store.
func (s *MemoryStore) Update(ctx context.Context, id string, u Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ops[id]
	if r == nil {
		return ErrNotFound
	}
	r.Seq, r.UpdatedAt = u.Seq, u.At
	if u.Status != nil {
		r.Status = *u.Status
	}
	if u.Percent != nil {
		r.Percent = *u.Percent
	}
	if u.Log != nil {
		keep := u.KeepLogs
		if keep <= 0 {
			keep = DefaultLogLines
		}
		r.Logs = append(r.Logs, *u.Log)
		if len(r.Logs) > keep {
			r.Logs = slices.Clone(r.Logs[len(r.Logs)-keep:])
		}
	}
	if u.Error != nil {
		r.Error = *u.Error
	}
	if u.Result != nil {
		r.Result, r.ResultHTML = slices.Clone(u.Result.JSON), u.Result.HTML
	}
	for _, sw := range u.Swaps {
		if r.Swaps == nil {
			r.Swaps = make(map[string]template.HTML)
		}
		r.Swaps[sw.Target] = sw.HTML
	}
	return nil
}

// Finish implements Store.
func (s *MemoryStore) Finish(ctx context.Context, id string, state State, seq uint64, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !state.Final() {
		return fmt.Errorf("ops: finish: state %q is not final", state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ops[id]
	if r == nil {
		return ErrNotFound
	}
	r.State, r.Seq, r.UpdatedAt, r.FinishedAt = state, seq, at, at
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, id string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ops[id]
	if r == nil {
		return Record{}, ErrNotFound
	}
	return clone(*r, true), nil
}

// ListByOwner implements Store.
func (s *MemoryStore) ListByOwner(ctx context.Context, user, tenant string, limit int) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var out []Record
	for _, r := range s.ops {
		if r.User == user && r.Tenant == tenant {
			out = append(out, clone(*r, false))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteFinishedBefore implements Store.
func (s *MemoryStore) DeleteFinishedBefore(ctx context.Context, t time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.ops {
		if r.State.Final() && r.FinishedAt.Before(t) {
			delete(s.ops, id)
			n++
		}
	}
	return n, nil
}

// FailRunning implements Store.
func (s *MemoryStore) FailRunning(ctx context.Context, t, at time.Time, msg string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.ops {
		if r.State == StateRunning && r.CreatedAt.Before(t) {
			r.State, r.Error, r.UpdatedAt, r.FinishedAt = StateFailed, msg, at, at
			n++
		}
	}
	return n, nil
}

// clone returns a deep copy of r, with its logs and swaps if full, else
// without.
func clone(r Record, full bool) Record {
	r.Result = slices.Clone(r.Result)
	if full {
		r.Logs = slices.Clone(r.Logs)
		r.Swaps = maps.Clone(r.Swaps)
	} else {
		r.Logs, r.Swaps = nil, nil
	}
	return r
}
