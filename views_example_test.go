package livegate_test

import (
	"context"
	"encoding/json"
	"html/template"
	"log"
	"net/http"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/live"
)

// Serving a live view: register it, hand the registry to the gateway, and
// render it into the page with the CSRF token the join needs.
func ExampleConfig_views() {
	secret := []byte("a development secret of at least 32 bytes")
	views, err := live.NewRegistry(secret, live.Options{})
	if err != nil {
		log.Fatal(err)
	}
	_ = views.Register(live.View{
		Name:     "counter",
		Template: template.Must(template.New("c").Parse(`<p><b>{{.count}}</b> <button lg-click="inc">+1</button></p>`)),
		Mount: func(_ context.Context, s *live.Socket, _ live.Session, _ json.RawMessage) error {
			s.Assign("count", 0)
			return nil
		},
		Events: map[string]*live.Handler{
			"inc": live.Event(func(_ context.Context, s *live.Socket, _ struct{}) error {
				s.Assign("count", s.Get("count").(int)+1)
				return nil
			}, live.RateLimit(10, 20)),
		},
	})
	gw, err := livegate.New(livegate.Config{TokenHMACSecret: secret, Views: views})
	if err != nil {
		log.Fatal(err)
	}
	page := template.Must(template.New("page").Parse(`<!doctype html>
<meta name="csrf-token" content="{{.CSRF}}">
{{.View}}
<script type="module" src="/livegate.js"></script>`))

	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	mux.HandleFunc("GET /counter", func(w http.ResponseWriter, r *http.Request) {
		user := "alice" // the application's signed-in user
		csrfToken, err := gw.CSRFToken(w, r)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		var view bytesWriter
		if err := views.Render(r.Context(), &view, "counter", user, live.Session{"theme": "dark"}, nil); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		_ = page.Execute(w, map[string]any{
			"CSRF": csrfToken,
			// Render's output is html/template's escaped HTML inside a
			// wrapper livegate builds: trusted, so it may be template.HTML.
			"View": template.HTML(view),
		})
	})
	_ = gw.Shutdown(context.Background())
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}
