package wsconn

import (
	"errors"
	"sync"
	"testing"
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

func TestQueueOrderConcurrent(t *testing.T) {
	t.Parallel()
	q := NewQueue(1<<20, 1<<30)
	const producers, each = 4, 1000
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
			}
		}(p)
	}
	last := [producers]int{-1, -1, -1, -1}
	got := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for got < producers*each {
		select {
		case <-q.Ready():
		case <-done:
		}
		frames, _ := q.Drain()
		for _, f := range frames {
			p, i := int(f[0]), int(f[1])<<8|int(f[2])
			if i != last[p]+1 {
				t.Fatalf("producer %d: got %d after %d", p, i, last[p])
			}
			last[p] = i
			got++
		}
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
