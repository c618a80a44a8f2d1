package jsonlimit_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/livegate/livegate/internal/jsonlimit"
)

func ExampleLimits_Check() {
	var lim jsonlimit.Limits // zero value: the defaults

	frames := []string{
		`{"id":"1","method":"publish","params":{"channel":"chat","data":{"text":"hi"}}}`,
		strings.Repeat("[", 60<<10),
		`{"id":"1","method":"subscribe","Method":"publish"}`,
		`{"id":"1","method":"publish",}`,
	}
	for _, f := range frames {
		err := lim.Check([]byte(f))
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.Is(err, jsonlimit.ErrDepth):
			fmt.Println("too deep:", err)
		default:
			fmt.Println(err)
		}
	}
	// Output:
	// ok
	// too deep: jsonlimit: nesting too deep at offset 32
	// jsonlimit: duplicate object key at offset 31
	// jsonlimit: invalid JSON: expected string for object key at offset 29
}

func ExampleLimits() {
	// A stricter profile for a control channel; zero fields keep defaults.
	lim := jsonlimit.Limits{MaxDepth: 4, MaxString: 256}
	err := lim.Check([]byte(`{"a":{"b":{"c":{"d":{}}}}}`))
	var e *jsonlimit.Error
	if errors.As(err, &e) {
		fmt.Println(errors.Is(err, jsonlimit.ErrDepth), e.Offset)
	}
	// Output:
	// true 20
}
