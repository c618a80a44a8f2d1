package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/policy"
	"github.com/livegate/livegate/proxy"
)

// A gateway in proxy mode: the backend decides who connects, which
// subscriptions to "room" are allowed, and handles the "send" event.
func ExampleNew() {
	secret := []byte("a-shared-secret-of-at-least-32-bytes!")
	px, err := proxy.New(proxy.Config{
		Backend: "https://app.example.com/livegate",
		Secret:  secret,
		Routes: proxy.Routes{
			Connect:    true,
			Subscribe:  true,
			Disconnect: true,
			Events:     []string{"send"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	gw, err := livegate.New(livegate.Config{
		TokenHMACSecret:          []byte("the-gateway-token-secret-32-bytes!!"),
		ConnectHook:              px.ConnectHook(),
		AllowConnectWithoutToken: true, // the backend authenticates with the forwarded cookie
		OnDisconnect:             px.OnDisconnect,
		Namespaces:               []policy.NamespaceConfig{{Name: "room", Subscribe: policy.SubscribeAuthenticated}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(gw.Authorize("room", px.Authorizer()))
	fmt.Println(px.Register(gw))
	// Output:
	// <nil>
	// <nil>
}

// A Go backend authenticates the gateway's requests with a Verifier.
func ExampleVerifier() {
	secret := []byte("a-shared-secret-of-at-least-32-bytes!")
	v, err := proxy.NewVerifier(proxy.VerifierConfig{Secrets: [][]byte{secret}})
	if err != nil {
		log.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := v.Verify(r, body); err != nil {
			// errors.Is(err, proxy.ErrBadSignature / ErrStale / ErrReplayed)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"allow":true}`)
	})

	// What the gateway sends:
	body := []byte(`{"identity":{"sub":"alice"},"channel":"room:lobby"}`)
	req := httptest.NewRequest(http.MethodPost, "/subscribe", bytes.NewReader(body))
	if err := proxy.Sign(req, body, secret, time.Now()); err != nil {
		log.Fatal(err)
	}
	replay := req.Clone(req.Context())

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())

	replay.Body = io.NopCloser(bytes.NewReader(body))
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, replay)
	fmt.Println(rec.Code)
	// Output:
	// 200 {"allow":true}
	// 401
}

// Verify's errors say why a request was refused.
func ExampleVerifier_Verify() {
	secret := []byte("a-shared-secret-of-at-least-32-bytes!")
	now := time.Unix(1767225600, 0)
	v, _ := proxy.NewVerifier(proxy.VerifierConfig{Secrets: [][]byte{secret}, Now: func() time.Time { return now }})

	body := []byte(`{}`)
	old := httptest.NewRequest(http.MethodPost, "/event", nil)
	_ = proxy.Sign(old, body, secret, now.Add(-10*time.Minute))
	fmt.Println(errors.Is(v.Verify(old, body), proxy.ErrStale))

	tampered := httptest.NewRequest(http.MethodPost, "/event", nil)
	_ = proxy.Sign(tampered, body, secret, now)
	fmt.Println(errors.Is(v.Verify(tampered, []byte(`{"x":1}`)), proxy.ErrBadSignature))
	// Output:
	// true
	// true
}
