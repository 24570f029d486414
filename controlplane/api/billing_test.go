package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/billing/testprovider"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

// withBilling gives d a billing service over the node's replicated
// state and the test provider keeping its records in dir.
func withBilling(t *testing.T, d *Deps, dir string) {
	t.Helper()
	p, err := testprovider.New(testprovider.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	node := d.Node.(*localNode)
	if d.Billing, err = subscriptions.New(subscriptions.Config{}, subscriptions.Deps{
		Store: fsm.BillingStore(node.f, node.Apply, nil), Provider: p, Plans: d.Accounts, Log: d.Log,
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBillingRoutes: subscribe with an Idempotency-Key (a retry
// replayed, the key reused with another body refused), invoices of the
// account only, a declining card's 402 with the subscription incomplete
// and the payment-required playback, plan changes and cancellation, and
// the operators' routes.
func TestBillingRoutes(t *testing.T) {
	t.Parallel()
	a := newTestAPIWith(t, func(d *Deps) { withBilling(t, d, t.TempDir()) })
	sign := func(email string) string {
		var out signInAnswer
		call{method: "POST", path: "/v1/accounts", body: `{"email":"` + email + `","password":"correct horse battery","plan":"basic"}`}.want(t, a, http.StatusCreated, nil)
		call{method: "POST", path: "/v1/sessions", body: `{"email":"` + email + `","password":"correct horse battery"}`}.want(t, a, http.StatusCreated, &out)
		return out.Token
	}
	key := func(k string) http.Header { return http.Header{idempotencyHeader: {k}} }
	ann := sign("ann@example.com")

	// A new account plays on its trial.
	var sub subscriptions.View
	fresh := func() *subscriptions.View { sub = subscriptions.View{}; return &sub }
	call{method: "GET", path: "/v1/subscriptions/current", bearer: ann}.want(t, a, http.StatusOK, fresh())
	if sub.Status != billing.Trialing || sub.Plan != "basic" {
		t.Fatalf("after sign-up: %+v", sub)
	}
	call{method: "GET", path: "/v1/playback/t1?protocol=hls", bearer: ann}.want(t, a, http.StatusOK, nil)

	body := `{"plan":"premium","payment_method":{"card":"4242424242424242"}}`
	call{method: "POST", path: "/v1/subscriptions", bearer: ann, body: body}.want(t, a, http.StatusBadRequest, nil)
	first := call{method: "POST", path: "/v1/subscriptions", bearer: ann, body: body, header: key("k1")}.want(t, a, http.StatusCreated, fresh())
	if sub.Status != billing.Active || sub.Invoice == nil || sub.Invoice.Status != billing.Paid || sub.Invoice.Amount != 1999 || sub.Invoice.Currency != "EUR" {
		t.Fatalf("subscribe: %s", first)
	}
	// The same request again, written otherwise: the first answer.
	w := call{method: "POST", path: "/v1/subscriptions", bearer: ann, body: " {\"payment_method\":{\"card\":\"4242424242424242\"},\"plan\":\"premium\"}", header: key("k1")}.do(t, a)
	if w.Code != http.StatusCreated || w.Body.String() != first || w.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s %v", w.Code, w.Body, w.Header())
	}
	call{method: "POST", path: "/v1/subscriptions", bearer: ann, body: `{"plan":"basic","payment_method":{"card":"4242424242424242"}}`, header: key("k1")}.want(t, a, http.StatusUnprocessableEntity, nil)
	call{method: "POST", path: "/v1/subscriptions", bearer: ann, body: body, header: key(strings.Repeat("k", 256))}.want(t, a, http.StatusBadRequest, nil)
	call{method: "POST", path: "/v1/subscriptions", bearer: ann, body: body, header: key("k2")}.want(t, a, http.StatusConflict, nil)

	var acct struct{ Plan struct{ ID string } }
	call{method: "GET", path: "/v1/account", bearer: ann}.want(t, a, http.StatusOK, &acct)
	if acct.Plan.ID != "premium" {
		t.Fatalf("the account's plan after subscribing to premium: %q", acct.Plan.ID)
	}
	var invs struct{ Invoices []billing.Invoice }
	call{method: "GET", path: "/v1/invoices", bearer: ann}.want(t, a, http.StatusOK, &invs)
	if len(invs.Invoices) != 1 || invs.Invoices[0].Number == "" || invs.Invoices[0].Status != billing.Paid {
		t.Fatalf("invoices: %+v", invs)
	}
	call{method: "GET", path: "/v1/invoices/" + invs.Invoices[0].ID, bearer: ann}.want(t, a, http.StatusOK, nil)

	// A declining card: 402, incomplete, and playback refused with why.
	bob := sign("bob@example.com")
	call{method: "GET", path: "/v1/invoices/" + invs.Invoices[0].ID, bearer: bob}.want(t, a, http.StatusNotFound, nil)
	declined := call{method: "POST", path: "/v1/subscriptions", bearer: bob, body: `{"plan":"basic","payment_method":{"card":"4000000000000002"}}`, header: key("b1")}.want(t, a, http.StatusPaymentRequired, fresh())
	if sub.Status != billing.Incomplete || !strings.Contains(sub.Error, "declined") {
		t.Fatalf("declined: %s", declined)
	}
	var e struct{ Error string }
	call{method: "GET", path: "/v1/playback/t1?protocol=hls", bearer: bob}.want(t, a, http.StatusPaymentRequired, &e)
	if !strings.HasPrefix(e.Error, "payment required: ") {
		t.Fatalf("playback: %q", e.Error)
	}

	// Posters still, for browsing; nothing else of a title.
	if w := (call{method: "GET", path: "/v1/titles/t1/files/poster.jpg", bearer: bob}).do(t, a); w.Code != http.StatusFound {
		t.Fatalf("a poster without paying: %d %s", w.Code, w.Body)
	}
	call{method: "GET", path: "/v1/titles/t1/files/download/720p.mp4", bearer: bob}.want(t, a, http.StatusPaymentRequired, nil)

	// Plan changes and cancellation.
	call{method: "PUT", path: "/v1/subscriptions/current", bearer: ann, body: `{"plan":"basic"}`, header: key("d1")}.want(t, a, http.StatusOK, fresh())
	if sub.PendingPlan != "basic" || sub.Plan != "premium" {
		t.Fatalf("downgrade: %+v", sub)
	}
	call{method: "PUT", path: "/v1/subscriptions/current", bearer: ann, body: `{"plan":"nope"}`, header: key("d2")}.want(t, a, http.StatusBadRequest, nil)
	call{method: "DELETE", path: "/v1/subscriptions/current", bearer: ann}.want(t, a, http.StatusOK, fresh())
	if !sub.CancelAtPeriodEnd || sub.PendingPlan != "" {
		t.Fatalf("cancel: %+v", sub)
	}
	call{method: "PUT", path: "/v1/subscriptions/current", bearer: ann, body: `{"plan":"wall"}`, header: key("d3")}.want(t, a, http.StatusConflict, nil)

	// Operators: the report, a pass, the verification.
	var rep subscriptions.Report
	call{method: "GET", path: "/v1/billing/report", bearer: "adm"}.want(t, a, http.StatusOK, &rep)
	if rep.ActiveByPlan["premium"] != 1 || rep.Subscriptions[billing.Incomplete] != 1 {
		t.Fatalf("report: %+v", rep)
	}
	call{method: "POST", path: "/v1/billing/renewals", bearer: "adm", body: `{}`}.want(t, a, http.StatusBadRequest, nil)
	var res subscriptions.PassResult
	call{method: "POST", path: "/v1/billing/renewals", bearer: "adm", body: `{"as_of":"` + sub.CurrentPeriodEnd.Format("2006-01-02T15:04:05.999999999Z07:00") + `"}`}.want(t, a, http.StatusOK, &res)
	if res.Canceled != 1 {
		t.Fatalf("pass: %+v", res)
	}
	var v subscriptions.Verification
	out := call{method: "GET", path: "/v1/billing/verify", bearer: "adm"}.want(t, a, http.StatusOK, &v)
	if len(v.Problems) != 0 || v.Invoices != 1 {
		t.Fatalf("verify: %s", out)
	}
	call{method: "GET", path: "/v1/playback/t1?protocol=hls", bearer: ann}.want(t, a, http.StatusPaymentRequired, nil)
}
