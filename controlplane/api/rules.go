package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast/auth"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/ratelimit"
	"github.com/fillcast/fillcast/controlplane/rules"
	"github.com/fillcast/fillcast/controlplane/squeeze"
)

// Squeeze starts and cancels squeeze tests (controlplane/squeeze.Runner).
type Squeeze interface {
	Start(ctx context.Context, q *fsm.Squeeze) error
	Cancel(ctx context.Context, id, by string) error
}

// ruleRoutes are the runtime rules and squeeze tests, for operators.
func (a *API) ruleRoutes(read, write func(name string, p auth.Policy) gateway.RouteOptions) []route {
	out := []route{
		{"GET /v1/rules", read("list_rules", opsReader), a.listRules},
		{"GET /v1/rules/audit", read("rules_audit", opsReader), a.rulesAudit},
		{"PUT /v1/rules/{id}", write("put_rule", opScope), a.putRule},
		{"DELETE /v1/rules/{id}", write("delete_rule", opScope), a.deleteRule},
	}
	if a.d.Squeeze != nil {
		out = append(out,
			route{"POST /v1/squeeze", write("start_squeeze", opScope), a.startSqueeze},
			route{"GET /v1/squeeze", read("list_squeezes", opsReader), a.listSqueezes},
			route{"GET /v1/squeeze/{id}", read("get_squeeze", opsReader), a.getSqueeze},
			route{"DELETE /v1/squeeze/{id}", write("cancel_squeeze", opScope), a.cancelSqueeze})
	}
	return out
}

// RulesChanged compiles the replicated rules again: static answers,
// steering rules and rate limits take effect on this node at once. The
// node calls it whenever a rule is put or deleted, and after a restore.
func (a *API) RulesChanged() {
	var set *rules.Set
	a.read(func(s *fsm.State) { set = rules.Compile(s.Rules) })
	a.rules.Store(set)
	limits := set.Limits()
	out := make([]ratelimit.Rule, 0, len(limits))
	for _, l := range limits {
		out = append(out, ratelimit.Rule{ID: l.ID, Route: l.Route, Class: ratelimit.Class(l.Class),
			Limit: ratelimit.Limit{PerSecond: l.PerSecond, Burst: l.Burst}})
	}
	if err := a.limits.SetRules(out); err != nil {
		a.d.Log.Warn("api: limit rules", "err", err)
	}
}

// Allow is the gateway's rate limiter: the per-principal limits, except
// on the rules' and squeeze tests' own routes, so that no limit rule can
// lock operators out of deleting it. Those are operators' routes alone.
func (a *API) Allow(route string, p auth.Principal, client netip.Addr, now time.Time) (time.Duration, bool) {
	if a.unlimited[route] {
		return 0, true
	}
	return a.limits.Allow(route, p, client, now)
}

// Static answers a route from a static rule, for the gateway.
func (a *API) Static(pattern string) (gateway.StaticResponse, bool) {
	status, body, retryAfter, ok := a.rules.Load().Static(pattern)
	if !ok {
		return gateway.StaticResponse{}, false
	}
	return gateway.StaticResponse{Status: status, Body: body, RetryAfter: retryAfter}, true
}

func (a *API) listRules(w http.ResponseWriter, r *http.Request) error {
	var out []*fsm.Rule
	a.read(func(s *fsm.State) { out = sortedValues(s.Rules) })
	return gateway.WriteJSON(w, http.StatusOK, out)
}

// rulesAudit answers who changed which rule when, newest first.
func (a *API) rulesAudit(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r, 100)
	if err != nil {
		return err
	}
	out := []*fsm.RuleChange{}
	a.read(func(s *fsm.State) {
		for i := len(s.RuleLog) - 1; i >= 0 && len(out) < limit; i-- {
			out = append(out, s.RuleLog[i])
		}
	})
	return gateway.WriteJSON(w, http.StatusOK, out)
}

// putRule validates and sets a runtime rule (drain, canary, route,
// static, limit), recording who set it.
func (a *API) putRule(w http.ResponseWriter, r *http.Request) error {
	var in fsm.StrictRule
	if err := gateway.DecodeJSON(r, &in); err != nil {
		return err
	}
	rule := in.Rule
	rule.ID = r.PathValue("id")
	if err := rules.Validate(&rule, a.routeTable); err != nil {
		return applyError(err)
	}
	rule.UpdatedBy, rule.Updated = gateway.Principal(r.Context()).String(), a.d.Now().UTC()
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpPutRule, Rule: &rule}); err != nil {
		return err
	}
	return gateway.WriteJSON(w, http.StatusOK, rule)
}

func (a *API) deleteRule(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if strings.HasPrefix(id, rules.SqueezePrefix) {
		return gateway.Errorf(http.StatusConflict, "rule %s belongs to a squeeze test: cancel the squeeze (DELETE /v1/squeeze/%s)", id, strings.TrimPrefix(id, rules.SqueezePrefix))
	}
	if err := a.apply(r.Context(), fsm.Command{Op: fsm.OpDeleteRule, ID: id, By: gateway.Principal(r.Context()).String(), At: a.d.Now().UTC()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startSqueeze starts a squeeze test: the leader raises the share of
// new playbacks steered to the appliance step by step.
func (a *API) startSqueeze(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return err // 413
	}
	if err != nil {
		return gateway.Errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	req, err := squeeze.Parse(body)
	if err != nil {
		return applyError(err)
	}
	id := "sq" + strconv.FormatInt(a.d.Now().UnixNano(), 36)
	q, err := req.Squeeze(id, gateway.Principal(r.Context()).String(), a.d.Now().UTC())
	if err != nil {
		return applyError(err)
	}
	if err := a.d.Squeeze.Start(r.Context(), q); err != nil {
		return applyError(err)
	}
	w.Header().Set("Location", "/v1/squeeze/"+id)
	return gateway.WriteJSON(w, http.StatusCreated, q)
}

func (a *API) listSqueezes(w http.ResponseWriter, r *http.Request) error {
	var out []*fsm.Squeeze
	a.read(func(s *fsm.State) { out = sortedValues(s.Squeezes) })
	slices.SortFunc(out, func(x, y *fsm.Squeeze) int { return y.Started.Compare(x.Started) })
	if out == nil {
		out = []*fsm.Squeeze{}
	}
	return gateway.WriteJSON(w, http.StatusOK, out)
}

// getSqueeze reports a squeeze test: each step's rate, p99 and errors,
// and the highest rate held.
func (a *API) getSqueeze(w http.ResponseWriter, r *http.Request) error {
	var q *fsm.Squeeze
	a.read(func(s *fsm.State) { q = s.Squeezes[r.PathValue("id")] })
	if q == nil {
		return gateway.Errorf(http.StatusNotFound, "squeeze %q not found", r.PathValue("id"))
	}
	return gateway.WriteJSON(w, http.StatusOK, q)
}

func (a *API) cancelSqueeze(w http.ResponseWriter, r *http.Request) error {
	err := a.d.Squeeze.Cancel(r.Context(), r.PathValue("id"), gateway.Principal(r.Context()).String())
	if errors.Is(err, squeeze.ErrFinished) {
		return gateway.Errorf(http.StatusConflict, "%v", err)
	}
	if err != nil {
		return applyError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
