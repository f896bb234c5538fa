package workq

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// Tasks that push tasks all run, each worker with its own scratch.
func TestRunsATreeOfTasks(t *testing.T) {
	var q Queue[*int]
	var ran atomic.Int64
	var spawn func(depth int) Task[*int]
	spawn = func(depth int) Task[*int] {
		return func(w *int) error {
			*w++ // per-worker scratch: no race
			ran.Add(1)
			if depth < 6 {
				q.Push(spawn(depth + 1))
				q.Push(spawn(depth + 1))
			}
			return nil
		}
	}
	q.Push(spawn(0))
	if err := q.Run(context.Background(), 4, func() *int { return new(int) }); err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 127 {
		t.Fatalf("ran %d tasks, want 127", ran.Load())
	}
}

func TestStopsAtFirstError(t *testing.T) {
	var q Queue[struct{}]
	boom := errors.New("boom")
	var ran atomic.Int64
	for i := 0; i < 1000; i++ {
		q.Push(func(struct{}) error {
			if ran.Add(1) == 10 {
				return boom
			}
			return nil
		})
	}
	if err := q.Run(context.Background(), 2, func() struct{} { return struct{}{} }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if ran.Load() >= 1000 {
		t.Fatal("kept running tasks after an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var q2 Queue[struct{}]
	q2.Push(func(struct{}) error { return nil })
	if err := q2.Run(ctx, 1, func() struct{} { return struct{}{} }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: err = %v", err)
	}
}
