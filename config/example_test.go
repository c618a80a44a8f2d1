package config_test

import (
	"fmt"

	"github.com/livegate/livegate/config"
)

func ExampleParse() {
	f, err := config.Parse("livegate.yaml", []byte(`
listen: 0.0.0.0:8080
debug: true
tokens:
  hmac_secret: too-short
namespaces:
  - name: room
    subscribe: {mode: everyone}
`), []string{"LIVEGATE_TOKENS_AUDIENCE=chat"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("audience:", f.Tokens.Audience)
	for _, e := range config.Errors(f.Validate()) {
		fmt.Printf("line %d: %s\n", e.Line, e.Key)
	}
	// Output:
	// audience: chat
	// line 3: debug
	// line 5: tokens.hmac_secret
	// line 8: namespaces[0].subscribe.mode
}
