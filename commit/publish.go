package commit

import (
	"context"
	"time"

	"github.com/otree/otree/repo"
)

// publishEvery is how often a commit publishes the objects it finished
// while it walks the tree.
const publishEvery = 150 * time.Millisecond

// publishAsItGoes publishes txn's finished objects every interval until
// stop is called, which returns the error that ended it, if any; that error
// also cancels the walk through cancel. Each batch is made durable
// and then renamed into objects/ while the walk goes on, instead of all of
// them after it: the renames into objects/ run one at a time in the kernel
// (about a third of a second for /usr/local/go, with the other core idle),
// and the final syncfs has less left to write. A commit that fails or is
// killed may therefore leave complete objects that no ref reaches, which
// prune removes; the branch moves only when the commit succeeds.
func publishAsItGoes(txn *repo.Txn, interval time.Duration, cancel context.CancelCauseFunc) (stop func() error) {
	done := make(chan struct{})
	fin := make(chan error, 1)
	go func() {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-done:
				fin <- nil
				return
			case <-tk.C:
				if _, err := txn.Publish(); err != nil {
					cancel(err)
					fin <- err
					return
				}
			}
		}
	}()
	return func() error {
		close(done)
		return <-fin
	}
}
