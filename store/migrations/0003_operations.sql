-- Live operations (ops.Store). Times are Unix milliseconds. An operation
-- is running while finished_at IS NULL; ops.Manager.Sweep deletes finished
-- ones after their retention, with their logs and swaps (ON DELETE
-- CASCADE; every connection enables foreign keys).
CREATE TABLE operation (
	id             TEXT    NOT NULL PRIMARY KEY,
	owner          TEXT    NOT NULL CHECK (owner <> ''),
	tenant         TEXT    NOT NULL DEFAULT '',
	kind           TEXT    NOT NULL,
	state          TEXT    NOT NULL CHECK (state IN ('running', 'done', 'failed', 'cancelled')),
	status         TEXT    NOT NULL DEFAULT '',
	percent        INTEGER NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
	error          TEXT    NOT NULL DEFAULT '',
	result_json    TEXT,                       -- NULL: no result
	result_html    TEXT    NOT NULL DEFAULT '',
	seq            INTEGER NOT NULL DEFAULT 0, -- seq of the newest persisted message
	restarted_from TEXT    NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	finished_at    INTEGER,                    -- NULL while running
	CHECK ((state = 'running') = (finished_at IS NULL))
) WITHOUT ROWID;

CREATE INDEX operation_owner ON operation (owner, tenant, created_at);
CREATE INDEX operation_finished_at ON operation (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX operation_running ON operation (created_at) WHERE finished_at IS NULL;

-- The newest log lines of each operation; n is the seq of the line's
-- message.
CREATE TABLE operation_log (
	op_id TEXT    NOT NULL REFERENCES operation (id) ON DELETE CASCADE,
	n     INTEGER NOT NULL,
	line  TEXT    NOT NULL,
	PRIMARY KEY (op_id, n)
) WITHOUT ROWID;

-- The HTML last swapped into each element of each operation.
CREATE TABLE operation_swap (
	op_id  TEXT NOT NULL REFERENCES operation (id) ON DELETE CASCADE,
	target TEXT NOT NULL,
	html   TEXT NOT NULL,
	PRIMARY KEY (op_id, target)
) WITHOUT ROWID;
