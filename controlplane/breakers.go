package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/search"
	"github.com/fillcast/fillcast/transcoder"
)

// breakers are the node's circuit breakers, one per dependency its
// requests call (the routes have their own, in the gateway): a
// dependency that keeps failing is refused at once, the API answers 503
// with Retry-After or a fallback, and probes find when it is back. Their
// states are in /metrics as fillcast_breaker_state{breaker}.
type breakers struct {
	accounts   *protect.Breaker // the accounts store (raft or PostgreSQL)
	events     *protect.Breaker // publishing to the event stream
	search     *protect.Breaker // the search index
	recs       *protect.Breaker // the recommender
	origin     *protect.Breaker // ingest's PUTs to the origin
	transcoder *protect.Breaker // ingest's transcoder (ffmpeg)
	// originRetries is the retry budget of ingest's PUTs to the origin.
	originRetries *protect.Budget
}

// notFailing returns an IsFailure that does not count errs: answers of a
// working dependency to a bad or unlucky request.
func notFailing(errs ...error) func(error) bool {
	return func(err error) bool {
		for _, e := range errs {
			if errors.Is(err, e) {
				return false
			}
		}
		return err != nil && !errors.Is(err, context.Canceled)
	}
}

func newBreakers(m *protect.Metrics, log *slog.Logger) (*breakers, error) {
	b := &breakers{}
	for _, d := range []struct {
		name      string
		dst       **protect.Breaker
		isFailure func(error) bool
	}{
		{"accounts", &b.accounts, notFailing(accounts.ErrExists, accounts.ErrNotFound, accounts.ErrLimit, accounts.ErrInvalid, fsm.ErrStale)},
		{"events", &b.events, nil},
		{"search", &b.search, notFailing(search.ErrBadQuery)},
		{"recs", &b.recs, notFailing(recs.ErrBadRequest, recs.ErrUnknownTitle, recs.ErrNotReady)},
		{"origin", &b.origin, nil},
		{"transcoder", &b.transcoder, notFailing(transcoder.ErrBadInput)},
	} {
		cfg := protect.DefaultBreakerConfig()
		cfg.IsFailure = d.isFailure
		if d.name == "transcoder" {
			// Jobs take minutes: three failing in a row (of good input)
			// say ffmpeg is broken, not twenty within seconds.
			cfg.Window, cfg.MinRequests, cfg.ErrorRatio, cfg.OpenFor = time.Hour, 3, 1, time.Minute
		}
		br, err := protect.NewBreaker(d.name, cfg, m, log)
		if err != nil {
			return nil, err
		}
		*d.dst = br
	}
	var err error
	if b.originRetries, err = protect.NewBudget(protect.DefaultBudgetConfig(), protect.WithBudgetMetrics("origin", m)); err != nil {
		return nil, err
	}
	return b, nil
}
