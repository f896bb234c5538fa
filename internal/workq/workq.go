// Package workq runs a tree walk's tasks on a bounded pool of workers, each
// with its own scratch (hasher, buffers), as commit and checkout need.
package workq

import (
	"context"
	"runtime"
	"sync"
)

// Workers is the pool size for work that is mostly blocking system calls:
// more goroutines than cores keep the cores busy.
func Workers() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// Task is one unit of work, run with a worker's scratch.
type Task[W any] func(w W) error

// Queue is an unbounded LIFO work queue: tasks may push more tasks, and the
// depth-first order keeps the number of open directories small. The zero
// value is ready to use.
type Queue[W any] struct {
	mu      sync.Mutex
	cond    *sync.Cond
	tasks   []Task[W]
	pending int
	err     error
}

func (q *Queue[W]) init() {
	if q.cond == nil {
		q.cond = sync.NewCond(&q.mu)
	}
}

// Push adds a task. It is safe to call from tasks.
func (q *Queue[W]) Push(t Task[W]) {
	q.mu.Lock()
	q.init()
	q.tasks = append(q.tasks, t)
	q.pending++
	q.mu.Unlock()
	q.cond.Signal()
}

// Run executes tasks on n workers, each made by newWorker, until none are
// pending or one fails (or ctx ends); it returns the first error.
func (q *Queue[W]) Run(ctx context.Context, n int, newWorker func() W) error {
	q.mu.Lock()
	q.init()
	q.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker()
			for {
				q.mu.Lock()
				for len(q.tasks) == 0 && q.pending > 0 && q.err == nil {
					q.cond.Wait()
				}
				if q.pending == 0 || q.err != nil {
					q.mu.Unlock()
					q.cond.Broadcast()
					return
				}
				t := q.tasks[len(q.tasks)-1]
				q.tasks[len(q.tasks)-1] = nil
				q.tasks = q.tasks[:len(q.tasks)-1]
				q.mu.Unlock()
				err := t(w)
				if err == nil {
					err = ctx.Err()
				}
				q.mu.Lock()
				q.pending--
				if err != nil && q.err == nil {
					q.err = err
				}
				done := q.pending == 0 || q.err != nil
				q.mu.Unlock()
				if done {
					q.cond.Broadcast()
				}
			}
		}()
	}
	wg.Wait()
	return q.err
}
