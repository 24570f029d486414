package recs_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/internal/poll"
)

// fakeSource is an in-memory event store.
type fakeSource struct {
	mu       sync.Mutex
	data     []events.Interaction
	finished map[string][]string
}

func (f *fakeSource) Interactions() []events.Interaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.Interaction(nil), f.data...)
}

func (f *fakeSource) Finished(user string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finished[user]
}

func (f *fakeSource) add(in ...events.Interaction) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = append(f.data, in...)
}

func newService(t *testing.T, src *fakeSource, interval time.Duration) *recs.Service {
	t.Helper()
	return newServiceDeps(t, interval, recs.Deps{Source: src, Finished: src})
}

// newServiceDeps returns a small, fast-training Service whose clock
// stands at start; deps' logger discards.
func newServiceDeps(t *testing.T, interval time.Duration, deps recs.Deps) *recs.Service {
	t.Helper()
	cfg := recs.DefaultConfig()
	cfg.Interval = interval
	cfg.Poll = 5 * time.Millisecond
	cfg.MinInteractions = 10
	cfg.ALS.Factors, cfg.ALS.Iterations = 8, 5
	deps.Logger = slog.New(slog.DiscardHandler)
	deps.Now = func() time.Time { return start }
	s, err := recs.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func plantedSource() *fakeSource {
	d := planted(5)
	for i := range d.Train {
		d.Train[i].Last = start
	}
	return &fakeSource{data: d.Train, finished: map[string][]string{}}
}

func TestServiceFallbackThenModel(t *testing.T) {
	ctx := context.Background()
	src := plantedSource()
	s := newService(t, src, -1)
	res, err := s.Recommend(ctx, "u1", 5)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != recs.SourcePopular || len(res.Results) != 0 {
		t.Errorf("before any training: %+v, want an empty popular answer", res)
	}
	if _, err := s.Similar(ctx, "t1", 5); !errors.Is(err, recs.ErrNotReady) {
		t.Errorf("Similar before training = %v, want ErrNotReady", err)
	}
	if err := s.Retrain(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = s.Recommend(ctx, "u1", 5)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != recs.SourceALS || len(res.Results) != 5 {
		t.Errorf("known user: source %s, %d results; want als, 5", res.Source, len(res.Results))
	}
	res, err = s.Recommend(ctx, "newcomer", 5)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != recs.SourcePopular || len(res.Results) != 5 {
		t.Errorf("new user: source %s, %d results; want popular, 5", res.Source, len(res.Results))
	}
	// Finishing the top title removes it after the cache entry expires
	// or the model changes; a different limit is a different entry.
	top := res.Results[0].ID
	src.mu.Lock()
	src.finished["newcomer"] = []string{top}
	src.mu.Unlock()
	res, err = s.Recommend(ctx, "newcomer", 6)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range res.Results {
		if it.ID == top {
			t.Errorf("finished title %s recommended", top)
		}
	}
	if fb := s.Fallback("newcomer", 3); len(fb.Results) != 3 || fb.Results[0].ID == top {
		t.Errorf("Fallback = %+v, want 3 titles without %s", fb, top)
	}
	sim, err := s.Similar(ctx, "t1", 4)
	if err != nil || len(sim.Results) != 4 {
		t.Errorf("Similar(t1) = %+v, %v; want 4 titles", sim, err)
	}
	if _, err := s.Similar(ctx, "nobody-watched", 4); !errors.Is(err, recs.ErrUnknownTitle) {
		t.Errorf("Similar(unknown) = %v, want ErrUnknownTitle", err)
	}
	for _, tt := range []struct {
		name  string
		user  string
		limit int
	}{{"no user", "", 5}, {"negative limit", "u1", -1}} {
		if _, err := s.Recommend(ctx, tt.user, tt.limit); !errors.Is(err, recs.ErrBadRequest) {
			t.Errorf("%s: Recommend = %v, want ErrBadRequest", tt.name, err)
		}
	}
	if st := s.Stats(); !st.HasModel || st.Generation != 1 || st.Users != 1200 {
		t.Errorf("Stats = %+v, want a model of generation 1 with 1200 users", st)
	}
}

func TestRetrainSwapsWhileServing(t *testing.T) {
	ctx := context.Background()
	src := plantedSource()
	s := newService(t, src, -1)
	if err := s.Retrain(ctx); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var calls, failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				var n int
				if w%2 == 0 {
					var res *recs.Results
					res, err = s.Recommend(ctx, "u"+strconv.Itoa(i%1300), 10)
					if err == nil {
						n = len(res.Results)
					}
				} else {
					var res *recs.Results
					res, err = s.Similar(ctx, "t"+strconv.Itoa(i%240), 10)
					if err == nil {
						n = len(res.Results)
					}
				}
				calls.Add(1)
				if err != nil || n == 0 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, errors.Join(err, errors.New("or empty answer")))
				}
			}
		}()
	}
	// Each retrain adds a title everyone in the first 300 users
	// watched; the swapped model must know it.
	for r := range 3 {
		fresh := "fresh" + strconv.Itoa(r)
		for u := range 300 {
			src.add(events.Interaction{User: "u" + strconv.Itoa(u), Title: fresh, Weight: 1, Last: start})
		}
		if err := s.Retrain(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Similar(ctx, fresh, 3); err != nil {
			t.Errorf("after retrain %d Similar(%s) = %v", r, fresh, err)
		}
	}
	// Let the readers run against the final model too.
	for deadline := time.Now().Add(5 * time.Second); calls.Load() < 200 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Errorf("%d of %d calls failed during retraining; first: %v", f, calls.Load(), firstErr.Load())
	}
	if got, want := s.Stats().Generation, uint64(4); got != want {
		t.Errorf("generation = %d, want %d", got, want)
	}
}

func TestScheduleAndClose(t *testing.T) {
	src := plantedSource()
	s := newService(t, src, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	poll.Until(t, 20*time.Second, "the schedule to retrain twice", func() bool { return s.Stats().Generation >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	gen := s.Stats().Generation
	if res, err := s.Recommend(context.Background(), "u1", 3); err != nil || len(res.Results) != 3 {
		t.Errorf("Recommend after Close = %+v, %v", res, err)
	}
	if got := s.Stats().Generation; got != gen {
		t.Errorf("generation moved from %d to %d after Close", gen, got)
	}
}

func TestCacheInvalidatedOnRetrain(t *testing.T) {
	ctx := context.Background()
	src := &fakeSource{finished: map[string][]string{}}
	for u := range 20 {
		src.add(events.Interaction{User: "v" + strconv.Itoa(u), Title: "old", Weight: 1, Last: start})
	}
	s := newService(t, src, -1)
	if err := s.Retrain(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 { // a few calls so that ristretto admits the entry
		res, err := s.Recommend(ctx, "stranger", 1)
		if err != nil || len(res.Results) != 1 || res.Results[0].ID != "old" {
			t.Fatalf("Recommend = %+v, %v; want [old]", res, err)
		}
	}
	for u := range 40 {
		src.add(events.Interaction{User: "w" + strconv.Itoa(u), Title: "hit", Weight: 1, Last: start})
	}
	if err := s.Retrain(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := s.Recommend(ctx, "stranger", 1)
	if err != nil || len(res.Results) != 1 || res.Results[0].ID != "hit" {
		t.Errorf("after retrain Recommend = %+v, %v; want [hit], not the cached [old]", res, err)
	}
	if got := s.PopularityScores(); got["hit"] <= got["old"] {
		t.Errorf("PopularityScores = %v, want hit above old", got)
	}
}
