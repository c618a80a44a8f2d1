package origin_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/livegate/livegate/internal/origin"
)

func ExamplePolicy_Allowed() {
	p, err := origin.New([]string{"https://app.example.com", "https://*.example.com"})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Allowed("https://app.example.com:443"))
	fmt.Println(p.Allowed("https://eu.app.example.com"))
	fmt.Println(p.Allowed("https://example.com.evil.io"))
	fmt.Println(p.Allowed("null"))
	// Output:
	// true
	// true
	// false
	// false
}

func ExampleFromRequest() {
	r := httptest.NewRequest("GET", "https://gw.example.com:443/ws", nil)
	r.Header.Set("Origin", "https://gw.example.com")

	self := origin.FromRequest(r, false)
	fmt.Println(self)
	fmt.Println(origin.Equal(r.Header.Get("Origin"), self))
	// Output:
	// https://gw.example.com
	// true
}

func ExampleNew_invalid() {
	_, err := origin.New([]string{"https://*"})
	fmt.Println(err)
	// Output:
	// origin: invalid allowed origin "https://*": a wildcard must be the whole first label, as in "https://*.example.com"
}
