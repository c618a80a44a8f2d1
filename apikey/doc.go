// Package apikey issues and checks the API keys backends use to call
// livegate's HTTP API (package httpapi).
//
// A key reads
//
//	lg_<id>_<secret>
//
// where id is 8 lower-case base32 characters that identify the key (shown
// by `livegate apikey list`, safe to log) and secret is 256 bits from
// crypto/rand in base64url. The whole text is shown once, when the key is
// created; only its SHA-256 hash is stored. Verification looks the key up
// by its id and compares hashes with crypto/subtle.ConstantTimeCompare.
//
// Each key has scopes (see Scope and ParseScopes):
//
//	publish:<pattern>   publish (and broadcast) to matching channels
//	presence:<pattern>  read the presence of matching channels
//	history:<pattern>   read the history of matching channels
//	disconnect          disconnect users, sessions or tokens
//	revoke              revoke users, sessions or tokens
//	channels            list active channels
//	admin               everything
//
// A pattern is "*" or a literal namespace, a ':' and a name in which '*'
// matches one or more channel characters: "publish:room:*" allows
// "room:42" but never "admin:x".
//
// Keys may expire (CreateRequest.TTL) and be revoked (Manager.Revoke); a
// key's last use is recorded at most once a minute, so verification does
// not write to the database on every request.
//
// Start with New, giving it a Store — store.DB.APIKeys keeps keys in the
// gateway's SQLite database:
//
//	db, _ := store.Open(ctx, "livegate.db")
//	keys, _ := apikey.New(apikey.Config{Store: db.APIKeys()})
//	text, key, _ := keys.Create(ctx, apikey.CreateRequest{Name: "backend", Scopes: scopes})
//	...
//	key, err := keys.Verify(ctx, presented)
package apikey
