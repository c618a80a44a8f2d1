package store

import "errors"

// ErrSchemaTooNew is returned by Open for a database whose schema was
// written by a newer livegate: it holds migrations this build does not know,
// so using it could corrupt data the newer version relies on. Upgrade
// livegate or point it at another file.
var ErrSchemaTooNew = errors.New("store: database schema is newer than this build supports")

// ErrEmptyID is returned by the Revocations methods for an empty session,
// user or token id: an empty id names nothing and must not be stored.
var ErrEmptyID = errors.New("store: empty id")
