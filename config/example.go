package config

import _ "embed"

//go:embed example.yaml
var example string

// Example returns a commented example configuration holding every key,
// the optional ones commented out. It loads and validates once the files
// it names exist.
func Example() string { return example }
