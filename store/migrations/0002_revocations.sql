-- Revocations (auth.Revocations). A row applies while now < until; after
-- that it is ignored and Sweep deletes it. Times are Unix milliseconds.

-- Revoked sessions ("sid" claim).
CREATE TABLE revoked_session (
	sid   TEXT    NOT NULL PRIMARY KEY,
	until INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX revoked_session_until ON revoked_session (until);

-- Revoked users ("sub" claim): tokens issued at or before revoked_at ("iat"
-- <= revoked_at; a token without "iat" counts as issued at the epoch).
CREATE TABLE revoked_user (
	sub        TEXT    NOT NULL PRIMARY KEY,
	revoked_at INTEGER NOT NULL,
	until      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX revoked_user_until ON revoked_user (until);

-- Revoked single tokens ("jti" claim).
CREATE TABLE revoked_token (
	jti   TEXT    NOT NULL PRIMARY KEY,
	until INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX revoked_token_until ON revoked_token (until);
