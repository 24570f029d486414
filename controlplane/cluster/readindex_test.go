package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadIndexesCoalesce: a hundred lookups at once make few asks of
// the leader, and each gets an answer read after it arrived.
func TestReadIndexesCoalesce(t *testing.T) {
	var q readIndexes
	var asks, index atomic.Uint64
	fetch := func(context.Context) (uint64, error) {
		asks.Add(1)
		i := index.Add(1) // the leader's index at the time it was asked
		time.Sleep(20 * time.Millisecond)
		return i, nil
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			before := index.Load() // every write this caller must see is at or below it
			got, err := q.get(context.Background(), fetch)
			if err != nil || got <= before {
				t.Errorf("get = %d, %v; want an index read after %d", got, err, before)
			}
		})
	}
	wg.Wait()
	if n := asks.Load(); n > 10 {
		t.Errorf("100 concurrent lookups asked the leader %d times, want a few", n)
	}
}
