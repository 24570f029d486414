package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/opsindex"
	"github.com/fillcast/fillcast/controlplane/qoe"
	"github.com/fillcast/fillcast/controlplane/stream"
)

// Events is the event stream as the API uses it: publishing viewers'
// batches and appliances' usage summaries, and reading the projections
// every node folds from it.
type Events interface {
	// Publish puts a profile's batch on the stream and returns once the
	// stream has it; stream.ErrUnavailable means it has not.
	Publish(ctx context.Context, profile string, batch []events.Event) error
	// PublishUsage puts an appliance's usage summary on the stream.
	PublishUsage(ctx context.Context, u *fillcast.Usage) error
	// History answers a profile's viewing history.
	History(user string, limit int) events.History
	// QoE answers the quality of experience per title, site and
	// appliance, with at most limit rows each.
	QoE(limit int) qoe.Snapshot
	// SearchEvents answers the operators' event search.
	SearchEvents(q opsindex.Query) opsindex.Result
}

// EventsAnswer is the body of a 202 to POST /v1/events: how many events
// the stream took, and which were refused, by index, and why.
type EventsAnswer struct {
	Accepted int                      `json:"accepted"`
	Rejected []events.ValidationError `json:"rejected"`
}

// eventRoutes registers the event stream's routes.
func (a *API) eventRoutes() []route {
	return []route{
		{"POST /v1/events", gateway.RouteOptions{Name: "events", Policy: viewerOnly, Timeout: 5 * time.Second, MaxConcurrent: 256, MaxBodyBytes: 2 << 20, Priority: gateway.PriorityTelemetry}, a.postEvents},
		{"GET /v1/history", gateway.RouteOptions{Name: "history", Policy: viewerOnly, Timeout: time.Second, Priority: gateway.PriorityRecs}, a.ownHistory},
		{"GET /v1/users/{id}/history", gateway.RouteOptions{Name: "user_history", Policy: opsReader, Timeout: time.Second, Priority: gateway.PriorityTelemetry}, a.history},
		{"POST /v1/appliances/{id}/usage", gateway.RouteOptions{Name: "usage", Policy: applianceSelf, Timeout: 5 * time.Second, MaxConcurrent: 64, MaxBodyBytes: 8 << 20, Priority: gateway.PriorityTelemetry}, a.postUsage},
		{"GET /v1/ops/events", gateway.RouteOptions{Name: "ops_events", Policy: opsReader, Timeout: 2 * time.Second, Priority: gateway.PriorityTelemetry}, a.opsEvents},
		{"GET /v1/ops/qoe", gateway.RouteOptions{Name: "ops_qoe", Policy: opsReader, Timeout: 2 * time.Second, Priority: gateway.PriorityTelemetry}, a.opsQoE},
	}
}

// postEvents puts a viewer's batch on the stream as the events of the
// session's profile, from the site of the client's address, and answers
// once the stream has them: the valid events are kept, the others
// answered with their index and reason.
func (a *API) postEvents(w http.ResponseWriter, r *http.Request) error {
	v, err := viewer(r.Context())
	if err != nil {
		return err
	}
	now := a.d.Now()
	known := func(id string) (ok bool) {
		a.read(func(s *fsm.State) { ok = s.Titles[id] != nil })
		return ok
	}
	batch, rejected, err := events.DecodeBatch(r.Body, events.Limits{KnownTitle: known}, now)
	if err != nil {
		if errors.Is(err, events.ErrTooLarge) {
			return gateway.Errorf(http.StatusRequestEntityTooLarge, "%v", err)
		}
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	site, _ := a.d.Fleet.Current().Site(gateway.FromContext(r.Context()).Client())
	for i := range batch {
		batch[i].User, batch[i].Site = v.Profile.ID, site
	}
	answer := EventsAnswer{Accepted: len(batch), Rejected: rejected}
	if answer.Rejected == nil {
		answer.Rejected = []events.ValidationError{}
	}
	if len(batch) == 0 {
		return gateway.WriteJSON(w, http.StatusBadRequest, struct {
			Error string `json:"error"`
			EventsAnswer
		}{"events: no event of the batch was accepted", answer})
	}
	giveBack, retryAfter, ok := a.eventLimit.Take(v.Account.ID, len(batch), now)
	if !ok {
		return &gateway.Error{Status: http.StatusTooManyRequests, Message: "too many events from this account: slow down", RetryAfter: max(retryAfter, time.Second)}
	}
	if err := a.d.Events.Publish(r.Context(), v.Profile.ID, batch); err != nil {
		giveBack() // the batch will come again
		return streamError(err)
	}
	a.keepStreamsAlive(r, v, batch)
	return gateway.WriteJSON(w, http.StatusAccepted, answer)
}

// streamError answers a write the stream did not take: 503, to be sent
// again (a batch sent again is stored once).
func streamError(err error) error {
	if errors.Is(err, stream.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return &gateway.Error{Status: http.StatusServiceUnavailable, Message: "the event stream is not available: send the same batch again", RetryAfter: time.Second}
	}
	return err
}

// maxUsageSkew is how far ahead of the node's clock a usage summary may
// end.
const maxUsageSkew = 5 * time.Minute

// postUsage puts an appliance's usage summary on the stream, with the
// appliance and site of its registration.
func (a *API) postUsage(w http.ResponseWriter, r *http.Request) error {
	var u fillcast.Usage
	if err := gateway.DecodeJSON(r, &u); err != nil {
		return err
	}
	id := r.PathValue("id")
	reg, err := a.registration(r, id)
	if err != nil {
		return err
	}
	if u.Appliance != id {
		return gateway.Errorf(http.StatusBadRequest, "usage of appliance %q posted by %q", u.Appliance, id)
	}
	u.Site = reg.Site
	if err := u.Validate(); err != nil {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	// An appliance's clock ahead of the node's would count its bytes as
	// future viewing, which popularity's decay multiplies.
	if skew := u.End.Sub(a.d.Now()); skew > maxUsageSkew {
		return gateway.Errorf(http.StatusBadRequest, "usage ends %s ahead of this node's clock (at most %s): check the appliance's clock", skew.Round(time.Second), maxUsageSkew)
	}
	if err := a.d.Events.PublishUsage(r.Context(), &u); err != nil {
		return streamError(err)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// ownHistory answers the viewing history of the session's profile.
func (a *API) ownHistory(w http.ResponseWriter, r *http.Request) error {
	v, err := viewer(r.Context())
	if err != nil {
		return err
	}
	limit, err := limitParam(r, 20)
	if err != nil {
		return err
	}
	return gateway.WriteJSON(w, http.StatusOK, a.d.Events.History(v.Profile.ID, limit))
}

func (a *API) history(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 20)
	if err != nil {
		return err
	}
	return gateway.WriteJSON(w, http.StatusOK, a.d.Events.History(r.PathValue("id"), limit))
}

// opsEvents answers the operators' event search.
func (a *API) opsEvents(w http.ResponseWriter, r *http.Request) error {
	q, err := opsindex.ParseQuery(r.URL.Query())
	if err != nil {
		return gateway.Errorf(http.StatusBadRequest, "%v", err)
	}
	return gateway.WriteJSON(w, http.StatusOK, a.d.Events.SearchEvents(q))
}

// opsQoE answers the quality of experience per title, site and
// appliance (?limit= rows each, 100 by default).
func (a *API) opsQoE(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 100)
	if err != nil {
		return err
	}
	return gateway.WriteJSON(w, http.StatusOK, a.d.Events.QoE(limit))
}
