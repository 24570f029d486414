package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// sessionCookie carries the session token for the web pages; profileHeader
// names the profile a viewer's request is for.
const (
	sessionCookie = "fillcast_session"
	profileHeader = "X-Fillcast-Profile"
	cookieMaxAge  = 400 * 24 * 3600
)

var (
	viewerOnly = auth.Policy{ViewersOnly: true}
	// Browsing: viewers, and operators checking the catalog.
	browser = auth.Policy{Viewer: true, Scopes: auth.ScopeOperator | auth.ScopeIngest | auth.ScopeRead}
)

// viewerRoutes are the accounts, sessions, profiles, plans and streams.
func (a *API) viewerRoutes() []route {
	write := func(name string, p auth.Policy) gateway.RouteOptions {
		return gateway.RouteOptions{Name: name, Policy: p, Timeout: a.cfg.WriteTimeout + time.Second, Priority: gateway.PriorityPlayback, MaxBodyBytes: 16 << 10}
	}
	return []route{
		{"POST /v1/accounts", write("create_account", auth.Public), a.createAccount},
		// A linearizable read: its catch-up gives up (503) within 5 s.
		{"GET /v1/account", gateway.RouteOptions{Name: "get_account", Policy: viewerOnly, Timeout: 6 * time.Second, Priority: gateway.PriorityPlayback}, a.getAccount},
		{"POST /v1/sessions", write("sign_in", auth.Public), a.signIn},
		{"DELETE /v1/sessions/current", write("sign_out", viewerOnly), a.signOut},
		{"DELETE /v1/sessions", write("sign_out_everywhere", viewerOnly), a.signOutEverywhere},
		{"POST /v1/profiles", write("create_profile", viewerOnly), a.createProfile},
		{"DELETE /v1/profiles/{id}", write("delete_profile", viewerOnly), a.deleteProfile},
		{"GET /v1/plans", gateway.RouteOptions{Name: "list_plans", Policy: auth.Public, Timeout: 2 * time.Second, Priority: gateway.PriorityBrowse}, a.listPlans},
		{"PUT /v1/plans/{id}", gateway.RouteOptions{Name: "put_plan", Policy: opScope, Timeout: a.cfg.WriteTimeout + time.Second, MaxBodyBytes: 16 << 10}, a.putPlan},
		{"POST /v1/streams/{id}/keepalive", write("keepalive", viewerOnly), a.keepAlive},
		{"DELETE /v1/streams/{id}", write("end_stream", viewerOnly), a.endStream},
	}
}

// viewer returns the signed-in viewer of a request: 403 for any other
// principal (an operator's key on a viewer's route), 400 when the
// request names a profile the account lacks.
func viewer(ctx context.Context) (*accounts.Viewer, error) {
	p := gateway.Principal(ctx)
	v, ok := p.Details.(*accounts.Viewer)
	if p.Kind != auth.Viewer || !ok {
		return nil, gateway.Errorf(http.StatusForbidden, "this needs a viewer's session: sign in with POST /v1/sessions")
	}
	if v.Profile == nil {
		return nil, gateway.Errorf(http.StatusBadRequest, "the %s header names no profile of this account", profileHeader)
	}
	return v, nil
}

type accountRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Plan     string `json:"plan"`
}

type accountAnswer struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Plan  string `json:"plan"`
}

func (a *API) createAccount(w http.ResponseWriter, r *http.Request) error {
	var req accountRequest
	if err := gateway.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Plan == "" {
		return gateway.Errorf(http.StatusBadRequest, "plan: required (GET /v1/plans lists them)")
	}
	acct, err := a.d.Accounts.SignUp(r.Context(), req.Email, req.Password, req.Plan, gateway.FromContext(r.Context()).Client())
	var throttled *accounts.ThrottledError
	switch {
	case errors.As(err, &throttled):
		return &gateway.Error{Status: http.StatusTooManyRequests, Message: "too many sign-ups from this address: try again later", RetryAfter: throttled.RetryAfter}
	case errors.Is(err, accounts.ErrExists):
		return gateway.Errorf(http.StatusConflict, "an account with this email exists already: sign in instead")
	case errors.Is(err, accounts.ErrNotFound):
		return gateway.Errorf(http.StatusBadRequest, "plan %q: no such plan (GET /v1/plans lists them)", req.Plan)
	case err != nil:
		return applyError(err)
	}
	if a.d.Billing != nil {
		// The account plays on its trial without this record too
		// (Entitlement judges a missing one by the account's creation).
		if err := a.d.Billing.StartTrial(r.Context(), acct); err != nil {
			a.d.Log.Warn("api: record the trial of a new account", "account", acct.ID, "err", err)
		}
	}
	return gateway.WriteJSON(w, http.StatusCreated, accountAnswer{ID: acct.ID, Email: acct.Email, Plan: acct.Plan})
}

type signInAnswer struct {
	Token     string    `json:"token"`
	AccountID string    `json:"account_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *API) signIn(w http.ResponseWriter, r *http.Request) error {
	var req accountRequest
	if err := gateway.DecodeJSON(r, &req); err != nil {
		return err
	}
	rc := gateway.FromContext(r.Context())
	token, sess, err := a.d.Accounts.SignIn(r.Context(), req.Email, req.Password, rc.Client())
	var throttled *accounts.ThrottledError
	switch {
	case errors.As(err, &throttled):
		return &gateway.Error{Status: http.StatusTooManyRequests, Message: "too many failed sign-ins: try again later", RetryAfter: throttled.RetryAfter}
	case errors.Is(err, accounts.ErrBadCredentials):
		return gateway.Errorf(http.StatusUnauthorized, "wrong email or password")
	case err != nil:
		return applyError(err)
	}
	expires := a.d.Accounts.ExpiresAt(sess)
	// The session's idle expiry is the control plane's to decide: the
	// cookie lives as long as browsers keep any (400 days), and a stale
	// one counts as no credential.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil, MaxAge: cookieMaxAge})
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusCreated, signInAnswer{Token: token, AccountID: sess.Account, ExpiresAt: expires.UTC()})
}

// clearCookie tells the browser to forget its session.
func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: -1})
}

func (a *API) signOut(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	if err := a.d.Accounts.SignOut(r.Context(), v.Session.ID); err != nil && !errors.Is(err, accounts.ErrNotFound) {
		return applyError(err)
	}
	clearCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) signOutEverywhere(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	if err := a.d.Accounts.SignOutEverywhere(r.Context(), v.Account.ID); err != nil {
		return applyError(err)
	}
	clearCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// viewerAnyProfile is viewer for the routes that do not depend on the
// profile: signing out works whatever profile header is sent.
func viewerAnyProfile(ctx context.Context) (*accounts.Viewer, error) {
	v, err := viewer(ctx)
	if err != nil {
		if v, ok := gateway.Principal(ctx).Details.(*accounts.Viewer); ok && v != nil {
			return v, nil
		}
	}
	return v, err
}

type profileView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kids bool   `json:"kids"`
}

func profileViews(ps []accounts.Profile) []profileView {
	out := make([]profileView, len(ps))
	for i, p := range ps {
		out[i] = profileView{ID: p.ID, Name: p.Name, Kids: p.Kids}
	}
	return out
}

type streamView struct {
	ID      string    `json:"id"`
	Title   string    `json:"title"`
	Profile string    `json:"profile"`
	Started time.Time `json:"started"`
}

type accountView struct {
	ID        string        `json:"id"`
	Email     string        `json:"email"`
	Plan      accounts.Plan `json:"plan"`
	Profile   string        `json:"profile"`
	Profiles  []profileView `json:"profiles"`
	Streams   []streamView  `json:"streams"`
	Created   time.Time     `json:"created"`
	ExpiresAt time.Time     `json:"session_expires_at"`
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request) error {
	v, err := viewer(r.Context())
	if err != nil {
		return err
	}
	// The profiles and streams as they are now, not as the session cache
	// holds them: current (a linearizable read, or 503), in one round.
	ctx := cluster.ReadScope(r.Context())
	if err := a.current(ctx); err != nil {
		return err
	}
	profiles, err := a.d.Accounts.Store().Profiles(ctx, v.Account.ID)
	if err != nil {
		return applyError(err)
	}
	live, err := a.d.Accounts.Streams(ctx, v.Account.ID)
	if err != nil {
		return applyError(err)
	}
	plan, err := a.subscribedPlan(r.Context(), v)
	if err != nil {
		return err
	}
	out := accountView{ID: v.Account.ID, Email: v.Account.Email, Plan: plan, Profile: v.Profile.ID, Profiles: profileViews(profiles),
		Streams: make([]streamView, len(live)), Created: v.Account.Created, ExpiresAt: a.d.Accounts.ExpiresAt(*v.Session).UTC()}
	for i, s := range live {
		out.Streams[i] = streamView{ID: s.ID, Title: s.Title, Profile: s.Profile, Started: s.Started}
	}
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusOK, out)
}

type profileRequest struct {
	Name string `json:"name"`
	Kids bool   `json:"kids"`
}

func (a *API) createProfile(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	var req profileRequest
	if err := gateway.DecodeJSON(r, &req); err != nil {
		return err
	}
	p, err := a.d.Accounts.AddProfile(r.Context(), v.Account.ID, req.Name, req.Kids)
	if errors.Is(err, accounts.ErrLimit) {
		return gateway.Errorf(http.StatusConflict, "an account has at most %d profiles", a.d.Accounts.Config().MaxProfiles)
	}
	if err != nil {
		return applyError(err)
	}
	return gateway.WriteJSON(w, http.StatusCreated, profileView{ID: p.ID, Name: p.Name, Kids: p.Kids})
}

func (a *API) deleteProfile(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	err = a.d.Accounts.DeleteProfile(r.Context(), v.Account.ID, r.PathValue("id"))
	switch {
	case errors.Is(err, accounts.ErrLimit):
		return gateway.Errorf(http.StatusConflict, "the first profile of an account cannot be deleted")
	case errors.Is(err, accounts.ErrNotFound):
		return gateway.Errorf(http.StatusNotFound, "no profile %q on this account", r.PathValue("id"))
	case err != nil:
		return applyError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listPlans(w http.ResponseWriter, r *http.Request) error {
	plans, err := a.d.Accounts.Plans(r.Context())
	if err != nil {
		return applyError(err)
	}
	if plans == nil {
		plans = []accounts.Plan{}
	}
	return gateway.WriteJSON(w, http.StatusOK, plans)
}

func (a *API) putPlan(w http.ResponseWriter, r *http.Request) error {
	var p accounts.Plan
	if err := gateway.DecodeJSON(r, &p); err != nil {
		return err
	}
	if p.ID != "" && p.ID != r.PathValue("id") {
		return gateway.Errorf(http.StatusBadRequest, "id %q in the body differs from the path's %q", p.ID, r.PathValue("id"))
	}
	p.ID = r.PathValue("id")
	if err := a.d.Accounts.PutPlan(r.Context(), p); err != nil {
		return applyError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, p)
}

func (a *API) keepAlive(w http.ResponseWriter, r *http.Request) error {
	return a.streamOp(w, r, a.d.Accounts.KeepAlive, "stream %q has ended: ask for playback again")
}

func (a *API) endStream(w http.ResponseWriter, r *http.Request) error {
	return a.streamOp(w, r, a.d.Accounts.EndStream, "no stream %q on this account")
}

// streamOp applies op to the path's stream of the caller's account: 204,
// or 404 with gone (formatted with the id) when the account holds no such
// live stream.
func (a *API) streamOp(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, account, id string) error, gone string) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := op(r.Context(), v.Account.ID, id); err != nil {
		if errors.Is(err, accounts.ErrNotFound) {
			return gateway.Errorf(http.StatusNotFound, gone, id)
		}
		return applyError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
