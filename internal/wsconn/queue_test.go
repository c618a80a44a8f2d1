package wsconn

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestQueueBounds(t *testing.T) {
	t.Parallel()
	q := NewQueue(3, 10)
	for i := 0; i < 3; i++ {
		if err := q.Push([]byte("ab")); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Push([]byte("a")); !errors.Is(err, ErrFull) {
		t.Fatalf("item bound: got %v", err)
	}
	frames, ok := q.Drain()
	if !ok || len(frames) != 3 {
		t.Fatalf("drain: %d %v", len(frames), ok)
	}
	if err := q.Push([]byte("0123456789x")); !errors.Is(err, ErrFull) {
		t.Fatalf("byte bound: got %v", err)
	}
	q.Close()
	if err := q.Push([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: got %v", err)
	}
	if _, ok := q.Drain(); ok {
		t.Fatal("drain after close ok")
	}
}

func TestQueueSealDrains(t *testing.T) {
	t.Parallel()
	q := NewQueue(10, 100)
	_ = q.Push([]byte("a"))
	_ = q.Push([]byte("b"))
	q.Seal()
	if err := q.Push([]byte("c")); !errors.Is(err, ErrClosed) {
		t.Fatalf("push after seal: %v", err)
	}
	frames, ok := q.Drain()
	if !ok || len(frames) != 2 || string(frames[1]) != "b" {
		t.Fatalf("drain after seal: %q %v", frames, ok)
	}
	if _, ok := q.Drain(); ok {
		t.Fatal("sealed empty queue still ok")
	}
}

// TestQueueOrderConcurrent checks the on-demand consumer: producers push
// concurrently, a consumer is started whenever the queue goes from idle to
// busy and stops when it finds it empty, never two at once, and every
// frame arrives once, in each producer's order (no lost wake-up).
func TestQueueOrderConcurrent(t *testing.T) {
	t.Parallel()
	q := NewQueue(1<<20, 1<<30)
	const producers, each = 4, 5000
	var (
		mu      sync.Mutex
		last    = [producers]int{-1, -1, -1, -1}
		got     int
		running atomic.Int32
		starts  atomic.Int32
		stopped = make(chan struct{})
	)
	consume := func() {
		if running.Add(1) != 1 {
			t.Error("two consumers at once")
		}
		defer running.Add(-1)
		for {
			frames, st := q.Next()
			switch st {
			case Idle:
				return
			case Done:
				close(stopped)
				return
			}
			mu.Lock()
			for _, f := range frames {
				p, i := int(f[0]), int(f[1])<<8|int(f[2])
				if i != last[p]+1 {
					t.Errorf("producer %d: got %d after %d", p, i, last[p])
				}
				last[p] = i
				got++
			}
			mu.Unlock()
			runtime.Gosched()
		}
	}
	q.SetStarter(func() { starts.Add(1); go consume() })
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := q.Push([]byte{byte(p), byte(i >> 8), byte(i)}); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					runtime.Gosched()
				}
			}
		}(p)
	}
	wg.Wait()
	q.Seal()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("consumer never reached Done")
	}
	mu.Lock()
	defer mu.Unlock()
	if got != producers*each {
		t.Fatalf("got %d frames, want %d", got, producers*each)
	}
	if starts.Load() < 1 {
		t.Fatal("no consumer started")
	}
}

// TestQueueConsumerStopsWhenIdle checks that the consumer stops once the
// queue is empty and that the next Push starts a new one.
func TestQueueConsumerStopsWhenIdle(t *testing.T) {
	t.Parallel()
	q := NewQueue(10, 100)
	starts := 0
	q.SetStarter(func() { starts++ })
	_ = q.Push([]byte("a"))
	_ = q.Push([]byte("b"))
	if starts != 1 {
		t.Fatalf("starts after two pushes: %d, want 1", starts)
	}
	if frames, st := q.Next(); st != Frames || len(frames) != 2 {
		t.Fatalf("next: %q %v", frames, st)
	}
	if _, st := q.Next(); st != Idle {
		t.Fatalf("empty queue: %v, want Idle", st)
	}
	_ = q.Push([]byte("c"))
	if starts != 2 {
		t.Fatalf("push into idle queue did not start a consumer: %d", starts)
	}
	q.Seal()
	if starts != 2 {
		t.Fatalf("seal with a consumer running started another: %d", starts)
	}
	if frames, st := q.Next(); st != Frames || string(frames[0]) != "c" {
		t.Fatalf("frames queued before seal: %q %v", frames, st)
	}
	if _, st := q.Next(); st != Done {
		t.Fatalf("sealed empty queue: %v, want Done", st)
	}
	if err := q.Push([]byte("d")); !errors.Is(err, ErrClosed) {
		t.Fatalf("push after seal: %v", err)
	}
	if starts != 2 {
		t.Fatalf("consumer started after Done: %d", starts)
	}
}

// TestQueueCloseStartsConsumer checks that closing an idle queue starts a
// consumer (which performs the close) and that Close drops queued frames
// while a full queue keeps refusing pushes with ErrFull.
func TestQueueCloseStartsConsumer(t *testing.T) {
	t.Parallel()
	q := NewQueue(2, 100)
	starts := 0
	q.SetStarter(func() { starts++ })
	_ = q.Push([]byte("a"))
	_ = q.Push([]byte("b"))
	if err := q.Push([]byte("c")); !errors.Is(err, ErrFull) {
		t.Fatalf("third push: %v, want ErrFull", err)
	}
	q.Close()
	if _, st := q.Next(); st != Done {
		t.Fatalf("closed queue: %v, want Done (frames dropped)", st)
	}
	idle := NewQueue(2, 100)
	idleStarts := 0
	idle.SetStarter(func() { idleStarts++ })
	idle.Close()
	if idleStarts != 1 {
		t.Fatalf("close of an idle queue: %d starts, want 1", idleStarts)
	}
}

func BenchmarkQueuePushDrain(b *testing.B) {
	q := NewQueue(1024, 1<<20)
	frame := make([]byte, 128)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = q.Push(frame)
		if i%64 == 63 {
			q.Drain()
		}
	}
}
