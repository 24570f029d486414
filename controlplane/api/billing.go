package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// idempotencyHeader names the key that makes a request that can move
// money safe to retry.
const idempotencyHeader = "Idempotency-Key"

// billingRoutes are the viewers' subscriptions and invoices and the
// operators' report, renewal pass and verification; none without a
// billing service.
func (a *API) billingRoutes() []route {
	if a.d.Billing == nil {
		return nil
	}
	// A charge waits for the payment provider and a replicated write.
	money := func(name string) gateway.RouteOptions {
		return gateway.RouteOptions{Name: name, Policy: viewerOnly, Timeout: a.cfg.WriteTimeout + 10*time.Second, Priority: gateway.PriorityPlayback, MaxBodyBytes: 4 << 10}
	}
	read := func(name string) gateway.RouteOptions {
		return gateway.RouteOptions{Name: name, Policy: viewerOnly, Timeout: 5 * time.Second, Priority: gateway.PriorityBrowse}
	}
	return []route{
		{"POST /v1/subscriptions", money("subscribe"), a.subscribe},
		{"GET /v1/subscriptions/current", read("get_subscription"), a.getSubscription},
		{"PUT /v1/subscriptions/current", money("change_plan"), a.changePlan},
		{"DELETE /v1/subscriptions/current", money("cancel_subscription"), a.cancelSubscription},
		{"GET /v1/invoices", read("list_invoices"), a.listInvoices},
		{"GET /v1/invoices/{id}", read("get_invoice"), a.getInvoice},
		{"GET /v1/billing/report", gateway.RouteOptions{Name: "billing_report", Policy: opsReader, Timeout: time.Minute, Priority: gateway.PriorityBrowse}, a.billingReport},
		{"GET /v1/billing/verify", gateway.RouteOptions{Name: "billing_verify", Policy: opsReader, Timeout: 5 * time.Minute, Priority: gateway.PriorityTelemetry}, a.billingVerify},
		// A pass over every due subscription: bounded by the pass, not
		// the route (such routes give the concurrency limit no sample).
		{"POST /v1/billing/renewals", gateway.RouteOptions{Name: "billing_renewals", Policy: opScope, Timeout: time.Hour, MaxBodyBytes: 1 << 10, Priority: gateway.PriorityBrowse}, a.billingRenewals},
	}
}

// idempotent decodes a request that can move money into v and returns
// its Idempotency-Key with a hash of the route and the decoded body, so
// that the same request sent with other whitespace is the same request.
// The hash is keyed (HMAC with a secret every node derives from the admin
// token): the body holds a card number, which an unkeyed hash of it,
// stored with the answer, would give away to a search of the few
// numbers its brand and last four digits leave.
func (a *API) idempotent(r *http.Request, route string, v any) (subscriptions.Idem, error) {
	idem := subscriptions.Idem{Key: r.Header.Get(idempotencyHeader)}
	if len(idem.Key) > billing.MaxIdempotencyKeyLen {
		return idem, gateway.Errorf(http.StatusBadRequest, "%s: at most %d characters", idempotencyHeader, billing.MaxIdempotencyKeyLen)
	}
	if v != nil {
		if err := gateway.DecodeJSON(r, v); err != nil {
			return idem, err
		}
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return idem, err
	}
	secret := sha256.Sum256([]byte("fillcast idempotency hash\x00" + a.d.AdminToken))
	mac := hmac.New(sha256.New, secret[:])
	mac.Write([]byte(route + "\n"))
	mac.Write(canon)
	idem.Hash = hex.EncodeToString(mac.Sum(nil))
	return idem, nil
}

// writeAnswer writes a billing answer; a replayed one says so.
func writeAnswer(w http.ResponseWriter, ans subscriptions.Answer) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if ans.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(ans.Status)
	_, err := io.Copy(w, bytes.NewReader(append(ans.Body, '\n')))
	return err
}

// billingError maps the billing service's errors to answers, their
// messages without the packages' prefixes (a viewer reads them).
func billingError(err error) error {
	switch {
	case errors.Is(err, subscriptions.ErrKeyReused):
		return gateway.Errorf(http.StatusUnprocessableEntity, "%s was sent before with another request: use a new key for a new request", idempotencyHeader)
	case errors.Is(err, billing.ErrNotFound):
		return &gateway.Error{Status: http.StatusNotFound, Message: plainMessage(err), Err: err}
	case errors.Is(err, billing.ErrConflict):
		return &gateway.Error{Status: http.StatusConflict, Message: plainMessage(err), Err: err}
	case errors.Is(err, billing.ErrInvalid):
		return &gateway.Error{Status: http.StatusBadRequest, Message: plainMessage(err), Err: err}
	}
	return applyError(err)
}

// plainMessage is err's message without the prefixes of the packages it
// went through ("subscriptions: invalid: billing: …").
func plainMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"subscriptions: ", "testprovider: ", "billing: ", "pgstore: ", "cluster: ", "invalid: ", "changed meanwhile: ", "not found: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

type subscribeRequest struct {
	Plan          string `json:"plan"`
	PaymentMethod struct {
		Card string `json:"card"`
	} `json:"payment_method"`
}

func (a *API) subscribe(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	var req subscribeRequest
	idem, err := a.idempotent(r, "POST /v1/subscriptions", &req)
	if err != nil {
		return err
	}
	if req.Plan == "" || req.PaymentMethod.Card == "" {
		return gateway.Errorf(http.StatusBadRequest, `want {"plan":…,"payment_method":{"card":…}} (GET /v1/plans lists the plans)`)
	}
	ans, err := a.d.Billing.Subscribe(r.Context(), v.Account.ID, req.Plan, billing.Card{Number: req.PaymentMethod.Card}, idem)
	if err != nil {
		return billingError(err)
	}
	return writeAnswer(w, ans)
}

func (a *API) getSubscription(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	sub, err := a.d.Billing.Current(r.Context(), v.Account.ID)
	if err != nil {
		return billingError(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusOK, sub)
}

type changePlanRequest struct {
	Plan string `json:"plan"`
}

func (a *API) changePlan(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	var req changePlanRequest
	idem, err := a.idempotent(r, "PUT /v1/subscriptions/current", &req)
	if err != nil {
		return err
	}
	if req.Plan == "" {
		return gateway.Errorf(http.StatusBadRequest, `want {"plan":…} (GET /v1/plans lists them)`)
	}
	ans, err := a.d.Billing.ChangePlan(r.Context(), v.Account.ID, req.Plan, idem)
	if err != nil {
		return billingError(err)
	}
	return writeAnswer(w, ans)
}

func (a *API) cancelSubscription(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	idem, err := a.idempotent(r, "DELETE /v1/subscriptions/current", nil)
	if err != nil {
		return err
	}
	ans, err := a.d.Billing.Cancel(r.Context(), v.Account.ID, idem)
	if err != nil {
		return billingError(err)
	}
	return writeAnswer(w, ans)
}

func (a *API) listInvoices(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	invs, err := a.d.Billing.Invoices(r.Context(), v.Account.ID)
	if err != nil {
		return billingError(err)
	}
	if invs == nil {
		invs = []billing.Invoice{}
	}
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusOK, map[string]any{"invoices": invs})
}

func (a *API) getInvoice(w http.ResponseWriter, r *http.Request) error {
	v, err := viewerAnyProfile(r.Context())
	if err != nil {
		return err
	}
	inv, err := a.d.Billing.Invoice(r.Context(), v.Account.ID, r.PathValue("id"))
	if err != nil {
		return billingError(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	return gateway.WriteJSON(w, http.StatusOK, inv)
}

func (a *API) billingReport(w http.ResponseWriter, r *http.Request) error {
	rep, err := a.d.Billing.Report(r.Context())
	if err != nil {
		return billingError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, rep)
}

func (a *API) billingVerify(w http.ResponseWriter, r *http.Request) error {
	v, err := a.d.Billing.Verify(r.Context())
	if err != nil {
		return billingError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, v)
}

type renewalsRequest struct {
	AsOf time.Time `json:"as_of"`
}

func (a *API) billingRenewals(w http.ResponseWriter, r *http.Request) error {
	var req renewalsRequest
	if err := gateway.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.AsOf.IsZero() {
		return gateway.Errorf(http.StatusBadRequest, `want {"as_of":"2026-12-31T00:00:00Z"}: the pass charges what is due by then`)
	}
	if limit := time.Now().AddDate(1, 0, 1); req.AsOf.After(limit) {
		return gateway.Errorf(http.StatusBadRequest, "as_of %s is more than a year ahead: a pass charges what is due by then, so a typo would charge every subscription early", req.AsOf.Format(time.RFC3339))
	}
	res, err := a.d.Billing.Renew(r.Context(), req.AsOf)
	if err != nil {
		return billingError(err)
	}
	return gateway.WriteJSON(w, http.StatusOK, res)
}

// entitled returns v with the plan its account's subscription entitles
// it to, or 402 saying why it is not entitled. Without billing, v.
func (a *API) entitled(ctx context.Context, v *accounts.Viewer) (*accounts.Viewer, error) {
	if a.d.Billing == nil {
		return v, nil
	}
	id, err := a.d.Billing.Entitlement(ctx, *v.Account)
	if errors.Is(err, subscriptions.ErrPaymentRequired) {
		return nil, gateway.Errorf(http.StatusPaymentRequired, "%v", err)
	}
	if err != nil {
		return nil, billingError(err)
	}
	if id == v.Plan.ID {
		return v, nil
	}
	plan, err := a.d.Accounts.Plan(ctx, id)
	if err != nil {
		return nil, applyError(err)
	}
	e := *v
	e.Plan = &plan
	return &e, nil
}

// subscribedPlan returns the plan v's account is subscribed to, whether
// or not it is paid for: the subscription's, or the account's without
// one (or without billing).
func (a *API) subscribedPlan(ctx context.Context, v *accounts.Viewer) (accounts.Plan, error) {
	if a.d.Billing == nil {
		return *v.Plan, nil
	}
	sub, err := a.d.Billing.Current(ctx, v.Account.ID)
	switch {
	case errors.Is(err, billing.ErrNotFound):
		return *v.Plan, nil
	case err != nil:
		return accounts.Plan{}, billingError(err)
	case sub.Plan == v.Plan.ID:
		return *v.Plan, nil
	}
	plan, err := a.d.Accounts.Plan(ctx, sub.Plan)
	if err != nil {
		return accounts.Plan{}, applyError(err)
	}
	return plan, nil
}

// fileLimits returns the limits a title file's URL is signed with: the
// operator's none, the viewer's subscribed plan's; a viewer whose
// subscription does not entitle it gets images alone (posters, for
// browsing), signed for no video rendition, and 402 for anything else.
func (a *API) fileLimits(ctx context.Context, path string) (auth.Limits, error) {
	v, ok := gateway.Principal(ctx).Details.(*accounts.Viewer)
	if !ok {
		return viewerLimits(ctx), nil
	}
	e, err := a.entitled(ctx, v)
	if err == nil {
		return planLimits(e.Plan), nil
	}
	var ge *gateway.Error
	if errors.As(err, &ge) && ge.Status == http.StatusPaymentRequired && isImage(path) {
		return auth.Limits{MaxHeight: 1, NoDownloads: true}, nil
	}
	return auth.Limits{}, err
}

// isImage reports whether a title file is a picture (a poster).
func isImage(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jpg", ".jpeg", ".png", ".webp":
		return !strings.Contains(path, "/")
	}
	return false
}
