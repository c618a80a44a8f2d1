// Package identity stores and checks passwords for applications built on
// livegate: Argon2id hashing in PHC strings, a password policy, a login
// lockout with exponential back-off, and a small in-memory user store that
// ties them together. The demo server uses it for sign-in; hosts may too.
//
// # Hashing
//
// [Hash] derives an Argon2id key with a fresh random salt and returns it as
// a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// (salt and hash in standard base64 without padding). [DefaultParams]
// follow the OWASP Password Storage Cheat Sheet's first Argon2id choice:
// 19 MiB of memory, 2 passes, 1 lane, a 16-byte salt and a 32-byte key.
//
// [Verify] parses the PHC string strictly before doing any work: only
// argon2id version 19 with exactly the m, t and p parameters is accepted,
// and every parameter is bounded (memory at most 256 MiB, at most 10 passes
// and 16 lanes, salts of 8 to 64 bytes, keys of 16 to 64 bytes), so a
// tampered or hostile hash cannot make a login allocate gigabytes or spin
// for minutes. The derived key is compared in constant time. needsRehash
// tells the caller to store a new [Hash] after a successful login because
// the stored parameters differ from [DefaultParams].
//
// # Policy
//
// [Policy.Check] follows NIST SP 800-63B: a minimum length (12 by default)
// and a maximum (128 characters; unbounded inputs are a denial-of-service
// vector), no composition rules, and a block list. A password is refused
// when it is one character or a short pattern repeated, when it equals or
// contains the user name or a configured context word, and when it is a
// common password (compared case-insensitively, also with leading and
// trailing digits and symbols removed). The common list is embedded
// (common_passwords.txt, 31,666 entries): the 30,000 most frequent
// passwords of zxcvbn's list, drawn from a corpus of ten million leaked
// passwords, merged with John the Ripper's password.lst; the file's header
// gives sources and licences.
//
// # Lockout
//
// A [Lockout] counts consecutive failures per key (a user name, a client
// address) and, after [LockoutConfig.FreeFailures] of them, locks the key
// for a delay that doubles with each further failure up to a maximum. Time
// is a parameter of every method, so tests drive a fake clock. Callers that
// verify concurrently admit attempts with [Lockout.Begin] and end them with
// [Lockout.Done], so parallel guesses get no more tries than sequential ones.
// Idle records are forgotten; call [Lockout.Sweep] periodically to free
// their memory. The number of records is bounded.
//
// # Users
//
// [Users] is an in-memory user store safe for concurrent use.
// [Users.Authenticate] answers [ErrInvalid] alike for unknown users and
// wrong passwords and runs a dummy Argon2id verification for unknown users
// so that timing does not reveal which names exist; it refuses with a
// [LockedError] while the user or the client address is locked, and
// re-hashes a password whose stored parameters are outdated. The address
// lockout allows 20 failures before locking, since many users may share an
// address, and is not reset by a success.
//
// All exported functions and methods are safe for concurrent use.
package identity
