package jsonlimit_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/livegate/livegate/internal/jsonlimit"
)

// eventFrame is a typical client frame of about 200 bytes.
const eventFrame = `{"id":"4f1c2a","method":"publish","params":{"channel":"chat:room-42",` +
	`"data":{"user":"alice","text":"Hello, world! See you at 10:30 \u2014 ok?","ts":1718030000123,"tags":["news","ops"],"seq":17}}}`

func benchmarkInputs() []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		{"event200B", []byte(eventFrame)},
		{"batch60KiB", batchFrame()},
		{"worst60KiB", worstAccepted()},
	}
}

// batchFrame is a valid 60 KiB frame: an envelope whose params hold an
// array of event payloads.
func batchFrame() []byte {
	b := []byte(`{"id":"7","method":"publish_batch","params":{"events":[`)
	for i := 0; len(b) < 60<<10-300; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"channel":"chat:room-42","data":{"user":"alice","text":"Hello, world! See you at 10:30 \u2014 ok?","ts":1718030000123,"tags":["a","b"]}}`...)
	}
	return append(b, "]}}"...)
}

func BenchmarkCheck(b *testing.B) {
	for _, in := range benchmarkInputs() {
		if err := (jsonlimit.Limits{}).Check(in.data); err != nil {
			b.Fatalf("%s: %v", in.name, err)
		}
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				_ = jsonlimit.Limits{}.Check(in.data)
			}
		})
	}
}

// BenchmarkValid is the baseline: encoding/json's own syntax check.
func BenchmarkValid(b *testing.B) {
	for _, in := range benchmarkInputs() {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				_ = json.Valid(in.data)
			}
		})
	}
}

// BenchmarkRefuse measures how fast hostile 60 KiB frames are refused.
func BenchmarkRefuse(b *testing.B) {
	const size = 60 << 10
	fill := func(head, unit string) []byte {
		return []byte(head + strings.Repeat(unit, (size-len(head))/len(unit)))
	}
	inputs := []struct {
		name string
		data []byte
	}{
		{"brackets", fill("", "[")},
		{"keysDepth1", []byte(object(5000, "1"))},
		{"keysDepth3", []byte(`[[` + object(5000, "1") + `]]`)},
		{"array", fill("[", "0,")},
		{"string", fill(`"`, "x")},
		{"tokens", []byte(tokens(30000))},
	}
	for _, in := range inputs {
		if (jsonlimit.Limits{MaxString: 4096}).Check(in.data) == nil {
			b.Fatalf("%s: accepted", in.name)
		}
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				_ = jsonlimit.Limits{MaxString: 4096}.Check(in.data)
			}
		})
	}
}
