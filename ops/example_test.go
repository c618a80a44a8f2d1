package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"

	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/ops"
)

// Example runs one operation and prints what its channel receives. In an
// application the Publisher is the gateway:
//
//	Publisher: ops.PublisherFunc(func(ctx context.Context, ch string, data any) error {
//		_, err := gw.Publish(ctx, ch, data)
//		return err
//	}),
func Example() {
	m, err := ops.New(ops.Config{
		Publisher: ops.PublisherFunc(func(_ context.Context, channel string, data any) error {
			id := strings.TrimPrefix(channel, "op:") // random: masked below
			fmt.Println(strings.Replace(string(data.(json.RawMessage)), id, "ID", 1))
			return nil
		}),
		Templates: template.Must(template.New("count").Parse(`<b>{{.}}</b> files`)),
	})
	if err != nil {
		panic(err)
	}
	m.Register("import", func(ctx context.Context, p *ops.Progress) error {
		p.Status("Reading <upload.csv>") // escaped
		if err := p.Swap("count", "count", 3); err != nil {
			return err
		}
		return p.Result(map[string]int{"rows": 3})
	})
	alice := auth.Identity{User: "alice"}
	op, err := m.Start(context.Background(), alice, "import")
	if err != nil {
		panic(err)
	}
	<-op.Done()
	snap, err := m.Get(context.Background(), alice, op.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(snap.State, snap.Status, snap.ResultHTML, snap.Swaps["count"])
	m.Shutdown(context.Background())
	// Output:
	// {"op":"ID","seq":1,"type":"state","state":"running"}
	// {"op":"ID","seq":2,"type":"status","text":"Reading <upload.csv>","html":"Reading &lt;upload.csv&gt;"}
	// {"op":"ID","seq":3,"type":"swap","target":"count","html":"<b>3</b> files"}
	// {"op":"ID","seq":4,"type":"result","html":"{&#34;rows&#34;:3}","result":{"rows":3}}
	// {"op":"ID","seq":5,"type":"state","state":"done"}
	// done Reading <upload.csv> {&#34;rows&#34;:3} <b>3</b> files
}
