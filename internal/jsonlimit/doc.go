// Package jsonlimit checks the structure of an untrusted JSON document
// before it is decoded, so that a hostile client frame costs a small,
// bounded amount of CPU and memory and is refused before anything is
// materialised.
//
// Call [Limits.Check] on every client frame before handing it to
// encoding/json:
//
//	if err := (jsonlimit.Limits{}).Check(frame); err != nil {
//		// refuse the frame; errors.Is(err, jsonlimit.ErrDepth) etc.
//	}
//
// Check makes one left-to-right pass over the bytes with an explicit depth
// counter (no recursion), performs no heap allocation when the document is
// accepted (a refusal allocates only the returned *Error), and runs in
// O(len(data)) time. It stops at the first violation, so a frame of
// 60 KiB of "[" is refused after 33 bytes.
//
// # Syntax
//
// The grammar is strict RFC 8259: exactly one value, optionally surrounded by
// space, tab, CR and LF. Trailing commas, comments, single quotes, NaN and
// Infinity, leading zeros, "+1", ".5", "1.", invalid escapes and unescaped
// control characters are rejected with [ErrSyntax]. Strings must be valid
// UTF-8, which is stricter than encoding/json (it silently replaces invalid
// bytes with U+FFFD). Escaped lone surrogates such as "\ud800" are valid per
// RFC 8259 and are accepted; encoding/json decodes them to U+FFFD.
//
// # Duplicate keys
//
// Objects at depth 1 and 2 (the protocol envelope {"id", "method",
// "params": {...}} and its params) are checked for duplicate keys, because
// parsers disagree on them: encoding/json keeps the last duplicate and
// matches struct fields case-insensitively, while other parsers keep the
// first or match exactly. Keys are compared as encoding/json compares them
// with struct field names: after decoding escapes (lone surrogates become
// U+FFFD) and under Unicode simple case folding, which includes ASCII case
// folding, so "id", "ID", "\u0069d" and "\u0049D" are all one key. Such
// objects may have at most min(MaxKeys, [DedupMaxKeys]) members, which keeps
// the pairwise comparison small; a larger one is refused with [ErrKeys].
// Detection needs no allocation: each key is remembered by its offset in the
// input and a 32-bit hash of its folded form, and two keys are compared
// character by character only when their hashes match. Even with crafted
// hash collisions a key is compared with at most DedupMaxKeys-1 others, so
// the work stays linear in the input. Objects deeper than 2 are
// application data and are not checked for duplicates.
//
// # Errors
//
// A refusal is an [*Error] that wraps one of the sentinel errors and carries
// the byte offset of the violation. Its message never contains bytes of the
// input, so it is safe to log.
package jsonlimit
