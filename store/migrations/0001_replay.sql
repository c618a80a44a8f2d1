-- Consumed single-use token ids (auth.ReplayStore). An entry is live while
-- now < expires_at; after that the id may be consumed again and Sweep
-- deletes the row. Times are Unix milliseconds.
CREATE TABLE replay (
	jti        TEXT    NOT NULL PRIMARY KEY,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX replay_expires_at ON replay (expires_at);
