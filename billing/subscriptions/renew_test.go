package subscriptions_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/subscriptions"
)

func day(m time.Month, d int) time.Time { return time.Date(2026, m, d, 10, 0, 0, 0, time.UTC) }

func (f *fixture) renew(t *testing.T, asOf time.Time) subscriptions.PassResult {
	t.Helper()
	f.clock.Set(asOf)
	res, err := f.svc.Renew(context.Background(), asOf)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) current(t *testing.T, account string) billing.Subscription {
	t.Helper()
	s, err := f.store.CurrentSubscription(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRenewalAndDunning: a paid subscription renews on its anchored
// day; a trial without a card goes past due, is retried on days 1, 3 and
// 5, plays for the 3-day grace, and ends canceled with its invoice
// uncollectible; invoice numbers have no gaps.
func TestRenewalAndDunning(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	paying := f.account(t, "pay@example.com", "basic")
	f.subscribe(t, paying.ID, "basic", cardOK, "k")
	trial := f.account(t, "trial@example.com", "basic")
	if err := f.svc.StartTrial(ctx, trial); err != nil {
		t.Fatal(err)
	}
	if s := f.current(t, trial.ID); s.Status != billing.Trialing || !s.CurrentPeriodEnd.Equal(day(time.February, 7)) {
		t.Fatalf("trial: %+v", s)
	}

	if res := f.renew(t, day(time.February, 7)); res.Due != 1 || res.PastDue != 1 {
		t.Fatalf("trial's end: %+v", res)
	}
	if _, err := f.svc.Entitlement(ctx, trial); err != nil {
		t.Fatalf("within the grace: %v", err)
	}
	for i, d := range []int{8, 10} {
		if res := f.renew(t, day(time.February, d)); res.Due != 1 || res.PastDue != 1 {
			t.Fatalf("retry %d: %+v", i+1, res)
		}
	}
	if _, err := f.svc.Entitlement(ctx, trial); !errors.Is(err, subscriptions.ErrPaymentRequired) {
		t.Fatalf("after the grace: %v, want payment required", err)
	}
	if res := f.renew(t, day(time.February, 11)); res.Due != 0 {
		t.Fatalf("between retries: %+v", res)
	}
	if res := f.renew(t, day(time.February, 12)); res.Due != 1 || res.Canceled != 1 {
		t.Fatalf("last retry: %+v", res)
	}
	if s := f.current(t, trial.ID); s.Status != billing.Canceled || s.Attempts != 4 {
		t.Fatalf("after the last retry: %+v", s)
	}

	if res := f.renew(t, day(time.February, 28)); res.Due != 1 || res.Renewed != 1 {
		t.Fatalf("renewal: %+v", res)
	}
	if s := f.current(t, paying.ID); s.Status != billing.Active || !s.CurrentPeriodEnd.Equal(day(time.March, 31)) {
		t.Fatalf("renewed: %+v, want active to 31 March", s)
	}
	if res := f.renew(t, day(time.February, 28)); res.Due != 0 {
		t.Fatalf("again: %+v, want nothing due", res)
	}
	if n := f.succeeded(t); n != 2 {
		t.Fatalf("%d charges, want 2", n)
	}
	invs, err := f.store.Invoices(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var numbers []string
	statuses := map[billing.InvoiceStatus]int{}
	for _, inv := range invs {
		numbers = append(numbers, inv.Number)
		statuses[inv.Status]++
	}
	slices.Sort(numbers)
	if want := []string{"2026-000001", "2026-000002", "2026-000003"}; !slices.Equal(numbers, want) {
		t.Fatalf("invoice numbers %v, want %v", numbers, want)
	}
	if statuses[billing.Paid] != 2 || statuses[billing.Uncollectible] != 1 {
		t.Fatalf("invoice statuses %v", statuses)
	}
	f.verify(t)

	rep, err := f.svc.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ActiveByPlan["basic"] != 1 || rep.Canceled30d != 1 || rep.FailedPayments30d != 4 ||
		len(rep.MRR) != 1 || rep.MRR[0] != (billing.Money{Amount: 799, Currency: "EUR"}) || rep.Churn != 0.5 {
		t.Fatalf("report: %+v", rep)
	}
}

// TestConcurrentPasses: four passes at once charge each due renewal
// once.
func TestConcurrentPasses(t *testing.T) {
	f := newFixture(t)
	const n = 40
	for i := range n {
		a := f.account(t, fmt.Sprintf("v%d@example.com", i), "basic")
		f.subscribe(t, a.ID, "basic", cardOK, "k")
	}
	f.clock.Set(day(time.March, 1))
	var wg sync.WaitGroup
	results := make([]subscriptions.PassResult, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if results[i], err = f.svc.Renew(context.Background(), day(time.March, 1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	renewed := 0
	for _, r := range results {
		renewed += r.Renewed
		if r.Failed != 0 {
			t.Errorf("pass: %+v", r)
		}
	}
	if renewed != n {
		t.Fatalf("renewed %d times, want %d: %+v", renewed, n, results)
	}
	if got := f.succeeded(t); got != 2*n {
		t.Fatalf("%d charges, want %d", got, 2*n)
	}
	f.verify(t)
}

// TestReconcile: a charge made with the renewal's key before the pass
// (as by a pass that died before recording it) is found and recorded,
// not made again.
func TestReconcile(t *testing.T) {
	f := newFixture(t)
	a := f.account(t, "crash@example.com", "basic")
	f.subscribe(t, a.ID, "basic", cardOK, "k")
	sub := f.current(t, a.ID)
	f.clock.Set(sub.CurrentPeriodEnd)
	if _, err := f.provider.Charge(context.Background(), billing.ChargeRequest{IdempotencyKey: billing.ChargeKey(sub),
		Customer: a.ID, PaymentMethod: sub.PaymentMethod.ID, Amount: billing.Money{Amount: 799, Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	res := f.renew(t, sub.CurrentPeriodEnd)
	if res.Renewed != 1 || res.Reconciled != 1 {
		t.Fatalf("pass: %+v", res)
	}
	if n := f.succeeded(t); n != 2 {
		t.Fatalf("%d charges, want 2", n)
	}
	f.verify(t)
}

// TestChangePlan: an upgrade mid-period charges the prorated difference
// at once; a downgrade waits for the period's end; a cancellation ends
// the subscription there.
func TestChangePlan(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "up@example.com", "basic")
	f.subscribe(t, a.ID, "basic", cardOK, "k")
	f.clock.Set(day(time.February, 14)) // 14 of 28 days left
	ans, err := f.svc.ChangePlan(ctx, a.ID, "premium", idem("up", "premium"))
	if err != nil {
		t.Fatal(err)
	}
	v := view(t, ans)
	// Credit −399.5 → −400 (half to even), debit 899.5 → 900: 500.
	if ans.Status != http.StatusOK || v.Plan != "premium" || v.Invoice == nil || v.Invoice.Amount != 500 || v.Invoice.Status != billing.Paid {
		t.Fatalf("upgrade: %d %s", ans.Status, ans.Body)
	}
	if plan, _ := f.svc.Entitlement(ctx, a); plan != "premium" {
		t.Fatalf("entitled to %q after the upgrade", plan)
	}
	if ans, err = f.svc.ChangePlan(ctx, a.ID, "basic", idem("down", "basic")); err != nil || view(t, ans).PendingPlan != "basic" || view(t, ans).Plan != "premium" {
		t.Fatalf("downgrade: %v %s", err, ans.Body)
	}
	if res := f.renew(t, day(time.February, 28)); res.Renewed != 1 {
		t.Fatalf("renewal: %+v", res)
	}
	if s := f.current(t, a.ID); s.Plan != "basic" || s.PendingPlan != "" {
		t.Fatalf("after the renewal: %+v, want basic", s)
	}
	invs, _ := f.svc.Invoices(ctx, a.ID)
	if len(invs) != 3 || invs[0].Total.Amount != 799 {
		t.Fatalf("invoices %+v: want the renewal at the basic price first", invs)
	}
	if ans, err = f.svc.Cancel(ctx, a.ID, subscriptions.Idem{}); err != nil || !view(t, ans).CancelAtPeriodEnd {
		t.Fatalf("cancel: %v %s", err, ans.Body)
	}
	if res := f.renew(t, day(time.March, 31)); res.Canceled != 1 {
		t.Fatalf("period's end: %+v", res)
	}
	if _, err := f.svc.Entitlement(ctx, a); !errors.Is(err, subscriptions.ErrPaymentRequired) {
		t.Fatalf("after the end: %v, want payment required", err)
	}
	if n := f.succeeded(t); n != 3 {
		t.Fatalf("%d charges, want 3", n)
	}
	f.verify(t)
}

// TestUpgradeDeclined: the card declines the upgrade's charge: 402,
// the plan unchanged, the invoice void.
func TestUpgradeDeclined(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "late@example.com", "basic")
	f.svc.StartTrial(ctx, a)
	ans, err := f.svc.ChangePlan(ctx, a.ID, "premium", idem("t", "premium"))
	if err != nil || ans.Status != http.StatusOK || view(t, ans).Plan != "premium" || view(t, ans).Invoice != nil {
		t.Fatalf("trial upgrade: %v %s, want free", err, ans.Body)
	}
	b := f.account(t, "b@example.com", "basic")
	f.subscribe(t, b.ID, "basic", cardOK, "k")
	// The viewer's card now declines (as a card replaced by 0341 would).
	pm, err := f.provider.AttachCard(ctx, b.ID, billing.Card{Number: cardDeclineLate})
	if err != nil {
		t.Fatal(err)
	}
	sub := f.current(t, b.ID)
	sub.PaymentMethod, sub.Version = pm, sub.Version+1
	if _, err := f.store.Commit(ctx, billing.Change{At: T0, Subscriptions: []billing.Subscription{sub}}); err != nil {
		t.Fatal(err)
	}
	ans, err = f.svc.ChangePlan(ctx, b.ID, "premium", idem("u", "premium"))
	if err != nil || ans.Status != http.StatusPaymentRequired || view(t, ans).Invoice.Status != billing.Void || view(t, ans).Plan != "basic" {
		t.Fatalf("declined upgrade: %v %d %s", err, ans.Status, ans.Body)
	}
	if s := f.current(t, b.ID); s.Plan != "basic" {
		t.Fatalf("plan %s after a declined upgrade", s.Plan)
	}
	if n := f.succeeded(t); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
	f.verify(t)
}
