package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/search"
)

// Search answers catalog queries.
type Search interface {
	Search(ctx context.Context, r search.Request) (*search.Results, error)
	Suggest(ctx context.Context, r search.Request) (*search.Results, error)
}

// Recs answers recommendations.
type Recs interface {
	Recommend(ctx context.Context, user string, limit int) (*recs.Results, error)
	Similar(ctx context.Context, title string, limit int) (*recs.Results, error)
	Fallback(user string, limit int) *recs.Results
}

// discoveryRoutes registers the viewer-facing routes that need the event
// log, the search index and the recommender, each behind its own timeout,
// bulkhead and breaker; recommendations fall back to trending titles.
func (a *API) discoveryRoutes() []route {
	var out []route
	if a.d.Events != nil {
		out = append(out, a.eventRoutes()...)
	}
	if a.d.Search != nil {
		opts := func(name string) gateway.RouteOptions {
			return gateway.RouteOptions{Name: name, Policy: browser, Timeout: 500 * time.Millisecond, MaxConcurrent: 32, Priority: gateway.PriorityBrowse,
				Breaker: &protect.BreakerConfig{}, Fallback: a.searchFallback}
		}
		out = append(out,
			route{"GET /v1/search", opts("search"), a.search},
			route{"GET /v1/search/suggest", opts("suggest"), a.suggest})
	}
	if a.d.Recs != nil {
		out = append(out,
			route{"GET /v1/recommendations", gateway.RouteOptions{Name: "recommendations", Policy: viewerOnly, Timeout: 300 * time.Millisecond, MaxConcurrent: 32,
				Priority: gateway.PriorityRecs, Breaker: &protect.BreakerConfig{}, Fallback: a.recsFallback}, a.recommendations},
			route{"GET /v1/titles/{id}/similar", gateway.RouteOptions{Name: "similar", Policy: browser, Timeout: 300 * time.Millisecond, MaxConcurrent: 32,
				Priority: gateway.PriorityRecs}, a.similar})
	}
	return out
}

func (a *API) search(w http.ResponseWriter, r *http.Request) error {
	req, err := search.ParseRequest(r.URL.Query())
	req.Kids = kidsOnly(r.Context())
	if err == nil {
		var res *search.Results
		if res, err = a.d.Search.Search(r.Context(), req); err == nil {
			return a.writeSearch(w, r, res)
		}
	}
	return searchError(err)
}

func (a *API) suggest(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 8)
	if err != nil {
		return err
	}
	res, err := a.d.Search.Suggest(r.Context(), search.Request{Q: r.URL.Query().Get("q"), Limit: limit, Kids: kidsOnly(r.Context())})
	if err != nil {
		return searchError(err)
	}
	return a.writeSearch(w, r, res)
}

func searchError(err error) error {
	if errors.Is(err, search.ErrBadQuery) {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	return err
}

func (a *API) recommendations(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 10)
	if err != nil {
		return err
	}
	v, err := viewer(r.Context())
	if err != nil {
		return err
	}
	res, err := a.d.Recs.Recommend(r.Context(), v.Profile.ID, recsAsk(r.Context(), limit))
	if err != nil {
		return recsError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, a.forProfile(r.Context(), res, limit))
}

// recsAsk is how many recommendations to ask for to show limit: more for
// a kids profile, which drops the titles not rated for it.
func recsAsk(ctx context.Context, limit int) int {
	if kidsOnly(ctx) {
		return min(4*limit, 100)
	}
	return limit
}

// forProfile drops from res the titles the caller's profile may not see,
// and keeps at most limit.
func (a *API) forProfile(ctx context.Context, res *recs.Results, limit int) *recs.Results {
	if kidsOnly(ctx) {
		out := *res
		out.Results = []recs.Item{}
		a.read(func(s *fsm.State) {
			for _, it := range res.Results {
				if t := s.Titles[it.ID]; t != nil && fillcast.KidsMayWatch(t.Maturity) {
					out.Results = append(out.Results, it)
				}
			}
		})
		res = &out
	}
	if len(res.Results) > limit {
		res.Results = res.Results[:limit]
	}
	return res
}

// recsFallback answers trending titles when recommendations time out,
// fail or are shed, so a home page always has a row to show.
func (a *API) recsFallback(w http.ResponseWriter, r *http.Request, cause error) error {
	var ge *gateway.Error
	if errors.As(cause, &ge) && ge.Status == http.StatusBadRequest {
		return cause
	}
	limit, err := limitParam(r, 10)
	if err != nil {
		return err
	}
	var profile string
	if v, err := viewer(r.Context()); err == nil {
		profile = v.Profile.ID
	}
	a.fallbacks.inc(fallbackRecsTrending)
	return gateway.WriteJSON(w, http.StatusOK, a.forProfile(r.Context(), a.d.Recs.Fallback(profile, recsAsk(r.Context(), limit)), limit))
}

func (a *API) similar(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 10)
	if err != nil {
		return err
	}
	if err := a.mayView(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	res, err := a.d.Recs.Similar(r.Context(), r.PathValue("id"), recsAsk(r.Context(), limit))
	if err != nil {
		return recsError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, a.forProfile(r.Context(), res, limit))
}

func recsError(err error) error {
	switch {
	case errors.Is(err, recs.ErrBadRequest):
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, recs.ErrUnknownTitle):
		return gateway.Errorf(http.StatusNotFound, "%v", err)
	case errors.Is(err, recs.ErrNotReady):
		return &gateway.Error{Status: http.StatusServiceUnavailable, Message: err.Error(), RetryAfter: 30 * time.Second}
	}
	return err
}

// limitParam reads ?limit=, 1 to 100.
func limitParam(r *http.Request, def int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 100 {
		return 0, gateway.Errorf(http.StatusBadRequest, "limit %q: want a number from 1 to 100", s)
	}
	return n, nil
}
