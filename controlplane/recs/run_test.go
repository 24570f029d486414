package recs_test

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/recs/recstest"
	"github.com/fillcast/fillcast/internal/poll"
)

// run runs s until the test ends.
func run(t *testing.T, s *recs.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestFirstModelAsSoonAsEnoughData(t *testing.T) {
	src := &fakeSource{finished: map[string][]string{}}
	s := newService(t, src, time.Hour)
	run(t, s)
	// Too few views to train on, but trending follows them at once.
	for u := range 3 {
		src.add(events.Interaction{User: "early" + strconv.Itoa(u), Title: "first", Weight: 1, Last: start})
	}
	poll.Until(t, 10*time.Second, "trending to list the first views", func() bool {
		return len(s.Fallback("someone", 5).Results) == 1
	})
	if st := s.Stats(); st.HasModel || st.Trainings != 0 {
		t.Fatalf("Stats = %+v before MinInteractions, want no model", st)
	}
	src.add(plantedSource().data...)
	poll.Until(t, 20*time.Second, "the first model, well before Interval", func() bool { return s.Stats().HasModel })
	if got, want := s.Stats().Trainings, uint64(1); got != want {
		t.Errorf("Trainings = %d, want %d", got, want)
	}
	if res, err := s.Recommend(context.Background(), "u1", 5); err != nil || res.Source != recs.SourceALS {
		t.Errorf("Recommend(u1) = %+v, %v; want an ALS answer", res, err)
	}
}

// cluster is two nodes sharing a ModelStore, each with its own copy of
// the same viewing data, as every node folds the same stream.
type cluster struct {
	store          *memStore
	a, b           *recs.Service
	aLeads, bLeads *atomic.Bool
}

// newCluster starts node a, the leader with interval, and node b, a
// follower with bInterval.
func newCluster(t *testing.T, interval, bInterval time.Duration) *cluster {
	c := &cluster{store: newMemStore(), aLeads: new(atomic.Bool), bLeads: new(atomic.Bool)}
	c.aLeads.Store(true)
	srcA, srcB := plantedSource(), plantedSource()
	c.a = newServiceDeps(t, interval, recs.Deps{Source: srcA, Finished: srcA, Leader: c.aLeads.Load, Models: c.store})
	c.b = newServiceDeps(t, bInterval, recs.Deps{Source: srcB, Finished: srcB, Leader: c.bLeads.Load, Models: c.store})
	return c
}

func TestLeaderTrainsFollowerServes(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, time.Hour, time.Hour)
	run(t, c.a)
	run(t, c.b)
	poll.Until(t, 20*time.Second, "the follower to receive the leader's model", func() bool { return c.b.Stats().HasModel })
	poll.Until(t, 10*time.Second, "the leader to swap in its own model", func() bool { return c.a.Stats().HasModel })
	if st := c.b.Stats(); st.Trainings != 0 || st.Received != 1 {
		t.Errorf("follower Stats = %+v, want 0 trainings and 1 model received", st)
	}
	if st := c.a.Stats(); st.Trainings != 1 || st.Received != 1 {
		t.Errorf("leader Stats = %+v, want 1 training and its model received", st)
	}
	for u := range 50 {
		user := recstest.User(u * 7)
		ra, errA := c.a.Recommend(ctx, user, 10)
		rb, errB := c.b.Recommend(ctx, user, 10)
		if errA != nil || errB != nil || rb.Source != recs.SourceALS || !reflect.DeepEqual(ra, rb) {
			t.Fatalf("Recommend(%s): leader %+v, %v; follower %+v, %v; want the same ALS answer", user, ra, errA, rb, errB)
		}
	}
	if _, err := c.b.Similar(ctx, "t1", 3); err != nil {
		t.Errorf("follower Similar(t1) = %v", err)
	}

	// A model that does not decode is ignored: the previous one serves.
	if err := c.store.PutModel(ctx, []byte("not a model")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the follower to refuse the bad model", func() bool {
		return strings.Contains(c.b.Stats().LastError, "received model")
	})
	if st := c.b.Stats(); !st.HasModel || st.Received != 1 {
		t.Errorf("after a bad model, follower Stats = %+v; want the model received before kept", st)
	}
	if res, err := c.b.Recommend(ctx, "u1", 5); err != nil || res.Source != recs.SourceALS {
		t.Errorf("after a bad model, Recommend(u1) = %+v, %v; want an ALS answer", res, err)
	}
}

func TestLeadershipMovesTraining(t *testing.T) {
	// a trains once (its Interval is long); b would retrain 50 ms after
	// the last model it received, once it leads.
	c := newCluster(t, time.Hour, 50*time.Millisecond)
	run(t, c.a)
	run(t, c.b)
	poll.Until(t, 20*time.Second, "the follower to receive a model", func() bool { return c.b.Stats().HasModel })
	if got := c.b.Stats().Trainings; got != 0 {
		t.Fatalf("follower trained %d times", got)
	}
	c.aLeads.Store(false)
	c.bLeads.Store(true)
	poll.Until(t, 20*time.Second, "the new leader to train", func() bool { return c.b.Stats().Trainings >= 1 })
	poll.Until(t, 20*time.Second, "the old leader to receive the new leader's model", func() bool {
		return c.a.Stats().Received >= 2
	})
	if got, want := c.a.Stats().Trainings, uint64(1); got != want {
		t.Errorf("old leader trained %d times, want %d", got, want)
	}
}

func TestRefusedModelOfferedAgain(t *testing.T) {
	c := newCluster(t, time.Hour, time.Hour)
	c.store.refuse.Store(true)
	run(t, c.a)
	run(t, c.b)
	poll.Until(t, 20*time.Second, "the leader to train and be refused", func() bool {
		return strings.Contains(c.a.Stats().LastError, "put model")
	})
	c.store.refuse.Store(false)
	poll.Until(t, 10*time.Second, "the follower to receive the model", func() bool { return c.b.Stats().HasModel })
	// The same model was offered again: no retraining.
	if got, want := c.a.Stats().Trainings, uint64(1); got != want {
		t.Errorf("leader trained %d times, want %d", got, want)
	}
	if got, want := c.store.puts(), uint64(1); got != want {
		t.Errorf("%d models put, want %d", got, want)
	}
}
