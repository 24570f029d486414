package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/gateway/breaker"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/search"
)

// Events is the viewing-event log the API writes and reads.
type Events interface {
	DecodeBatch(r io.Reader) ([]events.Event, error)
	Append(ctx context.Context, batch []events.Event) error
	History(user string, limit int) events.History
}

// Search answers catalog queries.
type Search interface {
	Search(ctx context.Context, r search.Request) (*search.Results, error)
	Suggest(ctx context.Context, prefix string, limit int) (*search.Results, error)
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
		out = append(out,
			route{"POST /v1/events", gateway.RouteOptions{Name: "events", Policy: auth.Public, Timeout: 5 * time.Second, MaxConcurrent: 64, MaxBodyBytes: 2 << 20}, a.postEvents},
			route{"GET /v1/users/{id}/history", gateway.RouteOptions{Name: "history", Policy: auth.Public, Timeout: time.Second, Priority: gateway.PriorityLow}, a.history})
	}
	if a.d.Search != nil {
		opts := func(name string) gateway.RouteOptions {
			return gateway.RouteOptions{Name: name, Policy: auth.Public, Timeout: 500 * time.Millisecond, MaxConcurrent: 32, Priority: gateway.PriorityLow,
				Breaker: &breaker.Config{MinRequests: 20, ErrorRatio: 0.5}}
		}
		out = append(out,
			route{"GET /v1/search", opts("search"), a.search},
			route{"GET /v1/search/suggest", opts("suggest"), a.suggest})
	}
	if a.d.Recs != nil {
		out = append(out,
			route{"GET /v1/recommendations", gateway.RouteOptions{Name: "recommendations", Policy: auth.Public, Timeout: 300 * time.Millisecond, MaxConcurrent: 32,
				Priority: gateway.PriorityLow, Breaker: &breaker.Config{MinRequests: 20, ErrorRatio: 0.5}, Fallback: a.recsFallback}, a.recommendations},
			route{"GET /v1/titles/{id}/similar", gateway.RouteOptions{Name: "similar", Policy: auth.Public, Timeout: 300 * time.Millisecond, MaxConcurrent: 32,
				Priority: gateway.PriorityLow}, a.similar})
	}
	return out
}

func (a *API) postEvents(w http.ResponseWriter, r *http.Request) error {
	batch, err := a.d.Events.DecodeBatch(r.Body)
	if err != nil {
		switch {
		case errors.Is(err, events.ErrTooLarge):
			return gateway.Errorf(http.StatusRequestEntityTooLarge, "%v", err)
		case errors.Is(err, events.ErrInvalid):
			return gateway.Errorf(http.StatusBadRequest, "%v", err)
		}
		return gateway.Errorf(http.StatusBadRequest, "events: %v", err)
	}
	if err := a.d.Events.Append(r.Context(), batch); err != nil {
		return err
	}
	return gateway.WriteJSON(w, http.StatusAccepted, map[string]int{"accepted": len(batch)})
}

func (a *API) history(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 20)
	if err != nil {
		return err
	}
	return gateway.WriteJSON(w, http.StatusOK, a.d.Events.History(r.PathValue("id"), limit))
}

func (a *API) search(w http.ResponseWriter, r *http.Request) error {
	req, err := search.ParseRequest(r.URL.Query())
	if err == nil {
		var res *search.Results
		if res, err = a.d.Search.Search(r.Context(), req); err == nil {
			return gateway.WriteJSON(w, http.StatusOK, res)
		}
	}
	return searchError(err)
}

func (a *API) suggest(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 8)
	if err != nil {
		return err
	}
	res, err := a.d.Search.Suggest(r.Context(), r.URL.Query().Get("q"), limit)
	if err != nil {
		return searchError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, res)
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
	res, err := a.d.Recs.Recommend(r.Context(), r.URL.Query().Get("user"), limit)
	if err != nil {
		return recsError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, res)
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
	return gateway.WriteJSON(w, http.StatusOK, a.d.Recs.Fallback(r.URL.Query().Get("user"), limit))
}

func (a *API) similar(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 10)
	if err != nil {
		return err
	}
	res, err := a.d.Recs.Similar(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return recsError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, res)
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
