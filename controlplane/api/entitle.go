package api

import (
	"context"
	"net/http"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// kidsOnly reports whether the caller is a viewer on a kids profile, or
// on a profile its account does not have: the most restrictive view.
func kidsOnly(ctx context.Context) bool {
	v, ok := gateway.Principal(ctx).Details.(*accounts.Viewer)
	return ok && (v.Profile == nil || v.Profile.Kids)
}

// viewerLimits are what the caller's tokens may fetch: its plan's limits
// for a viewer (whatever its profile), none for an operator.
func viewerLimits(ctx context.Context) auth.Limits {
	if v, ok := gateway.Principal(ctx).Details.(*accounts.Viewer); ok {
		return planLimits(v.Plan)
	}
	return auth.Limits{}
}

// mayView checks that the caller's profile may see a title: 403 for a
// kids profile and a title not rated for it. Unknown titles pass, for
// the handler to answer 404.
func (a *API) mayView(ctx context.Context, title string) error {
	if !kidsOnly(ctx) {
		return nil
	}
	maturity := fillcast.MaturityAll
	a.read(func(s *fsm.State) {
		if t := s.Titles[title]; t != nil {
			maturity = t.Maturity
		}
	})
	if !fillcast.KidsMayWatch(maturity) {
		return gateway.Errorf(http.StatusForbidden, "title %q is rated %s: not available on a kids profile", title, maturity)
	}
	return nil
}

// keepStreamsAlive renews the stream leases the batch's play and
// progress events name, at most the plan's screens' worth: a playing
// player needs no other keepalive. Failures are the player's to notice at
// its next playback or keepalive.
func (a *API) keepStreamsAlive(r *http.Request, v *accounts.Viewer, batch []events.Event) {
	seen := map[string]bool{}
	for _, e := range batch {
		if e.StreamID == "" || seen[e.StreamID] || (e.Type != events.TypePlay && e.Type != events.TypeProgress) {
			continue
		}
		if len(seen) == v.Plan.MaxStreams {
			return
		}
		seen[e.StreamID] = true
		if err := a.d.Accounts.KeepAlive(r.Context(), v.Account.ID, e.StreamID); err != nil {
			a.d.Log.Debug("api: keepalive from events", "stream", e.StreamID, "err", err)
		}
	}
}
