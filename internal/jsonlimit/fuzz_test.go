package jsonlimit_test

import (
	"encoding/json"
	"testing"

	"github.com/livegate/livegate/internal/jsonlimit"
)

// FuzzCheck compares Check with json.Valid and, on valid documents, with
// the limits measured by encoding/json's tokenizer.
func FuzzCheck(f *testing.F) {
	for _, s := range corpus() {
		f.Add([]byte(s))
	}
	f.Add([]byte(eventFrame))
	f.Add([]byte("{\"\xff\":1}"))
	f.Add([]byte(`{"a":1,"\u0041":2}`))
	f.Add([]byte(`[{"k":1,"\u212a":2}]`))
	g := newGen(7)
	for range 200 {
		f.Add(g.doc())
	}
	tight := jsonlimit.Limits{MaxDepth: 4, MaxKeys: 4, MaxArray: 4, MaxString: 8, MaxTokens: 24}
	sentinels := []error{
		jsonlimit.ErrSyntax, jsonlimit.ErrDepth, jsonlimit.ErrKeys, jsonlimit.ErrArray,
		jsonlimit.ErrString, jsonlimit.ErrTokens, jsonlimit.ErrDuplicateKey,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Accepted implies json.Valid; json.Valid rejecting implies
		// refused.
		err := jsonlimit.Limits{}.Check(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("Check(%q) = nil, but json.Valid = false", data)
		}
		if err != nil && !isAny(err, sentinels) {
			t.Fatalf("Check(%q) = %v: not a sentinel", data, err)
		}
		// On valid UTF-8, also: no syntax error where json.Valid
		// accepts, and exactly the limit violations encoding/json's
		// tokenizer measures.
		for _, lim := range []jsonlimit.Limits{defaults(), tight} {
			compare(t, lim, data)
		}
	})
}
