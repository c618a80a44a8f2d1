-- API keys (apikey.Store) for the HTTP API. A key's text is never stored,
-- only the SHA-256 of it (hash). id is the public 8-character id inside
-- the key's text, by which it is looked up. scopes is the comma-separated
-- scope list. Times are Unix milliseconds; NULL expires_at: the key never
-- expires; NULL revoked_at: not revoked; NULL last_used_at: never used.
CREATE TABLE api_keys (
	id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 8),
	name         TEXT    NOT NULL CHECK (name <> ''),
	hash         BLOB    NOT NULL CHECK (length(hash) = 32),
	scopes       TEXT    NOT NULL CHECK (scopes <> ''),
	tenant       TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,
	revoked_at   INTEGER,
	last_used_at INTEGER
) WITHOUT ROWID;
