// Package store is livegate's embedded SQLite store for a single node: a
// pure Go database (modernc.org/sqlite, no cgo) in one file that survives
// restarts, where the in-memory stores would forget.
//
// Start with Open, once per process, and share the *DB:
//
//	db, err := store.Open(ctx, "/var/lib/livegate/livegate.db")
//	...
//	defer db.Close()
//	v, err := auth.NewVerifier(auth.VerifierConfig{..., Revocations: db.Revocations()})
//	...
//	id, err := v.VerifyOnce(ctx, db.ReplayStore(), token, auth.KindConnect)
//
// and call DB.Sweep periodically (every minute or so) to delete expired rows.
// Expired rows are ignored by every lookup whether or not they have been
// swept.
//
// # Concurrency
//
// A DB and everything it returns are safe for concurrent use. Several
// processes may open the same file (for instance a server and the CLI): every
// write is a single statement or transaction serialised by SQLite's file
// locks, so ReplayStore.Consume lets exactly one caller consume a token id
// whichever process it runs in, and a revocation written by one process is
// seen by the next lookup in any other. Connections wait up to five seconds
// for a lock held elsewhere before failing.
//
// # Schema
//
// Times are INTEGER Unix milliseconds. Expiries round up and the clock
// rounds down, so an entry is never forgotten early. Tables:
//
//	schema_migrations (version INTEGER PRIMARY KEY, applied_at)
//	replay            (jti PRIMARY KEY, expires_at)           -- consumed token ids
//	revoked_session   (sid PRIMARY KEY, until)
//	revoked_user      (sub PRIMARY KEY, revoked_at, until)    -- tokens with iat <= revoked_at
//	revoked_token     (jti PRIMARY KEY, until)
//	operation         (id PRIMARY KEY, owner, tenant, kind, state, status, percent,
//	                   error, result_json, result_html, seq, restarted_from,
//	                   created_at, updated_at, finished_at)   -- DB.Operations
//	operation_log     (op_id, n, line)      -- newest log lines; cascade-deleted
//	operation_swap    (op_id, target, html) -- latest swap per element; cascade-deleted
//	audit_events      (id AUTOINCREMENT, at, type, severity, user, session,
//	                   tenant, ip, conn, reason, request, detail)  -- DB.Audit
//	api_keys          (id PRIMARY KEY, name, hash, scopes, tenant, created_at,
//	                   expires_at, revoked_at, last_used_at)  -- DB.APIKeys; SHA-256
//	                   of each key, never its text
//
// Finished operations are deleted by ops.Manager.Sweep after its retention
// (Operations.DeleteFinishedBefore), not by Sweep.
//
// Audit events do not expire on their own: audit.Recorder's retention sweep
// deletes them (Audit.DeleteBefore), not Sweep.
//
// # Migrations
//
// The schema is built by the SQL files in migrations/, embedded in the
// binary. Each is named NNNN_description.sql (four-digit version, lower-case
// description) and versions run 1, 2, 3… without gaps. Open applies, in
// version order, each migration the database has not recorded in
// schema_migrations, in its own transaction together with its
// schema_migrations row, so a failed migration leaves nothing behind and a
// reopened database applies only the new ones. Open refuses a database that
// records a version this build does not know (ErrSchemaTooNew): it was
// written by a newer livegate.
//
// To add tables (audit events, API keys, operations…):
//
//  1. Add migrations/NNNN_what.sql with the next version number. Never edit
//     or renumber a migration that has shipped: databases in the field have
//     already applied it; change the schema with a new migration instead.
//  2. Add the queries in a new file of this package, preparing hot
//     statements in DB.prepare, and return the new type from a DB method.
//  3. If the table holds expiring rows, add a batched DELETE to Sweep.
//
// A file database is opened in WAL mode with synchronous=NORMAL and foreign
// keys on. Its parent directories are created with mode 0700 and the file
// with mode 0600. The path ":memory:" (MemoryPath) opens a private in-memory
// database for tests.
package store
