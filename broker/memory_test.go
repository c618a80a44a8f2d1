package broker_test

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
	"github.com/livegate/livegate/broker/brokertest"
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

// TestMemoryConformance runs the broker contract tests against the memory
// broker, on the real clock: none of them lets a stream expire.
func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		b := broker.NewMemory(broker.MemoryConfig{})
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}

// TestMemoryPublicationTime checks that a publication carries the time the
// broker accepted it, from its clock.
func TestMemoryPublicationTime(t *testing.T) {
	t.Parallel()
	b, clock, rec := newTestBroker(t)
	if err := b.Subscribe(context.Background(), "a:1"); err != nil {
		t.Fatal(err)
	}
	opts := broker.PublishOptions{HistorySize: 3}
	var pos broker.Position
	for i := 1; i <= 10; i++ {
		clock.Advance(time.Second)
		pos = brokertest.MustPublish(t, b, "a:1", fmt.Sprint(i), opts)
	}
	res := brokertest.MustHistory(t, b, "a:1", broker.HistoryRequest{Since: &broker.Position{Offset: 8, Epoch: pos.Epoch}})
	if len(res.Publications) != 2 {
		t.Fatalf("got %d publications, want 2", len(res.Publications))
	}
	p := res.Publications[1]
	if p.Channel != "a:1" || p.Offset != 10 || string(p.Data) != "10" || !p.Time.Equal(clock.Now()) {
		t.Fatalf("publication = %+v, want offset 10 at %v", p, clock.Now())
	}
	if prev := res.Publications[0]; !prev.Time.Equal(clock.Now().Add(-time.Second)) {
		t.Fatalf("previous publication time = %v, want %v", prev.Time, clock.Now().Add(-time.Second))
	}
	rec.mu.Lock()
	delivered := rec.pubs[len(rec.pubs)-1]
	rec.mu.Unlock()
	if !delivered.Time.Equal(p.Time) {
		t.Fatalf("delivered time %v, history time %v", delivered.Time, p.Time)
	}
}

// TestMemoryCancelledErrors checks that calls with a cancelled context
// fail as broker errors wrapping the context's error.
func TestMemoryCancelledErrors(t *testing.T) {
	t.Parallel()
	b, _, _ := newTestBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, pubErr := b.Publish(ctx, "x:1", nil, broker.PublishOptions{})
	_, histErr := b.History(ctx, "x:1", broker.HistoryRequest{})
	for name, err := range map[string]error{"Publish": pubErr, "Subscribe": b.Subscribe(ctx, "x:1"), "History": histErr} {
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "broker: ") {
			t.Errorf("%s with a cancelled context = %v, want a broker error wrapping context.Canceled", name, err)
		}
	}
	if n := b.ChannelCount(); n != 0 {
		t.Fatalf("cancelled calls left %d channels, want 0", n)
	}
}

func TestMemoryExpiry(t *testing.T) {
	t.Parallel()
	b, clock, _ := newTestBroker(t)
	opts := broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Minute}
	brokertest.MustPublish(t, b, "e:1", `1`, opts)
	old := brokertest.MustPublish(t, b, "e:1", `2`, opts)
	oldSince := broker.Position{Offset: 1, Epoch: old.Epoch}

	clock.Advance(time.Minute - time.Nanosecond)
	res := brokertest.MustHistory(t, b, "e:1", broker.HistoryRequest{Since: &oldSince})
	if res.Position != old || !res.Complete || len(res.Publications) != 1 {
		t.Fatalf("just before expiry: %+v", res)
	}

	// History after expiry starts a new stream: offset 0 in a new epoch.
	clock.Advance(time.Nanosecond)
	res = brokertest.MustHistory(t, b, "e:1", broker.HistoryRequest{Since: &oldSince})
	restarted := res.Position
	if restarted.Offset != 0 || restarted.Epoch == "" || restarted.Epoch == old.Epoch || res.Complete || res.Publications != nil {
		t.Fatalf("after expiry: %+v, want offset 0 in a new epoch (old %q), no publications, incomplete", res, old.Epoch)
	}

	fresh := brokertest.MustPublish(t, b, "e:1", `3`, opts)
	if want := (broker.Position{Offset: 1, Epoch: restarted.Epoch}); fresh != want {
		t.Fatalf("first publish after expiry = %+v, want %+v (continuing the stream History started)", fresh, want)
	}
	for _, since := range []broker.Position{oldSince, {Offset: 0, Epoch: old.Epoch}, {Offset: 1, Epoch: old.Epoch}, {}} {
		res = brokertest.MustHistory(t, b, "e:1", broker.HistoryRequest{Since: &since})
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
	old := brokertest.MustPublish(t, b, "e:2", `1`, opts)
	clock.Advance(time.Second)
	fresh := brokertest.MustPublish(t, b, "e:2", `2`, opts)
	if fresh.Offset != 1 || fresh.Epoch == old.Epoch {
		t.Fatalf("publish after expiry = %+v, old %+v", fresh, old)
	}
	// The subscription outlives the stream.
	if got := rec.count(); got != 2 {
		t.Fatalf("delivered %d publications, want 2", got)
	}
	res := brokertest.MustHistory(t, b, "e:2", broker.HistoryRequest{Since: &broker.Position{Epoch: fresh.Epoch}})
	if got := brokertest.Offsets(res.Publications); !slices.Equal(got, []uint64{1}) || !res.Complete {
		t.Fatalf("history of new epoch: %v complete %v", got, res.Complete)
	}
}

func TestMemorySweep(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := broker.NewMemory(broker.MemoryConfig{Now: clock.Now, DefaultHistoryTTL: 10 * time.Minute})
	defer b.Close()
	ctx := context.Background()

	short := brokertest.MustPublish(t, b, "s:short", `1`, broker.PublishOptions{HistorySize: 5, HistoryTTL: time.Minute})
	withDefault := brokertest.MustPublish(t, b, "s:default", `1`, broker.PublishOptions{HistorySize: 5})
	noHistory := brokertest.MustPublish(t, b, "s:nohistory", `1`, broker.PublishOptions{})
	if err := b.Subscribe(ctx, "s:subscribed"); err != nil {
		t.Fatal(err)
	}
	subscribed := brokertest.MustPublish(t, b, "s:subscribed", `1`, broker.PublishOptions{HistorySize: 5, HistoryTTL: time.Minute})
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
		res := brokertest.MustHistory(t, b, ch, broker.HistoryRequest{})
		if res.Position.Offset != 0 || res.Position.Epoch == "" || res.Position.Epoch == before.Epoch {
			t.Errorf("%s: position after sweep = %+v, want offset 0 in a new epoch (old %q)", ch, res.Position, before.Epoch)
		}
		restarted[ch] = res.Position
	}
	if n := b.Sweep(); n != 0 {
		t.Fatalf("Sweep right after History restarted streams = %d, want 0", n)
	}
	if pos := brokertest.MustPublish(t, b, "s:nohistory", `2`, broker.PublishOptions{}); pos != (broker.Position{Offset: 1, Epoch: restarted["s:nohistory"].Epoch}) {
		t.Errorf("no-history stream after sweep = %+v, want offset 1 in epoch %q", pos, restarted["s:nohistory"].Epoch)
	}

	rec := &recorder{}
	b.SetHandler(rec)
	if pos := brokertest.MustPublish(t, b, "s:subscribed", `2`, broker.PublishOptions{}); pos != (broker.Position{Offset: 1, Epoch: restarted["s:subscribed"].Epoch}) {
		t.Errorf("subscribed stream after sweep = %+v, want offset 1 in epoch %q", pos, restarted["s:subscribed"].Epoch)
	}
	if got := rec.offsets("s:subscribed"); !slices.Equal(got, []uint64{1}) {
		t.Errorf("subscription lost by sweep: delivered %v", got)
	}
}

func TestMemoryDefaultTTL(t *testing.T) {
	t.Parallel()
	b, clock, _ := newTestBroker(t)
	pos := brokertest.MustPublish(t, b, "d:1", `1`, broker.PublishOptions{HistorySize: 1})
	clock.Advance(5*time.Minute - time.Second)
	if res := brokertest.MustHistory(t, b, "d:1", broker.HistoryRequest{}); res.Position != pos {
		t.Fatalf("stream gone before the 5 minute default: %+v", res)
	}
	clock.Advance(time.Second)
	if n := b.Sweep(); n != 1 {
		t.Fatalf("Sweep at 5 minutes = %d, want 1", n)
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
	brokertest.MustPublish(t, b, "n:1", `1`, broker.PublishOptions{})
	rec := &recorder{}
	b.SetHandler(rec)
	brokertest.MustPublish(t, b, "n:1", `2`, broker.PublishOptions{})
	b.SetHandler(nil)
	brokertest.MustPublish(t, b, "n:1", `3`, broker.PublishOptions{})
	if got := rec.offsets("n:1"); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("delivered %v, want [2]", got)
	}
}

// TestMemorySubscribeBeforeFirstPublish follows a client that takes its
// position before a channel's first publication and recovers from it.
func TestMemorySubscribeBeforeFirstPublish(t *testing.T) {
	t.Parallel()
	b, clock, _ := newTestBroker(t) // default history TTL: 5 minutes
	const ch = "r:1"

	first := brokertest.MustHistory(t, b, ch, broker.HistoryRequest{})
	e := first.Position.Epoch
	if first.Position.Offset != 0 || e == "" || first.Publications != nil || first.Complete {
		t.Fatalf("History of a fresh channel = %+v, want offset 0 in a new epoch, incomplete", first)
	}
	start := broker.Position{Offset: 0, Epoch: e}

	// Nothing published: recovering from the start is complete and empty.
	res := brokertest.MustHistory(t, b, ch, broker.HistoryRequest{Since: &start})
	if res.Position != start || !res.Complete || len(res.Publications) != 0 {
		t.Fatalf("since %+v with nothing published = %+v, want complete, no publications", start, res)
	}

	// Publications continue the stream History started and extend its
	// life past the TTL counted from History.
	clock.Advance(4 * time.Minute)
	opts := broker.PublishOptions{HistorySize: 10}
	if pos := brokertest.MustPublish(t, b, ch, `1`, opts); pos != (broker.Position{Offset: 1, Epoch: e}) {
		t.Fatalf("first publish = %+v, want offset 1 in epoch %q", pos, e)
	}
	last := brokertest.MustPublish(t, b, ch, `2`, opts)
	if last != (broker.Position{Offset: 2, Epoch: e}) {
		t.Fatalf("second publish = %+v, want offset 2 in epoch %q", last, e)
	}
	clock.Advance(4 * time.Minute)
	res = brokertest.MustHistory(t, b, ch, broker.HistoryRequest{Since: &start})
	if got := brokertest.Offsets(res.Publications); !slices.Equal(got, []uint64{1, 2}) || !res.Complete || res.Position != last {
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
	res = brokertest.MustHistory(t, b, ch, broker.HistoryRequest{Since: &last})
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

	start := brokertest.MustHistory(t, b, "q:1", broker.HistoryRequest{}).Position
	clock.Advance(10*time.Minute - time.Nanosecond)
	res := brokertest.MustHistory(t, b, "q:1", broker.HistoryRequest{Since: &start})
	if res.Position != start || !res.Complete || len(res.Publications) != 0 {
		t.Fatalf("just before expiry: %+v, want position %+v, complete", res, start)
	}
	clock.Advance(time.Nanosecond)
	res = brokertest.MustHistory(t, b, "q:1", broker.HistoryRequest{Since: &start})
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
		pos := brokertest.MustHistory(t, b, ch, broker.HistoryRequest{}).Position
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
	if pos := brokertest.MustHistory(t, b, "w:0", broker.HistoryRequest{}).Position; pos.Epoch != epochs["w:0"] {
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
	pos := brokertest.MustHistory(t, b, "w:sub", broker.HistoryRequest{}).Position
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

func TestMemoryClose(t *testing.T) {
	t.Parallel()
	b, _, rec := newTestBroker(t)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "c:1"); err != nil {
		t.Fatal(err)
	}
	brokertest.MustPublish(t, b, "c:1", `1`, broker.PublishOptions{HistorySize: 5})
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
		res := brokertest.MustHistory(t, b, ch, broker.HistoryRequest{})
		if res.Position.Epoch == "" {
			t.Errorf("%s: History answered the empty epoch", ch)
			continue
		}
		full := brokertest.MustHistory(t, b, ch, broker.HistoryRequest{Since: &broker.Position{Epoch: res.Position.Epoch}})
		got := brokertest.Offsets(full.Publications)
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
