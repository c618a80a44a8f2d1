-- Security events (audit.Store), written in batches by audit.Recorder and
-- read by `livegate audit`. at is Unix milliseconds. AUTOINCREMENT keeps
-- ids increasing even after the retention sweep has deleted every row, so
-- a reader following new events by id never misses one. String columns
-- hold text already passed through the log sanitiser.
CREATE TABLE audit_events (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	at       INTEGER NOT NULL,
	type     TEXT    NOT NULL,
	severity TEXT    NOT NULL DEFAULT '',
	user     TEXT    NOT NULL DEFAULT '',
	session  TEXT    NOT NULL DEFAULT '',
	tenant   TEXT    NOT NULL DEFAULT '',
	ip       TEXT    NOT NULL DEFAULT '',
	conn     TEXT    NOT NULL DEFAULT '',
	reason   TEXT    NOT NULL DEFAULT '',
	request  TEXT    NOT NULL DEFAULT '',
	detail   TEXT    NOT NULL DEFAULT ''
);

-- Single-column indexes: each also orders its rows by id, so a filtered
-- query for the newest events walks one index backwards without sorting.
CREATE INDEX audit_events_at   ON audit_events (at);
CREATE INDEX audit_events_type ON audit_events (type);
CREATE INDEX audit_events_user ON audit_events (user);
CREATE INDEX audit_events_ip   ON audit_events (ip);
