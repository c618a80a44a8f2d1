// Package brokertest checks a broker.Broker implementation against the
// contract documented on package broker: offsets, delivery order,
// subscriptions, history and recovery, streams started by History, and
// argument checking.
//
// Run covers what every broker must do on a single node and does not
// depend on time passing: the cases about history expiry, which a broker
// may count on a clock it does not control, and about several nodes,
// belong to the implementation's own tests.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/internal/poll"
)

// channelCounter is implemented by brokers that can tell how many
// channels they hold; Run then also checks that failed calls and repeated
// History calls do not make channels accumulate.
type channelCounter interface {
	ChannelCount() int
}

// Run runs the conformance tests, each as a parallel subtest, against
// brokers that newBroker returns: a fresh one per call, with no handler
// set yet, closed by newBroker's own cleanup. Brokers of one Run must not
// share channels with each other (each call is a separate deployment, or
// uses its own key prefix).
//
// Delivery may be asynchronous. Where a test checks that a publication
// was not delivered, it publishes a marker afterwards on another
// subscribed channel and waits for it, so it relies on a node receiving
// the publications made by one goroutine in the order they were made.
//
// A broker with a ChannelCount() int method is also checked not to keep
// channels for failed calls or repeated History calls.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, newBroker func(t *testing.T) broker.Broker)
	}{
		{"PublishOffsets", testPublishOffsets},
		{"ConcurrentPublishersDeliverInOrder", testConcurrentPublishers},
		{"History", testHistory},
		{"HistorySizeChanges", testHistorySizeChanges},
		{"RecoveryReturnsExactlyMissed", testRecovery},
		{"UnknownChannelHistory", testUnknownChannelHistory},
		{"Subscriptions", testSubscriptions},
		{"InvalidArguments", testInvalidArguments},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newBroker)
		})
	}
}

// recorder is a Handler that remembers what it received.
type recorder struct {
	mu   sync.Mutex
	pubs []broker.Publication
}

func (r *recorder) HandlePublication(p broker.Publication) {
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
}

func (r *recorder) received(channel string) []broker.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []broker.Publication
	for _, p := range r.pubs {
		if p.Channel == channel {
			out = append(out, p)
		}
	}
	return out
}

func (r *recorder) offsets(channel string) []uint64 {
	return Offsets(r.received(channel))
}

// waitCount waits until channel has at least n deliveries.
func (r *recorder) waitCount(t *testing.T, channel string, n int) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d deliveries on %s", n, channel), func() bool { return len(r.received(channel)) >= n })
}

// newRecorded returns a broker with a recorder as its handler.
func newRecorded(t *testing.T, newBroker func(t *testing.T) broker.Broker) (broker.Broker, *recorder) {
	t.Helper()
	b := newBroker(t)
	rec := &recorder{}
	b.SetHandler(rec)
	return b, rec
}

// MustPublish publishes data to channel, failing t on an error, and
// returns the publication's position.
func MustPublish(t testing.TB, b broker.Broker, channel, data string, opts broker.PublishOptions) broker.Position {
	t.Helper()
	pos, err := b.Publish(context.Background(), channel, []byte(data), opts)
	if err != nil {
		t.Fatalf("Publish(%q): %v", channel, err)
	}
	return pos
}

// MustHistory asks channel's history, failing t on an error.
func MustHistory(t testing.TB, b broker.Broker, channel string, req broker.HistoryRequest) broker.HistoryResult {
	t.Helper()
	res, err := b.History(context.Background(), channel, req)
	if err != nil {
		t.Fatalf("History(%q): %v", channel, err)
	}
	return res
}

func mustSubscribe(t *testing.T, b broker.Broker, channel string) {
	t.Helper()
	if err := b.Subscribe(context.Background(), channel); err != nil {
		t.Fatalf("Subscribe(%q): %v", channel, err)
	}
}

// Offsets returns the offsets of pubs, in order; an empty, non-nil slice
// for none.
func Offsets(pubs []broker.Publication) []uint64 {
	out := []uint64{}
	for _, p := range pubs {
		out = append(out, p.Offset)
	}
	return out
}

func checkChannelCount(t *testing.T, b broker.Broker, want int, when string) {
	t.Helper()
	if c, ok := b.(channelCounter); ok {
		if n := c.ChannelCount(); n != want {
			t.Fatalf("ChannelCount %s = %d, want %d", when, n, want)
		}
	}
}

func testPublishOffsets(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b := newBroker(t)
	opts := broker.PublishOptions{HistorySize: 3}
	first := MustPublish(t, b, "a:1", `1`, opts)
	if first.Offset != 1 || first.Epoch == "" {
		t.Fatalf("first position = %+v, want offset 1 and an epoch", first)
	}
	for i := uint64(2); i <= 10; i++ {
		pos := MustPublish(t, b, "a:1", fmt.Sprint(i), opts)
		if want := (broker.Position{Offset: i, Epoch: first.Epoch}); pos != want {
			t.Fatalf("publish %d: position = %+v, want %+v", i, pos, want)
		}
	}
	other := MustPublish(t, b, "a:2", `1`, broker.PublishOptions{})
	if other.Offset != 1 || other.Epoch == first.Epoch {
		t.Fatalf("other channel position = %+v, want offset 1 and its own epoch", other)
	}
	res := MustHistory(t, b, "a:1", broker.HistoryRequest{Since: &broker.Position{Offset: 8, Epoch: first.Epoch}})
	if len(res.Publications) != 2 {
		t.Fatalf("got %d publications, want 2", len(res.Publications))
	}
	p := res.Publications[1]
	if p.Channel != "a:1" || p.Offset != 10 || p.Epoch != first.Epoch || string(p.Data) != "10" || p.Time.IsZero() {
		t.Fatalf("publication = %+v", p)
	}
	if prev := res.Publications[0]; p.Time.Before(prev.Time) {
		t.Fatalf("publication times go backwards: %v then %v", prev.Time, p.Time)
	}
}

func testConcurrentPublishers(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	const (
		publishers = 8
		each       = 500
	)
	b, rec := newRecorded(t, newBroker)
	ctx := context.Background()
	mustSubscribe(t, b, "room:1")
	var wg sync.WaitGroup
	positions := make([][]uint64, publishers)
	for g := range publishers {
		wg.Go(func() {
			for i := range each {
				pos, err := b.Publish(ctx, "room:1", []byte(fmt.Sprint(g, i)), broker.PublishOptions{HistorySize: 16})
				if err != nil {
					t.Error(err)
					return
				}
				positions[g] = append(positions[g], pos.Offset)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	rec.waitCount(t, "room:1", publishers*each)
	got := rec.offsets("room:1")
	if len(got) != publishers*each {
		t.Fatalf("delivered %d publications, want %d", len(got), publishers*each)
	}
	for i, off := range got {
		if off != uint64(i+1) {
			t.Fatalf("delivery %d has offset %d, want %d", i, off, i+1)
		}
	}
	var returned []uint64
	for _, ps := range positions {
		if !slices.IsSorted(ps) {
			t.Errorf("one publisher saw offsets go backwards: %v", ps)
		}
		returned = append(returned, ps...)
	}
	slices.Sort(returned)
	if !slices.Equal(returned, got) {
		t.Error("offsets returned by Publish differ from offsets delivered")
	}
	p := rec.received("room:1")[len(got)-1]
	if p.Epoch == "" || p.Time.IsZero() || len(p.Data) == 0 {
		t.Errorf("delivered publication lacks fields: %+v", p)
	}
}

// currentEpoch in a test case stands for the channel's actual epoch.
const currentEpoch = "\x00current"

func testHistory(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	since := func(off uint64) *broker.Position { return &broker.Position{Offset: off, Epoch: currentEpoch} }
	tests := []struct {
		name     string
		size     int
		publish  int
		since    *broker.Position
		limit    int
		want     []uint64
		complete bool
	}{
		{name: "no since", size: 10, publish: 5, since: nil, want: []uint64{}},
		{name: "up to date", size: 10, publish: 5, since: since(5), want: []uint64{}, complete: true},
		{name: "missed two", size: 10, publish: 5, since: since(3), want: []uint64{4, 5}, complete: true},
		{name: "missed all", size: 10, publish: 5, since: since(0), want: []uint64{1, 2, 3, 4, 5}, complete: true},
		{name: "trimmed", size: 3, publish: 5, since: since(1), want: []uint64{3, 4, 5}},
		{name: "oldest retained is next", size: 3, publish: 5, since: since(2), want: []uint64{3, 4, 5}, complete: true},
		{name: "wrapped ring", size: 4, publish: 11, since: since(8), want: []uint64{9, 10, 11}, complete: true},
		{name: "limit cut", size: 10, publish: 5, since: since(0), limit: 2, want: []uint64{1, 2}},
		{name: "limit exact", size: 10, publish: 5, since: since(3), limit: 2, want: []uint64{4, 5}, complete: true},
		{name: "limit above", size: 10, publish: 5, since: since(3), limit: 50, want: []uint64{4, 5}, complete: true},
		{name: "trimmed and limited", size: 3, publish: 5, since: since(0), limit: 2, want: []uint64{3, 4}},
		{name: "from the future", size: 10, publish: 5, since: since(6), want: []uint64{}},
		{name: "other epoch", size: 10, publish: 5, since: &broker.Position{Offset: 3, Epoch: "0123456789abcdef"}, want: []uint64{}},
		{name: "empty epoch", size: 10, publish: 5, since: &broker.Position{}, want: []uint64{}},
		{name: "no history behind", size: 0, publish: 5, since: since(3), want: []uint64{}},
		{name: "no history up to date", size: 0, publish: 5, since: since(5), want: []uint64{}, complete: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t)
			const ch = "h:1"
			var pos broker.Position
			for i := range tt.publish {
				pos = MustPublish(t, b, ch, fmt.Sprint(i+1), broker.PublishOptions{HistorySize: tt.size})
			}
			req := broker.HistoryRequest{Limit: tt.limit}
			if tt.since != nil {
				s := *tt.since
				if s.Epoch == currentEpoch {
					s.Epoch = pos.Epoch
				}
				req.Since = &s
			}
			res := MustHistory(t, b, ch, req)
			if res.Position != pos {
				t.Errorf("Position = %+v, want %+v", res.Position, pos)
			}
			if got := Offsets(res.Publications); !slices.Equal(got, tt.want) {
				t.Errorf("offsets = %v, want %v", got, tt.want)
			}
			if res.Complete != tt.complete {
				t.Errorf("Complete = %v, want %v", res.Complete, tt.complete)
			}
			for _, p := range res.Publications {
				if string(p.Data) != fmt.Sprint(p.Offset) || p.Epoch != pos.Epoch || p.Channel != ch || p.Time.IsZero() {
					t.Errorf("publication %+v does not match what was published", p)
				}
			}
		})
	}
}

func testHistorySizeChanges(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b := newBroker(t)
	for range 6 {
		MustPublish(t, b, "s:1", `0`, broker.PublishOptions{HistorySize: 4})
	}
	// Shrinking keeps the newest.
	pos := MustPublish(t, b, "s:1", `0`, broker.PublishOptions{HistorySize: 2})
	res := MustHistory(t, b, "s:1", broker.HistoryRequest{Since: &broker.Position{Offset: 0, Epoch: pos.Epoch}})
	if got := Offsets(res.Publications); !slices.Equal(got, []uint64{6, 7}) || res.Complete {
		t.Fatalf("after shrink: offsets %v complete %v, want [6 7] false", got, res.Complete)
	}
	// Growing keeps what was retained and fills up.
	for range 3 {
		pos = MustPublish(t, b, "s:1", `0`, broker.PublishOptions{HistorySize: 5})
	}
	res = MustHistory(t, b, "s:1", broker.HistoryRequest{Since: &broker.Position{Offset: 5, Epoch: pos.Epoch}})
	if got := Offsets(res.Publications); !slices.Equal(got, []uint64{6, 7, 8, 9, 10}) || !res.Complete {
		t.Fatalf("after grow: offsets %v complete %v, want [6..10] true", got, res.Complete)
	}
	// Dropping to zero forgets everything but the position.
	pos = MustPublish(t, b, "s:1", `0`, broker.PublishOptions{})
	res = MustHistory(t, b, "s:1", broker.HistoryRequest{Since: &broker.Position{Offset: 10, Epoch: pos.Epoch}})
	if len(res.Publications) != 0 || res.Complete || res.Position.Offset != 11 {
		t.Fatalf("after drop: %+v", res)
	}
}

func testRecovery(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, rec := newRecorded(t, newBroker)
	mustSubscribe(t, b, "chat:1")
	opts := broker.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}
	for i := range 7 {
		MustPublish(t, b, "chat:1", fmt.Sprintf(`"m%d"`, i+1), opts)
	}
	// The client saw everything up to the last delivery, then went away.
	rec.waitCount(t, "chat:1", 7)
	got := rec.received("chat:1")
	last := got[len(got)-1]
	seen := broker.Position{Offset: last.Offset, Epoch: last.Epoch}

	for i := 7; i < 12; i++ {
		MustPublish(t, b, "chat:1", fmt.Sprintf(`"m%d"`, i+1), opts)
	}
	res := MustHistory(t, b, "chat:1", broker.HistoryRequest{Since: &seen})
	if !res.Complete {
		t.Fatal("recovery within the history window is not complete")
	}
	var data []string
	for _, p := range res.Publications {
		data = append(data, string(p.Data))
	}
	want := []string{`"m8"`, `"m9"`, `"m10"`, `"m11"`, `"m12"`}
	if !slices.Equal(data, want) {
		t.Fatalf("recovered %v, want %v", data, want)
	}
	if res.Position != (broker.Position{Offset: 12, Epoch: seen.Epoch}) {
		t.Fatalf("Position = %+v", res.Position)
	}
}

// testUnknownChannelHistory: History starts a stream, keeps it, and a
// client that took its position before the first publication recovers
// from it.
func testUnknownChannelHistory(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	tests := []struct {
		name  string
		since *broker.Position
	}{
		{name: "no since", since: nil},
		{name: "empty position", since: &broker.Position{}},
		{name: "old epoch", since: &broker.Position{Offset: 4, Epoch: "0123456789abcdef"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t)
			const ch = "u:1"
			res := MustHistory(t, b, ch, broker.HistoryRequest{Since: tt.since, Limit: 10})
			pos := res.Position
			if pos.Offset != 0 || pos.Epoch == "" || res.Publications != nil || res.Complete {
				t.Fatalf("History of unknown channel = %+v, want offset 0 in a new epoch, no publications, incomplete", res)
			}
			if tt.since != nil && pos.Epoch == tt.since.Epoch {
				t.Fatalf("new stream took the caller's epoch %q", pos.Epoch)
			}
			checkChannelCount(t, b, 1, "after History")
			// The stream History started is kept: asking again, in any way,
			// answers the same position.
			for _, since := range []*broker.Position{tt.since, nil} {
				again := MustHistory(t, b, ch, broker.HistoryRequest{Since: since})
				if again.Position != pos || again.Publications != nil || again.Complete {
					t.Fatalf("second History (since %+v) = %+v, want position %+v, no publications, incomplete", since, again, pos)
				}
			}
			checkChannelCount(t, b, 1, "after repeated History")
			// Nothing published: recovering from the start is complete and
			// empty.
			start := pos
			res = MustHistory(t, b, ch, broker.HistoryRequest{Since: &start})
			if res.Position != start || !res.Complete || len(res.Publications) != 0 {
				t.Fatalf("since %+v with nothing published = %+v, want complete, no publications", start, res)
			}
			// Publications continue the stream History started.
			opts := broker.PublishOptions{HistorySize: 10}
			if first := MustPublish(t, b, ch, `1`, opts); first != (broker.Position{Offset: 1, Epoch: pos.Epoch}) {
				t.Fatalf("first publish = %+v, want offset 1 in epoch %q", first, pos.Epoch)
			}
			last := MustPublish(t, b, ch, `2`, opts)
			if last != (broker.Position{Offset: 2, Epoch: pos.Epoch}) {
				t.Fatalf("second publish = %+v, want offset 2 in epoch %q", last, pos.Epoch)
			}
			res = MustHistory(t, b, ch, broker.HistoryRequest{Since: &start})
			if got := Offsets(res.Publications); !slices.Equal(got, []uint64{1, 2}) || !res.Complete || res.Position != last {
				t.Fatalf("since %+v after two publications: offsets %v, %+v; want [1 2], complete, position %+v", start, got, res, last)
			}
			for i, p := range res.Publications {
				if p.Epoch != pos.Epoch || string(p.Data) != fmt.Sprint(i+1) {
					t.Errorf("publication %+v does not match what was published", p)
				}
			}
		})
	}
}

func testSubscriptions(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, rec := newRecorded(t, newBroker)
	ctx := context.Background()
	opts := broker.PublishOptions{HistorySize: 10}
	// A marker channel, subscribed throughout, orders the checks that
	// something was not delivered: once a marker publication arrived, an
	// earlier publication would have too.
	mustSubscribe(t, b, "sub:marker")
	markers := 0
	flush := func() {
		t.Helper()
		markers++
		MustPublish(t, b, "sub:marker", fmt.Sprint(markers), opts)
		rec.waitCount(t, "sub:marker", markers)
	}

	MustPublish(t, b, "sub:1", `1`, opts)
	flush()
	if got := rec.offsets("sub:1"); len(got) != 0 {
		t.Fatalf("unsubscribed channel delivered %v", got)
	}
	for range 2 {
		mustSubscribe(t, b, "sub:1")
	}
	MustPublish(t, b, "sub:1", `2`, opts)
	MustPublish(t, b, "sub:2", `1`, opts)
	flush()
	if got := rec.offsets("sub:1"); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after double subscribe delivered %v, want [2] once", got)
	}
	if got := rec.offsets("sub:2"); len(got) != 0 {
		t.Fatalf("channel never subscribed delivered %v", got)
	}
	for range 2 {
		if err := b.Unsubscribe(ctx, "sub:1"); err != nil {
			t.Fatal(err)
		}
	}
	pos := MustPublish(t, b, "sub:1", `3`, opts)
	flush()
	if got := rec.offsets("sub:1"); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after unsubscribe delivered %v, want [2]", got)
	}
	// History survives unsubscribing.
	res := MustHistory(t, b, "sub:1", broker.HistoryRequest{Since: &broker.Position{Epoch: pos.Epoch}})
	if got := Offsets(res.Publications); !slices.Equal(got, []uint64{1, 2, 3}) || !res.Complete {
		t.Fatalf("history after unsubscribe: %v complete %v", got, res.Complete)
	}
	// Unsubscribing from a channel never seen is fine.
	if err := b.Unsubscribe(ctx, "sub:none"); err != nil {
		t.Fatal(err)
	}
}

func testInvalidArguments(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b := newBroker(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		is   error
	}{
		{name: "publish empty channel", call: func() error {
			_, err := b.Publish(ctx, "", nil, broker.PublishOptions{})
			return err
		}},
		{name: "publish negative size", call: func() error {
			_, err := b.Publish(ctx, "x:1", nil, broker.PublishOptions{HistorySize: -1})
			return err
		}},
		{name: "publish negative ttl", call: func() error {
			_, err := b.Publish(ctx, "x:1", nil, broker.PublishOptions{HistoryTTL: -time.Second})
			return err
		}},
		{name: "publish cancelled", is: context.Canceled, call: func() error {
			_, err := b.Publish(cancelled, "x:1", nil, broker.PublishOptions{})
			return err
		}},
		{name: "subscribe empty channel", call: func() error { return b.Subscribe(ctx, "") }},
		{name: "subscribe cancelled", is: context.Canceled, call: func() error { return b.Subscribe(cancelled, "x:1") }},
		{name: "unsubscribe empty channel", call: func() error { return b.Unsubscribe(ctx, "") }},
		{name: "history empty channel", call: func() error {
			_, err := b.History(ctx, "", broker.HistoryRequest{})
			return err
		}},
		{name: "history negative limit", call: func() error {
			_, err := b.History(ctx, "x:1", broker.HistoryRequest{Limit: -1})
			return err
		}},
		{name: "history cancelled", is: context.Canceled, call: func() error {
			_, err := b.History(cancelled, "x:1", broker.HistoryRequest{})
			return err
		}},
	}
	// The group returns only after its parallel subtests finished.
	t.Run("calls", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				err := tt.call()
				if err == nil {
					t.Fatal("no error")
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %v is not %v", err, tt.is)
				}
				// An invalid argument is the caller's fault and says so as a
				// broker error; a cancelled call may fail in the transport.
				if msg := err.Error(); tt.is == nil && !strings.HasPrefix(msg, "broker: ") {
					t.Errorf("error %q lacks the broker prefix", msg)
				}
			})
		}
	})
	// No failed call, History included, created a channel or a stream.
	checkChannelCount(t, b, 0, "after failed calls")
	res := MustHistory(t, b, "x:1", broker.HistoryRequest{})
	if res.Position.Offset != 0 || res.Position.Epoch == "" {
		t.Fatalf("History after failed publishes = %+v, want offset 0 in a new epoch", res.Position)
	}
	if pos := MustPublish(t, b, "x:1", `1`, broker.PublishOptions{}); pos != (broker.Position{Offset: 1, Epoch: res.Position.Epoch}) {
		t.Errorf("first successful publish = %+v, want offset 1 in epoch %q", pos, res.Position.Epoch)
	}
}
