package recs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Run keeps the service up to date until ctx is done, cancelling a
// training in progress, and returns nil.
//
// The schedule: until a model exists Run checks every Poll, refreshing
// the trending list and training as soon as the source holds
// MinInteractions pairs; after that it retrains and refreshes every
// Interval. Without Models every node trains its own model on that
// schedule. With Models only a node whose Leader reports true trains,
// and it puts the model in the store instead of swapping it in; every
// node, the leader too, watches the store and swaps in each model it
// delivers, and refreshes its trending list from its own Source on the
// schedule. A node that becomes leader retrains Interval after the last
// model it received.
//
// With a negative Interval there is no schedule: without Models Run
// returns at once (the caller retrains); with Models it only watches.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if s.models != nil {
		wg.Go(func() { s.watch(ctx) })
	}
	if s.cfg.Interval > 0 {
		wg.Go(func() { s.schedule(ctx) })
	}
	wg.Wait()
	return nil
}

// trains reports whether this node should train now.
func (s *Service) trains() bool {
	return s.models == nil || s.leader == nil || s.leader()
}

// schedState is what the schedule remembers between ticks.
type schedState struct {
	refreshed time.Time // the schedule's last trending refresh
	enough    bool      // that refresh saw MinInteractions pairs
	retryAt   time.Time // no training before, after a failed one
	unput     []byte    // a model trained here that the store refused
}

func (s *Service) schedule(ctx context.Context) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	var st schedState
	for {
		s.tick(ctx, &st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick does what is due: a training if this node trains and the last
// model is Interval old (or there is none), else a trending refresh:
// every Poll while there is no model and too little data for one (a
// follower waiting for the leader's model on plenty of data need not
// rebuild the list every Poll), every Interval otherwise.
func (s *Service) tick(ctx context.Context, st *schedState) {
	now := time.Now()
	due := func(t time.Time) bool { return t.IsZero() || now.Sub(t) >= s.cfg.Interval }
	leads := s.trains()
	if !leads {
		st.unput = nil // the new leader shares its own
	}
	if st.unput != nil {
		if err := s.put(ctx, st.unput); err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("recs: model still not shared", "err", err)
			}
		} else {
			st.unput = nil
		}
	}
	last := s.lastModelAt()
	switch {
	case leads && due(last) && !now.Before(st.retryAt):
		unput, err := s.retrain(ctx)
		st.refreshed, st.unput = now, unput
		if err != nil && ctx.Err() == nil {
			// A failed training, or one the store refused, is not
			// retried before Interval; the refused model is offered
			// again every tick.
			st.retryAt = now.Add(s.cfg.Interval)
			s.logger.Error("recs: retrain", "err", err)
		}
	case (last.IsZero() && !st.enough) || due(st.refreshed):
		st.enough = s.refresh() >= s.cfg.MinInteractions
		st.refreshed = now
	}
}

// watch swaps in every model the store delivers until ctx is done,
// watching again a Poll after a failure.
func (s *Service) watch(ctx context.Context) {
	for {
		err := s.models.WatchModel(ctx, s.receive)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch ended")
		}
		err = fmt.Errorf("recs: watch models: %w", err)
		s.fail(err)
		s.logger.Warn("recs: watching models failed; retrying", "err", err, "in", s.cfg.Poll)
		t := time.NewTimer(s.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// receive swaps in a model from the store, with a trending list fresh
// from this node's source. A model that does not decode is logged and
// ignored: the previous one keeps serving.
func (s *Service) receive(data []byte) {
	m := new(Model)
	if err := m.UnmarshalBinary(data); err != nil {
		s.fail(fmt.Errorf("recs: received model: %w", err))
		s.logger.Error("recs: received model ignored", "err", err, "bytes", len(data))
		return
	}
	pop := NewPopular(s.src.Interactions(), s.now(), s.cfg.TrendingHalfLife)
	snap := s.install(m, pop, func(st *Stats) { st.Received++ })
	s.logger.Info("recs: model received and swapped in", "generation", snap.gen,
		"users", m.Users(), "titles", m.Titles(), "bytes", len(data))
}

// Retrain trains on the source's current data if it holds
// MinInteractions pairs, and refreshes the trending list. Without
// Models it swaps the new model and trending list in atomically,
// invalidating cached answers; requests meanwhile are answered by the
// previous model. With Models it puts the model in the store, and every
// node, this one included, swaps it in when the store delivers it;
// Retrain trains whatever Leader says, which only the schedule
// consults. On a training error the previous model stays and the
// trending list is still refreshed.
func (s *Service) Retrain(ctx context.Context) error {
	_, err := s.retrain(ctx)
	return err
}

// retrain is Retrain; it also returns the encoded model when the store
// refused it, for the schedule to offer again.
func (s *Service) retrain(ctx context.Context) (unput []byte, err error) {
	s.trainMu.Lock()
	defer s.trainMu.Unlock()
	start := s.now()
	data := s.src.Interactions()
	pop := NewPopular(data, start, s.cfg.TrendingHalfLife)
	var m *Model
	if len(data) >= s.cfg.MinInteractions {
		m, err = Train(ctx, data, s.cfg.ALS, s.rng)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("recs: retrain: %w", ctx.Err())
	}
	took := s.now().Sub(start)
	local := m
	if s.models != nil {
		local = nil // swapped in when the store delivers it
	}
	if err != nil {
		err = fmt.Errorf("recs: retrain: %w", err)
	}
	snap := s.install(local, pop, func(st *Stats) {
		if err != nil {
			st.LastError, st.LastErrorAt = err.Error(), start
		}
		if m != nil {
			st.Trainings++
			st.TrainedAt, st.TrainDuration = start, took
		}
	})
	if err != nil || m == nil {
		return nil, err
	}
	if s.models == nil {
		s.logger.Info("recs: model swapped in", "generation", snap.gen, "users", m.Users(),
			"titles", m.Titles(), "interactions", len(data), "took", took)
		return nil, nil
	}
	b, err := m.MarshalBinary()
	if err != nil {
		err = fmt.Errorf("recs: retrain: %w", err)
		s.fail(err)
		return nil, err
	}
	if err := s.put(ctx, b); err != nil {
		return b, err
	}
	s.logger.Info("recs: model trained and shared", "users", m.Users(), "titles", m.Titles(),
		"interactions", len(data), "took", took, "bytes", len(b))
	return nil, nil
}

// put shares an encoded model; from then on this node counts it as its
// latest model.
func (s *Service) put(ctx context.Context, data []byte) error {
	if err := s.models.PutModel(ctx, data); err != nil {
		err = fmt.Errorf("recs: put model: %w", err)
		s.fail(err)
		return err
	}
	s.mu.Lock()
	s.lastModel = time.Now()
	s.mu.Unlock()
	return nil
}

// refresh swaps in a trending list fresh from the source, keeping the
// model, and returns the number of interactions it ranked.
func (s *Service) refresh() int {
	data := s.src.Interactions()
	s.install(nil, NewPopular(data, s.now(), s.cfg.TrendingHalfLife), nil)
	return len(data)
}

// install swaps in pop and, unless m is nil, m as the next generation,
// and has note (if not nil) record in the stats what led to it, so that
// Stats never shows one without the other.
func (s *Service) install(m *Model, pop *Popular, note func(*Stats)) *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	next := &snapshot{gen: cur.gen + 1, model: cur.model, popular: pop}
	if m != nil {
		next.model = m
		s.lastModel = time.Now()
	}
	if note != nil {
		note(&s.stats)
	}
	s.cur.Store(next)
	if !s.closed {
		// Keys carry the generation, so no stale answer is read after
		// the swap; clearing frees the memory at once.
		s.cache.Clear()
	}
	return next
}

func (s *Service) lastModelAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastModel
}

// fail records err for Stats.
func (s *Service) fail(err error) {
	s.mu.Lock()
	s.stats.LastError, s.stats.LastErrorAt = err.Error(), s.now()
	s.mu.Unlock()
}
