package clientip_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/livegate/livegate/internal/clientip"
)

func ExampleResolver_ClientIP() {
	res, err := clientip.New([]string{"10.0.0.0/8"})
	if err != nil {
		panic(err)
	}

	// Straight from the internet: the header is the client's own claim.
	direct := httptest.NewRequest("GET", "/ws", nil)
	direct.RemoteAddr = "203.0.113.9:5555"
	direct.Header.Set("X-Forwarded-For", "1.1.1.1")
	fmt.Println(res.ClientIP(direct))

	// Through our load balancer, which appended the address it saw.
	proxied := httptest.NewRequest("GET", "/ws", nil)
	proxied.RemoteAddr = "10.0.0.1:40000"
	proxied.Header.Set("X-Forwarded-For", "1.1.1.1, 198.51.100.7")
	fmt.Println(res.ClientIP(proxied))
	// Output:
	// 203.0.113.9
	// 198.51.100.7
}
