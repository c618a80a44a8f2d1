package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livegate/livegate/broker"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
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

func (r *recorder) offsets(channel string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, p := range r.pubs {
		if p.Channel == channel {
			out = append(out, p.Offset)
		}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pubs)
}

func newTestBroker(t *testing.T) (*broker.MemoryBroker, *fakeClock, *recorder) {
	t.Helper()
	clock := newFakeClock()
	b := broker.NewMemory(broker.MemoryConfig{Now: clock.Now})
	rec := &recorder{}
	b.SetHandler(rec)
	t.Cleanup(func() { _ = b.Close() })
	return b, clock, rec
}

func mustPublish(t *testing.T, b *broker.MemoryBroker, channel, data string, opts broker.PublishOptions) broker.Position {
	t.Helper()
	pos, err := b.Publish(context.Background(), channel, []byte(data), opts)
	if err != nil {
		t.Fatalf("Publish(%q): %v", channel, err)
	}
	return pos
}

func mustHistory(t *testing.T, b *broker.MemoryBroker, channel string, req broker.HistoryRequest) broker.HistoryResult {
	t.Helper()
	res, err := b.History(context.Background(), channel, req)
	if err != nil {
		t.Fatalf("History(%q): %v", channel, err)
	}
	return res
}

func pubOffsets(pubs []broker.Publication) []uint64 {
	out := []uint64{}
	for _, p := range pubs {
		out = append(out, p.Offset)
	}
	return out
}

func TestMemoryPublishOffsets(t *testing.T) {
	t.Parallel()
	b, clock, _ := newTestBroker(t)
	opts := broker.PublishOptions{HistorySize: 3}
	first := mustPublish(t, b, "a:1", `1`, opts)
	if first.Offset != 1 || first.Epoch == "" {
		t.Fatalf("first position = %+v, want offset 1 and an epoch", first)
	}
	for i := uint64(2); i <= 10; i++ {
		clock.Advance(time.Second)
		pos := mustPublish(t, b, "a:1", fmt.Sprint(i), opts)
		if want := (broker.Position{Offset: i, Epoch: first.Epoch}); pos != want {
			t.Fatalf("publish %d: position = %+v, want %+v", i, pos, want)
		}
	}
	other := mustPublish(t, b, "a:2", `1`, broker.PublishOptions{})
	if other.Offset != 1 || other.Epoch == first.Epoch {
		t.Fatalf("other channel position = %+v, want offset 1 and its own epoch", other)
	}
	res := mustHistory(t, b, "a:1", broker.HistoryRequest{Since: &broker.Position{Offset: 8, Epoch: first.Epoch}})
	if len(res.Publications) != 2 {
		t.Fatalf("got %d publications, want 2", len(res.Publications))
	}
	p := res.Publications[1]
	if p.Channel != "a:1" || p.Offset != 10 || p.Epoch != first.Epoch || string(p.Data) != "10" || !p.Time.Equal(clock.Now()) {
		t.Fatalf("publication = %+v", p)
	}
}

func TestMemoryConcurrentPublishersDeliverInOrder(t *testing.T) {
	t.Parallel()
	const (
		publishers = 8
		each       = 500
	)
	b, _, rec := newTestBroker(t)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "room:1"); err != nil {
		t.Fatal(err)
	}
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
}

// currentEpoch in a test case stands for the channel's actual epoch.
const currentEpoch = "\x00current"

func TestMemoryHistory(t *testing.T) {
	t.Parallel()
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
			b, _, _ := newTestBroker(t)
			var pos broker.Position
			for i := range tt.publish {
				pos = mustPublish(t, b, "h:1", fmt.Sprint(i+1), broker.PublishOptions{HistorySize: tt.size})
			}
			req := broker.HistoryRequest{Limit: tt.limit}
			if tt.since != nil {
				s := *tt.since
				if s.Epoch == currentEpoch {
					s.Epoch = pos.Epoch
				}
				req.Since = &s
			}
			res := mustHistory(t, b, "h:1", req)
			if res.Position != pos {
				t.Errorf("Position = %+v, want %+v", res.Position, pos)
			}
			if got := pubOffsets(res.Publications); !slices.Equal(got, tt.want) {
				t.Errorf("offsets = %v, want %v", got, tt.want)
			}
			if res.Complete != tt.complete {
				t.Errorf("Complete = %v, want %v", res.Complete, tt.complete)
			}
			for _, p := range res.Publications {
				if string(p.Data) != fmt.Sprint(p.Offset) || p.Epoch != pos.Epoch || p.Channel != "h:1" {
					t.Errorf("publication %+v does not match what was published", p)
				}
			}
		})
	}
}

func TestMemoryRecoveryReturnsExactlyMissed(t *testing.T) {
	t.Parallel()
	b, _, rec := newTestBroker(t)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "chat:1"); err != nil {
		t.Fatal(err)
	}
	opts := broker.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}
	for i := range 7 {
		mustPublish(t, b, "chat:1", fmt.Sprintf(`"m%d"`, i+1), opts)
	}
	// The client saw everything up to the last delivery, then went away.
	rec.mu.Lock()
	last := rec.pubs[len(rec.pubs)-1]
	rec.mu.Unlock()
	seen := broker.Position{Offset: last.Offset, Epoch: last.Epoch}

	for i := 7; i < 12; i++ {
		mustPublish(t, b, "chat:1", fmt.Sprintf(`"m%d"`, i+1), opts)
	}
	res := mustHistory(t, b, "chat:1", broker.HistoryRequest{Since: &seen})
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

func TestMemoryHistorySizeChanges(t *testing.T) {
	t.Parallel()
	b, _, _ := newTestBroker(t)
	for range 6 {
		mustPublish(t, b, "s:1", `0`, broker.PublishOptions{HistorySize: 4})
	}
	// Shrinking keeps the newest.
	pos := mustPublish(t, b, "s:1", `0`, broker.PublishOptions{HistorySize: 2})
	res := mustHistory(t, b, "s:1", broker.HistoryRequest{Since: &broker.Position{Offset: 0, Epoch: pos.Epoch}})
	if got := pubOffsets(res.Publications); !slices.Equal(got, []uint64{6, 7}) || res.Complete {
		t.Fatalf("after shrink: offsets %v complete %v, want [6 7] false", got, res.Complete)
	}
	// Growing keeps what was retained and fills up.
	for range 3 {
		pos = mustPublish(t, b, "s:1", `0`, broker.PublishOptions{HistorySize: 5})
	}
	res = mustHistory(t, b, "s:1", broker.HistoryRequest{Since: &broker.Position{Offset: 5, Epoch: pos.Epoch}})
	if got := pubOffsets(res.Publications); !slices.Equal(got, []uint64{6, 7, 8, 9, 10}) || !res.Complete {
		t.Fatalf("after grow: offsets %v complete %v, want [6..10] true", got, res.Complete)
	}
	// Dropping to zero forgets everything but the position.
	pos = mustPublish(t, b, "s:1", `0`, broker.PublishOptions{})
	res = mustHistory(t, b, "s:1", broker.HistoryRequest{Since: &broker.Position{Offset: 10, Epoch: pos.Epoch}})
	if len(res.Publications) != 0 || res.Complete || res.Position.Offset != 11 {
		t.Fatalf("after drop: %+v", res)
	}
}

func TestMemoryExpiry(t *testing.T) {
	t.Parallel()
	b, clock, _ := newTestBroker(t)
	opts := broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Minute}
	mustPublish(t, b, "e:1", `1`, opts)
	old := mustPublish(t, b, "e:1", `2`, opts)
	oldSince := broker.Position{Offset: 1, Epoch: old.Epoch}

	clock.Advance(time.Minute - time.Nanosecond)
	res := mustHistory(t, b, "e:1", broker.HistoryRequest{Since: &oldSince})
	if res.Position != old || !res.Complete || len(res.Publications) != 1 {
		t.Fatalf("just before expiry: %+v", res)
	}

	// History after expiry starts a new stream: offset 0 in a new epoch.
	clock.Advance(time.Nanosecond)
	res = mustHistory(t, b, "e:1", broker.HistoryRequest{Since: &oldSince})
	restarted := res.Position
	if restarted.Offset != 0 || restarted.Epoch == "" || restarted.Epoch == old.Epoch || res.Complete || res.Publications != nil {
		t.Fatalf("after expiry: %+v, want offset 0 in a new epoch (old %q), no publications, incomplete", res, old.Epoch)
	}

	fresh := mustPublish(t, b, "e:1", `3`, opts)
	if want := (broker.Position{Offset: 1, Epoch: restarted.Epoch}); fresh != want {
		t.Fatalf("first publish after expiry = %+v, want %+v (continuing the stream History started)", fresh, want)
	}
	for _, since := range []broker.Position{oldSince, {Offset: 0, Epoch: old.Epoch}, {Offset: 1, Epoch: old.Epoch}, {}} {
		res = mustHistory(t, b, "e:1", broker.HistoryRequest{Since: &since})
		if res.Complete || len(res.Publications) != 0 || res.Position != fresh {
			t.Errorf("since %+v from before expiry: %+v, want incomplete and no publications", since, res)
		}
	}
}

func TestMemoryExpiryOnPublish(t *testing.T) {
	t.Parallel()
	b, clock, rec := newTestBroker(t)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "e:2"); err != nil {
		t.Fatal(err)
	}
	opts := broker.PublishOptions{HistorySize: 5, HistoryTTL: time.Second}
	old := mustPublish(t, b, "e:2", `1`, opts)
	clock.Advance(time.Second)
	fresh := mustPublish(t, b, "e:2", `2`, opts)
	if fresh.Offset != 1 || fresh.Epoch == old.Epoch {
		t.Fatalf("publish after expiry = %+v, old %+v", fresh, old)
	}
	// The subscription outlives the stream.
	if got := rec.count(); got != 2 {
		t.Fatalf("delivered %d publications, want 2", got)
	}
	res := mustHistory(t, b, "e:2", broker.HistoryRequest{Since: &broker.Position{Epoch: fresh.Epoch}})
	if got := pubOffsets(res.Publications); !slices.Equal(got, []uint64{1}) || !res.Complete {
		t.Fatalf("history of new epoch: %v complete %v", got, res.Complete)
	}
}

func TestMemorySweep(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := broker.NewMemory(broker.MemoryConfig{Now: clock.Now, DefaultHistoryTTL: 10 * time.Minute})
	defer b.Close()
	ctx := context.Background()

	short := mustPublish(t, b, "s:short", `1`, broker.PublishOptions{HistorySize: 5, HistoryTTL: time.Minute})
	withDefault := mustPublish(t, b, "s:default", `1`, broker.PublishOptions{HistorySize: 5})
	noHistory := mustPublish(t, b, "s:nohistory", `1`, broker.PublishOptions{})
	if err := b.Subscribe(ctx, "s:subscribed"); err != nil {
		t.Fatal(err)
	}
	subscribed := mustPublish(t, b, "s:subscribed", `1`, broker.PublishOptions{HistorySize: 5, HistoryTTL: time.Minute})
	if n := b.ChannelCount(); n != 4 {
		t.Fatalf("ChannelCount = %d, want 4", n)
	}

	if n := b.Sweep(); n != 0 {
		t.Fatalf("Sweep before any TTL = %d, want 0", n)
	}
	clock.Advance(time.Minute)
	if n := b.Sweep(); n != 2 {
		t.Fatalf("Sweep after 1m = %d, want 2", n)
	}
	if n := b.Sweep(); n != 0 {
		t.Fatalf("second Sweep = %d, want 0", n)
	}
	clock.Advance(9 * time.Minute)
	if n := b.Sweep(); n != 2 {
		t.Fatalf("Sweep after default TTL = %d, want 2 (default history and no history)", n)
	}
	// Only the subscribed channel is still held, without a stream.
	if n := b.ChannelCount(); n != 1 {
		t.Fatalf("ChannelCount after sweeping every stream = %d, want 1", n)
	}
	// History starts new streams, in new epochs.
	restarted := map[string]broker.Position{}
	for ch, before := range map[string]broker.Position{"s:short": short, "s:default": withDefault, "s:nohistory": noHistory, "s:subscribed": subscribed} {
		res := mustHistory(t, b, ch, broker.HistoryRequest{})
		if res.Position.Offset != 0 || res.Position.Epoch == "" || res.Position.Epoch == before.Epoch {
			t.Errorf("%s: position after sweep = %+v, want offset 0 in a new epoch (old %q)", ch, res.Position, before.Epoch)
		}
		restarted[ch] = res.Position
	}
	if n := b.Sweep(); n != 0 {
		t.Fatalf("Sweep right after History restarted streams = %d, want 0", n)
	}
	if pos := mustPublish(t, b, "s:nohistory", `2`, broker.PublishOptions{}); pos != (broker.Position{Offset: 1, Epoch: restarted["s:nohistory"].Epoch}) {
		t.Errorf("no-history stream after sweep = %+v, want offset 1 in epoch %q", pos, restarted["s:nohistory"].Epoch)
	}

	rec := &recorder{}
	b.SetHandler(rec)
	if pos := mustPublish(t, b, "s:subscribed", `2`, broker.PublishOptions{}); pos != (broker.Position{Offset: 1, Epoch: restarted["s:subscribed"].Epoch}) {
		t.Errorf("subscribed stream after sweep = %+v, want offset 1 in epoch %q", pos, restarted["s:subscribed"].Epoch)
	}
	if got := rec.offsets("s:subscribed"); !slices.Equal(got, []uint64{1}) {
		t.Errorf("subscription lost by sweep: delivered %v", got)
	}
}

func TestMemoryDefaultTTL(t *testing.T) {
	t.Parallel()
	b, clock, _ := newTestBroker(t)
	pos := mustPublish(t, b, "d:1", `1`, broker.PublishOptions{HistorySize: 1})
	clock.Advance(5*time.Minute - time.Second)
	if res := mustHistory(t, b, "d:1", broker.HistoryRequest{}); res.Position != pos {
		t.Fatalf("stream gone before the 5 minute default: %+v", res)
	}
	clock.Advance(time.Second)
	if n := b.Sweep(); n != 1 {
		t.Fatalf("Sweep at 5 minutes = %d, want 1", n)
	}
}

func TestMemorySubscriptions(t *testing.T) {
	t.Parallel()
	b, _, rec := newTestBroker(t)
	ctx := context.Background()
	opts := broker.PublishOptions{HistorySize: 10}

	mustPublish(t, b, "sub:1", `1`, opts)
	if got := rec.count(); got != 0 {
		t.Fatalf("unsubscribed channel delivered %d publications", got)
	}
	for range 2 {
		if err := b.Subscribe(ctx, "sub:1"); err != nil {
			t.Fatal(err)
		}
	}
	mustPublish(t, b, "sub:1", `2`, opts)
	mustPublish(t, b, "sub:2", `1`, opts)
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
	pos := mustPublish(t, b, "sub:1", `3`, opts)
	if got := rec.offsets("sub:1"); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after unsubscribe delivered %v, want [2]", got)
	}
	// History survives unsubscribing.
	res := mustHistory(t, b, "sub:1", broker.HistoryRequest{Since: &broker.Position{Epoch: pos.Epoch}})
	if got := pubOffsets(res.Publications); !slices.Equal(got, []uint64{1, 2, 3}) || !res.Complete {
		t.Fatalf("history after unsubscribe: %v complete %v", got, res.Complete)
	}
	// Unsubscribing from a channel never seen is fine.
	if err := b.Unsubscribe(ctx, "sub:none"); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryNoHandler(t *testing.T) {
	t.Parallel()
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	ctx := context.Background()
	if err := b.Subscribe(ctx, "n:1"); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, b, "n:1", `1`, broker.PublishOptions{})
	rec := &recorder{}
	b.SetHandler(rec)
	mustPublish(t, b, "n:1", `2`, broker.PublishOptions{})
	b.SetHandler(nil)
	mustPublish(t, b, "n:1", `3`, broker.PublishOptions{})
	if got := rec.offsets("n:1"); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("delivered %v, want [2]", got)
	}
}

func TestMemoryUnknownChannelHistory(t *testing.T) {
	t.Parallel()
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
			b, _, _ := newTestBroker(t)
			res := mustHistory(t, b, "u:1", broker.HistoryRequest{Since: tt.since, Limit: 10})
			pos := res.Position
			if pos.Offset != 0 || pos.Epoch == "" || res.Publications != nil || res.Complete {
				t.Fatalf("History of unknown channel = %+v, want offset 0 in a new epoch, no publications, incomplete", res)
			}
			if tt.since != nil && pos.Epoch == tt.since.Epoch {
				t.Fatalf("new stream took the caller's epoch %q", pos.Epoch)
			}
			if n := b.ChannelCount(); n != 1 {
				t.Fatalf("ChannelCount = %d, want 1", n)
			}
			// The stream History started is kept: asking again, in any way,
			// answers the same position.
			for _, since := range []*broker.Position{tt.since, nil} {
				again := mustHistory(t, b, "u:1", broker.HistoryRequest{Since: since})
				if again.Position != pos || again.Publications != nil || again.Complete {
					t.Fatalf("second History (since %+v) = %+v, want position %+v, no publications, incomplete", since, again, pos)
				}
			}
			if n := b.ChannelCount(); n != 1 {
				t.Fatalf("ChannelCount after repeated History = %d, want 1", n)
			}
		})
	}
}

// TestMemorySubscribeBeforeFirstPublish follows a client that takes its
// position before a channel's first publication and recovers from it.
func TestMemorySubscribeBeforeFirstPublish(t *testing.T) {
	t.Parallel()
	b, clock, _ := newTestBroker(t) // default history TTL: 5 minutes
	const ch = "r:1"

	first := mustHistory(t, b, ch, broker.HistoryRequest{})
	e := first.Position.Epoch
	if first.Position.Offset != 0 || e == "" || first.Publications != nil || first.Complete {
		t.Fatalf("History of a fresh channel = %+v, want offset 0 in a new epoch, incomplete", first)
	}
	start := broker.Position{Offset: 0, Epoch: e}

	// Nothing published: recovering from the start is complete and empty.
	res := mustHistory(t, b, ch, broker.HistoryRequest{Since: &start})
	if res.Position != start || !res.Complete || len(res.Publications) != 0 {
		t.Fatalf("since %+v with nothing published = %+v, want complete, no publications", start, res)
	}

	// Publications continue the stream History started and extend its
	// life past the TTL counted from History.
	clock.Advance(4 * time.Minute)
	opts := broker.PublishOptions{HistorySize: 10}
	if pos := mustPublish(t, b, ch, `1`, opts); pos != (broker.Position{Offset: 1, Epoch: e}) {
		t.Fatalf("first publish = %+v, want offset 1 in epoch %q", pos, e)
	}
	last := mustPublish(t, b, ch, `2`, opts)
	if last != (broker.Position{Offset: 2, Epoch: e}) {
		t.Fatalf("second publish = %+v, want offset 2 in epoch %q", last, e)
	}
	clock.Advance(4 * time.Minute)
	res = mustHistory(t, b, ch, broker.HistoryRequest{Since: &start})
	if got := pubOffsets(res.Publications); !slices.Equal(got, []uint64{1, 2}) || !res.Complete || res.Position != last {
		t.Fatalf("since %+v after two publications: offsets %v, %+v; want [1 2], complete, position %+v", start, got, res, last)
	}
	for i, p := range res.Publications {
		if p.Epoch != e || string(p.Data) != fmt.Sprint(i+1) {
			t.Errorf("publication %+v does not match what was published", p)
		}
	}

	// The stream expires 5 minutes after its last publication; the client's
	// position then belongs to a lost epoch.
	clock.Advance(time.Minute)
	res = mustHistory(t, b, ch, broker.HistoryRequest{Since: &last})
	if res.Complete || res.Publications != nil || res.Position.Offset != 0 || res.Position.Epoch == "" || res.Position.Epoch == e {
		t.Fatalf("since %+v after expiry = %+v, want offset 0 in a new epoch, no publications, incomplete", last, res)
	}
}

// TestMemoryHistoryStreamExpires checks that a stream History started and
// nobody published to expires after the default TTL, counted from History
// and not extended by later History calls.
func TestMemoryHistoryStreamExpires(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := broker.NewMemory(broker.MemoryConfig{Now: clock.Now, DefaultHistoryTTL: 10 * time.Minute})
	defer b.Close()

	start := mustHistory(t, b, "q:1", broker.HistoryRequest{}).Position
	clock.Advance(10*time.Minute - time.Nanosecond)
	res := mustHistory(t, b, "q:1", broker.HistoryRequest{Since: &start})
	if res.Position != start || !res.Complete || len(res.Publications) != 0 {
		t.Fatalf("just before expiry: %+v, want position %+v, complete", res, start)
	}
	clock.Advance(time.Nanosecond)
	res = mustHistory(t, b, "q:1", broker.HistoryRequest{Since: &start})
	if res.Complete || res.Publications != nil || res.Position.Offset != 0 || res.Position.Epoch == "" || res.Position.Epoch == start.Epoch {
		t.Fatalf("after expiry: %+v, want offset 0 in a new epoch (old %q), incomplete", res, start.Epoch)
	}
}

// TestMemorySweepHistoryStreams checks that streams History started on
// channels nobody subscribes to or publishes to do not accumulate.
func TestMemorySweepHistoryStreams(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := broker.NewMemory(broker.MemoryConfig{Now: clock.Now, DefaultHistoryTTL: 10 * time.Minute})
	defer b.Close()
	ctx := context.Background()

	if err := b.Subscribe(ctx, "w:sub"); err != nil {
		t.Fatal(err)
	}
	channels := []string{"w:0", "w:1", "w:2", "w:3", "w:4", "w:sub"}
	epochs := map[string]string{}
	for _, ch := range channels {
		pos := mustHistory(t, b, ch, broker.HistoryRequest{}).Position
		if pos.Offset != 0 || pos.Epoch == "" {
			t.Fatalf("%s: History = %+v, want offset 0 and an epoch", ch, pos)
		}
		epochs[ch] = pos.Epoch
	}
	if n := b.ChannelCount(); n != len(channels) {
		t.Fatalf("ChannelCount = %d, want %d", n, len(channels))
	}

	// History does not extend a stream's life.
	clock.Advance(5 * time.Minute)
	if pos := mustHistory(t, b, "w:0", broker.HistoryRequest{}).Position; pos.Epoch != epochs["w:0"] {
		t.Fatalf("w:0 epoch changed before expiry: %q, want %q", pos.Epoch, epochs["w:0"])
	}
	clock.Advance(5*time.Minute - time.Nanosecond)
	if n := b.Sweep(); n != 0 {
		t.Fatalf("Sweep before the TTL = %d, want 0", n)
	}
	if n := b.ChannelCount(); n != len(channels) {
		t.Fatalf("ChannelCount before the TTL = %d, want %d", n, len(channels))
	}

	clock.Advance(time.Nanosecond)
	if n := b.Sweep(); n != len(channels) {
		t.Fatalf("Sweep after the TTL = %d, want %d", n, len(channels))
	}
	// Only the subscription keeps its channel.
	if n := b.ChannelCount(); n != 1 {
		t.Fatalf("ChannelCount after Sweep = %d, want 1 (the subscribed channel)", n)
	}

	// The subscribed channel gets a new stream, which outlives Unsubscribe
	// until it expires and Sweep releases the channel.
	pos := mustHistory(t, b, "w:sub", broker.HistoryRequest{}).Position
	if pos.Offset != 0 || pos.Epoch == "" || pos.Epoch == epochs["w:sub"] {
		t.Fatalf("w:sub after Sweep = %+v, want offset 0 in a new epoch", pos)
	}
	if err := b.Unsubscribe(ctx, "w:sub"); err != nil {
		t.Fatal(err)
	}
	if n := b.ChannelCount(); n != 1 {
		t.Fatalf("ChannelCount after Unsubscribe = %d, want 1 (the stream lives)", n)
	}
	clock.Advance(10 * time.Minute)
	if n := b.Sweep(); n != 1 {
		t.Fatalf("final Sweep = %d, want 1", n)
	}
	if n := b.ChannelCount(); n != 0 {
		t.Fatalf("ChannelCount after final Sweep = %d, want 0", n)
	}
}

func TestMemoryInvalidArguments(t *testing.T) {
	t.Parallel()
	b, _, _ := newTestBroker(t)
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
				if msg := err.Error(); len(msg) < 8 || msg[:8] != "broker: " {
					t.Errorf("error %q lacks the broker prefix", msg)
				}
			})
		}
	})
	// No failed call, History included, created a channel or a stream.
	if n := b.ChannelCount(); n != 0 {
		t.Fatalf("failed calls left %d channels, want 0", n)
	}
	res := mustHistory(t, b, "x:1", broker.HistoryRequest{})
	if res.Position.Offset != 0 || res.Position.Epoch == "" {
		t.Fatalf("History after failed publishes = %+v, want offset 0 in a new epoch", res.Position)
	}
	if pos := mustPublish(t, b, "x:1", `1`, broker.PublishOptions{}); pos != (broker.Position{Offset: 1, Epoch: res.Position.Epoch}) {
		t.Errorf("first successful publish = %+v, want offset 1 in epoch %q", pos, res.Position.Epoch)
	}
}

func TestMemoryClose(t *testing.T) {
	t.Parallel()
	b, _, rec := newTestBroker(t)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "c:1"); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, b, "c:1", `1`, broker.PublishOptions{HistorySize: 5})
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := map[string]func() error{
		"Publish": func() error {
			_, err := b.Publish(ctx, "c:1", []byte(`2`), broker.PublishOptions{})
			return err
		},
		"Subscribe":   func() error { return b.Subscribe(ctx, "c:1") },
		"Unsubscribe": func() error { return b.Unsubscribe(ctx, "c:1") },
		"History": func() error {
			_, err := b.History(ctx, "c:1", broker.HistoryRequest{})
			return err
		},
		"Close": b.Close,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if n := b.Sweep(); n != 0 {
		t.Errorf("Sweep after Close = %d", n)
	}
	if got := rec.count(); got != 1 {
		t.Errorf("delivered %d publications, want only the one before Close", got)
	}
}

func TestMemoryCloseDuringPublishing(t *testing.T) {
	t.Parallel()
	b, _, rec := newTestBroker(t)
	started := make(chan struct{})
	var once sync.Once
	b.SetHandler(broker.HandlerFunc(func(p broker.Publication) {
		rec.HandlePublication(p)
		if p.Offset == 100 {
			once.Do(func() { close(started) })
		}
	}))
	ctx := context.Background()
	if err := b.Subscribe(ctx, "c:2"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				if _, err := b.Publish(ctx, "c:2", nil, broker.PublishOptions{HistorySize: 2}); err != nil {
					if !errors.Is(err, broker.ErrClosed) {
						t.Error(err)
					}
					return
				}
			}
		})
	}
	<-started
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	after := rec.count()
	wg.Wait()
	if got := rec.count(); got != after {
		t.Fatalf("handler called %d times after Close returned", got-after)
	}
}

// TestMemoryConcurrentMix races every method against the others and the
// clock, then checks that each channel's history is still gap-free.
func TestMemoryConcurrentMix(t *testing.T) {
	t.Parallel()
	b, clock, _ := newTestBroker(t)
	ctx := context.Background()
	channels := []string{"m:0", "m:1", "m:2", "m:3"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				ch := channels[(g+i)%len(channels)]
				var err error
				switch i % 6 {
				case 0, 1:
					_, err = b.Publish(ctx, ch, nil, broker.PublishOptions{HistorySize: 8, HistoryTTL: time.Second})
				case 2:
					err = b.Subscribe(ctx, ch)
				case 3:
					err = b.Unsubscribe(ctx, ch)
				case 4:
					var res broker.HistoryResult
					res, err = b.History(ctx, ch, broker.HistoryRequest{Since: &broker.Position{}})
					if err == nil && res.Complete {
						t.Errorf("empty since reported complete: %+v", res)
					}
				case 5:
					if g == 0 {
						clock.Advance(100 * time.Millisecond)
					}
					b.Sweep()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, ch := range channels {
		res := mustHistory(t, b, ch, broker.HistoryRequest{})
		if res.Position.Epoch == "" {
			t.Errorf("%s: History answered the empty epoch", ch)
			continue
		}
		full := mustHistory(t, b, ch, broker.HistoryRequest{Since: &broker.Position{Epoch: res.Position.Epoch}})
		got := pubOffsets(full.Publications)
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Errorf("%s: history has a gap: %v", ch, got)
			}
		}
		if len(got) > 0 && got[len(got)-1] != res.Position.Offset {
			t.Errorf("%s: history ends at %d, position is %d", ch, got[len(got)-1], res.Position.Offset)
		}
	}
}
